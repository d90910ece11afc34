// Package dialerbench compares dialer.Dialer with a plain net.Dialer on
// loopback, and shows the Nagle/delayed-ACK stall that TCP_NODELAY avoids.
package dialerbench

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/internal/dnstest"
	"github.com/nettune/nettune/internal/servetest"
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
	dialLoopCtx(b, context.Background(), dial, network, address)
}

// dialLoopCtx is dialLoop with every dial under ctx.
func dialLoopCtx(b *testing.B, ctx context.Context, dial dialFunc, network, address string) {
	b.ReportAllocs()
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

func typicalOptions() []dialer.Option {
	opts := []dialer.Option{dialer.KeepAliveConfig(keepAlive)}
	for _, o := range typical {
		opts = append(opts, dialer.Sockopt(o))
	}
	return opts
}

func typicalNettune(b *testing.B, more ...dialer.Option) *dialer.Dialer {
	d, err := dialer.New(append(typicalOptions(), more...)...)
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

// table is a resolver answering from memory, as a warm DNS cache does:
// the same slice every time, no allocation.
type table map[string][]netip.Addr

func (t table) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ips, ok := t[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// BenchmarkDialName dials a host name, resolve + connect + reset close,
// with no socket options (MPTCP off) and with the typical set. Each
// resolver= pair compares the same work:
//   - resolver=table and resolver=dnscache: a resolver answering from
//     memory with 127.0.0.1: a map returning its own slice (a
//     dialer.AddrResolver and no more), and a warm dnscache.Cache. nettune
//     dials the name through it; net, which takes only a *net.Resolver,
//     looks the name up the cheapest way the resolver offers (LookupNetIP,
//     AppendNetIP into a stack buffer) and dials the IP literal. ctx= is
//     the dial's context: context.Background, or one with a deadline (a
//     request's), which costs both more.
//   - resolver=dns: a *net.Resolver (PreferGo) asking a loopback DNS
//     server, given to both (net.Dialer.Resolver, dialer.Resolver); the
//     name has an A record only (addrs=1), or A and AAAA with the server
//     listening on 127.0.0.1 and [::1] (addrs=2, Happy Eyeballs: the first
//     address wins at once). ctx= as above. The DNS server's own
//     allocations are counted too, alike for both.
//   - resolver=hosts: "localhost" through Go's default resolver
//     (/etc/hosts), network tcp4.
func BenchmarkDialName(b *testing.B) {
	ln := server(b, "tcp4", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	v4 := netip.MustParseAddr("127.0.0.1")
	v6 := netip.IPv6Loopback()

	opts := []struct {
		name string
		net  func() *net.Dialer
		opts []dialer.Option
	}{
		{"none", func() *net.Dialer { nd := new(net.Dialer); nd.SetMultipathTCP(false); return nd }, []dialer.Option{dialer.MultipathTCP(false)}},
		{"typical", typicalNet, typicalOptions()},
	}

	// A context that can end (a request's, or a Timeout's) costs net and
	// nettune more than context.Background: measure both.
	deadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	contexts := []struct {
		name string
		ctx  context.Context
	}{{"background", context.Background()}, {"deadline", deadline}}

	dns, err := dnstest.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dns.Close() })
	dns.SetAddrs("one.example", time.Hour, v4)
	port6 := dualStack(b)
	dns.SetAddrs("two.example", time.Hour, v6, v4)
	res := dns.Resolver()

	cache, err := dnscache.New(dnscache.System(res))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cache.Close() })
	if _, err := cache.LookupNetIP(context.Background(), "ip", "one.example"); err != nil {
		b.Fatal(err)
	}

	// The resolvers answering from memory, and how net's side asks them:
	// the allocation-free way each offers.
	tab := table{"svc.example": {v4}}
	memory := []struct {
		name   string
		r      dialer.AddrResolver
		host   string
		lookup func(ctx context.Context, buf []netip.Addr, host string) ([]netip.Addr, error)
	}{
		{"table", tab, "svc.example", func(ctx context.Context, _ []netip.Addr, host string) ([]netip.Addr, error) {
			return tab.LookupNetIP(ctx, "ip", host)
		}},
		{"dnscache", cache, "one.example", func(ctx context.Context, buf []netip.Addr, host string) ([]netip.Addr, error) {
			return cache.AppendNetIP(ctx, buf, "ip", host)
		}},
	}
	for _, m := range memory {
		for _, o := range opts {
			for _, cx := range contexts {
				name := "resolver=" + m.name + "/addrs=1/opts=" + o.name + "/ctx=" + cx.name
				b.Run(name+"/impl=net", func(b *testing.B) {
					nd := o.net()
					dialLoopCtx(b, cx.ctx, func(ctx context.Context, network, address string) (net.Conn, error) {
						host, port, err := net.SplitHostPort(address)
						if err != nil {
							return nil, err
						}
						var buf [4]netip.Addr
						ips, err := m.lookup(ctx, buf[:0], host)
						if err != nil {
							return nil, err
						}
						return nd.DialContext(ctx, network, net.JoinHostPort(ips[0].String(), port))
					}, "tcp", net.JoinHostPort(m.host, port))
				})
				b.Run(name+"/impl=nettune", func(b *testing.B) {
					d, err := dialer.New(append(o.opts, dialer.Resolver(m.r))...)
					if err != nil {
						b.Fatal(err)
					}
					dialLoopCtx(b, cx.ctx, d.DialContext, "tcp", net.JoinHostPort(m.host, port))
				})
			}
		}
	}

	for _, tc := range []struct{ addrs, name, port string }{{"1", "one.example", port}, {"2", "two.example", port6}} {
		for _, o := range opts {
			for _, cx := range contexts {
				name := "resolver=dns/addrs=" + tc.addrs + "/opts=" + o.name + "/ctx=" + cx.name
				b.Run(name+"/impl=net", func(b *testing.B) {
					nd := o.net()
					nd.Resolver = res
					dialLoopCtx(b, cx.ctx, nd.DialContext, "tcp", net.JoinHostPort(tc.name, tc.port))
				})
				b.Run(name+"/impl=nettune", func(b *testing.B) {
					d, err := dialer.New(append(o.opts, dialer.Resolver(res))...)
					if err != nil {
						b.Fatal(err)
					}
					dialLoopCtx(b, cx.ctx, d.DialContext, "tcp", net.JoinHostPort(tc.name, tc.port))
				})
			}
		}
	}

	addr := net.JoinHostPort("localhost", port)
	if _, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err != nil {
		b.Logf("localhost does not resolve here, resolver=hosts skipped: %v", err)
		return
	}
	b.Run("resolver=hosts/opts=typical/impl=net", func(b *testing.B) {
		dialLoop(b, typicalNet().DialContext, "tcp4", addr)
	})
	b.Run("resolver=hosts/opts=typical/impl=nettune", func(b *testing.B) {
		dialLoop(b, typicalNettune(b).DialContext, "tcp4", addr)
	})
}

// dualStack starts servers on 127.0.0.1 and [::1] on one port.
func dualStack(b *testing.B) string {
	b.Helper()
	for range 20 {
		ln4 := server(b, "tcp4", "127.0.0.1:0")
		_, port, _ := net.SplitHostPort(ln4.Addr().String())
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln6, err := lc.Listen(context.Background(), "tcp6", net.JoinHostPort("::1", port))
		if err != nil {
			ln4.Close()
			continue
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				c, err := ln6.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		})
		b.Cleanup(func() {
			ln6.Close()
			wg.Wait()
		})
		return port
	}
	b.Fatal("no port free on both 127.0.0.1 and [::1]")
	return ""
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
	servetest.Serve(b, ln, func(c net.Conn) {
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
