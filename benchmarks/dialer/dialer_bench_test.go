// Package dialerbench compares dialer.Dialer with a plain net.Dialer on
// loopback, and shows the Nagle/delayed-ACK stall that TCP_NODELAY avoids.
package dialerbench

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/sockopt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// keepAlive is the keepalive a service behind a load balancer might use.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 10 * time.Second, Count: 5}

// typical is a client's usual socket option set besides keepalive.
var typical = []sockopt.Option{
	sockopt.UserTimeout(110 * time.Second),
	sockopt.ReceiveBuffer(256 << 10),
	sockopt.SendBuffer(256 << 10),
	sockopt.NotSentLowat(16 << 10),
}

// server accepts and discards connections until the benchmark ends.
func server(b *testing.B, network, addr string) net.Listener {
	b.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln
}

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// dialLoop dials address once per iteration and resets the connection on
// close (SO_LINGER 0), so that no TIME_WAIT piles up and exhausts the
// ephemeral ports; every implementation pays the same for it.
func dialLoop(b *testing.B, dial dialFunc, network, address string) {
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		c, err := dial(ctx, network, address)
		if err != nil {
			b.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

func typicalNet() *net.Dialer {
	nd := &net.Dialer{KeepAliveConfig: keepAlive, Control: sockopt.DialControl(typical...)}
	nd.SetMultipathTCP(false)
	return nd
}

func typicalNettune(b *testing.B, more ...dialer.Option) *dialer.Dialer {
	opts := []dialer.Option{dialer.KeepAliveConfig(keepAlive)}
	for _, o := range typical {
		opts = append(opts, dialer.Sockopt(o))
	}
	d, err := dialer.New(append(opts, more...)...)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkDial measures a loopback connect (plus the reset close) with no
// options and with the typical set: net.Dialer, net.Dialer with the same
// options in a hand-written Control, and dialer.Dialer.
func BenchmarkDial(b *testing.B) {
	ln := server(b, "tcp4", "127.0.0.1:0")
	addr := ln.Addr().String()

	b.Run("opts=none/impl=net", func(b *testing.B) {
		var nd net.Dialer
		nd.SetMultipathTCP(false)
		dialLoop(b, nd.DialContext, "tcp", addr)
	})
	b.Run("opts=none/impl=nettune", func(b *testing.B) {
		d, err := dialer.New(dialer.MultipathTCP(false))
		if err != nil {
			b.Fatal(err)
		}
		dialLoop(b, d.DialContext, "tcp", addr)
	})
	b.Run("opts=typical/impl=net", func(b *testing.B) {
		dialLoop(b, typicalNet().DialContext, "tcp", addr)
	})
	b.Run("opts=typical/impl=nettune", func(b *testing.B) {
		dialLoop(b, typicalNettune(b).DialContext, "tcp", addr)
	})
}

// BenchmarkDialName dials "localhost" (resolved from /etc/hosts by Go's
// resolver): net.Dialer's own resolution and dial against dialer.Dialer's
// resolver path with its Happy Eyeballs race.
func BenchmarkDialName(b *testing.B) {
	ln := server(b, "tcp4", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	addr := net.JoinHostPort("localhost", port)
	if _, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err != nil {
		b.Skipf("localhost does not resolve here: %v", err)
	}
	b.Run("opts=typical/impl=net", func(b *testing.B) {
		dialLoop(b, typicalNet().DialContext, "tcp4", addr)
	})
	b.Run("opts=typical/impl=nettune", func(b *testing.B) {
		dialLoop(b, typicalNettune(b).DialContext, "tcp4", addr)
	})
}

// The request and response of the write-write-read exchange: a header and
// a body written separately, as a naive client does.
var (
	header = []byte("LEN 0008")
	body   = []byte("ping1234")
)

// echoServer reads a 16-byte request and answers 16 bytes, on every
// connection, until the benchmark ends.
func echoServer(b *testing.B) net.Listener {
	b.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, len(header)+len(body))
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			})
		}
	})
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln
}

// BenchmarkWriteWriteRead is the Nagle/delayed-ACK stall: the client
// writes a header and a body in two writes and waits for the answer. With
// Nagle's algorithm on (nodelay=false) the body waits for the ACK of the
// header, which the server delays (it has nothing to send yet): tens of
// milliseconds per exchange. TCP_NODELAY (Go's default) or one writev
// (net.Buffers) avoids it. Keep -benchtime small: each stalled exchange
// takes ~40ms.
func BenchmarkWriteWriteRead(b *testing.B) {
	ln := echoServer(b)
	for _, tc := range []struct {
		nodelay bool
		writev  bool
	}{{false, false}, {true, false}, {false, true}} {
		write := "two"
		if tc.writev {
			write = "writev"
		}
		b.Run("nodelay="+strconv.FormatBool(tc.nodelay)+"/write="+write, func(b *testing.B) {
			d, err := dialer.New(dialer.Sockopt(sockopt.NoDelay(tc.nodelay)))
			if err != nil {
				b.Fatal(err)
			}
			c, err := d.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if got, err := sockopt.Get(c.(*net.TCPConn), sockopt.NoDelay(false)); err != nil || got != sockopt.NoDelay(tc.nodelay) {
				b.Fatalf("TCP_NODELAY reads back %v (%v), want %v", got, err, tc.nodelay)
			}
			resp := make([]byte, len(header)+len(body))
			exchange := func() {
				if tc.writev {
					bufs := net.Buffers{header, body}
					if _, err := bufs.WriteTo(c); err != nil {
						b.Fatal(err)
					}
				} else {
					if _, err := c.Write(header); err != nil {
						b.Fatal(err)
					}
					if _, err := c.Write(body); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := io.ReadFull(c, resp); err != nil {
					b.Fatal(err)
				}
			}
			// The kernel starts a connection in quick-ACK mode; a few
			// exchanges leave it, so the loop measures the steady state.
			for range 4 {
				exchange()
			}
			b.ReportAllocs()
			for b.Loop() {
				exchange()
			}
		})
	}
}
