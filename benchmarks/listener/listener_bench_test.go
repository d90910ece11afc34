//go:build linux

package listenerbench

import (
	"context"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	reuseport "github.com/libp2p/go-reuseport"
	"github.com/valyala/tcplisten"
	"go.uber.org/goleak"

	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/sockopt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// typical is a per-connection option set a server might use: keepalive
// tuned for a load balancer's idle timeout, TCP_USER_TIMEOUT so that a
// dead peer with unacked data is noticed, a small unsent-data threshold.
var typical = []sockopt.Option{
	sockopt.KeepAlive(true),
	sockopt.KeepAliveIdle(60 * time.Second),
	sockopt.KeepAliveInterval(10 * time.Second),
	sockopt.KeepAliveCount(5),
	sockopt.UserTimeout(110 * time.Second),
	sockopt.NotSentLowat(16 << 10),
}

// setTypicalByHand sets the typical options with raw setsockopt calls: what
// a service on plain net.ListenConfig writes after each Accept.
func setTypicalByHand(c net.Conn) error {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		s := int(fd)
		for _, o := range [][3]int{
			{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 60},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 10},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 5},
			{syscall.IPPROTO_TCP, 0x12 /* TCP_USER_TIMEOUT */, 110000},
			{syscall.IPPROTO_TCP, 0x19 /* TCP_NOTSENT_LOWAT */, 16 << 10},
		} {
			if serr = syscall.SetsockoptInt(s, o[0], o[1], o[2]); serr != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// serveAccepts runs an accept loop that hands each conn to out, after
// after(c) when after is set, until ln is closed.
func serveAccepts(b *testing.B, ln net.Listener, after func(net.Conn) error, out chan<- net.Conn, wg *sync.WaitGroup) {
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if after != nil {
				if err := after(c); err != nil {
					b.Error(err)
					c.Close()
					continue
				}
			}
			out <- c
		}
	})
}

// closeHard closes a client conn with SO_LINGER 0 (an RST), so that no
// TIME_WAIT entry is left to exhaust loopback ports over a long run.
func closeHard(c net.Conn) {
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
}

// benchConnectAccept measures one connect plus the Accept that hands out
// the connection, options set.
func benchConnectAccept(b *testing.B, ln net.Listener, after func(net.Conn) error) {
	b.ReportAllocs()
	accepted := make(chan net.Conn, 1)
	var wg sync.WaitGroup
	serveAccepts(b, ln, after, accepted, &wg)
	defer wg.Wait()
	defer ln.Close()
	addr := ln.Addr().String()
	var d net.Dialer
	for b.Loop() {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		s := <-accepted
		closeHard(c)
		s.Close()
	}
}

// plainListen is net.ListenConfig with Multipath TCP off, as nettune turns
// it off for the TCP-only TCP_USER_TIMEOUT: both sides accept plain TCP.
func plainListen(b *testing.B) net.Listener {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

func nettuneListen(b *testing.B, opts ...listener.Option) net.Listener {
	cfg, err := listener.New(append(opts, listener.MultipathTCP(false))...)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

func BenchmarkConnectAccept(b *testing.B) {
	b.Run("opts=none/impl=net", func(b *testing.B) {
		benchConnectAccept(b, plainListen(b), nil)
	})
	b.Run("opts=none/impl=nettune", func(b *testing.B) {
		benchConnectAccept(b, nettuneListen(b), nil)
	})
	b.Run("opts=typical/impl=net", func(b *testing.B) {
		benchConnectAccept(b, plainListen(b), setTypicalByHand)
	})
	b.Run("opts=typical/impl=nettune", func(b *testing.B) {
		opts := make([]listener.Option, len(typical))
		for i, o := range typical {
			opts[i] = listener.ConnSockopt(o)
		}
		benchConnectAccept(b, nettuneListen(b, opts...), nil)
	})
}

// groupLoops is the number of listeners (and accept loops) in a group.
const groupLoops = 2

// benchGroup measures connections served per second by groupLoops accept
// loops: each connection gets one byte from the server and is closed.
// Several client goroutines dial at once.
func benchGroup(b *testing.B, lns []net.Listener) {
	b.ReportAllocs()
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte{1})
				c.Close()
			}
		})
	}
	addr := lns[0].Addr().String()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		var d net.Dialer
		buf := make([]byte, 1)
		for pb.Next() {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Read(buf); err != nil {
				b.Error(err)
			}
			closeHard(c)
		}
	})
	b.StopTimer()
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
}

func BenchmarkReusePortGroup(b *testing.B) {
	b.Run("impl=nettune", func(b *testing.B) {
		cfg, err := listener.New(listener.MultipathTCP(false))
		if err != nil {
			b.Fatal(err)
		}
		g, err := cfg.ListenGroup(context.Background(), "tcp", "127.0.0.1:0", groupLoops)
		if err != nil {
			b.Fatal(err)
		}
		var lns []net.Listener
		for _, l := range g.Listeners() {
			lns = append(lns, l)
		}
		benchGroup(b, lns)
	})
	b.Run("impl=tcplisten", func(b *testing.B) {
		cfg := tcplisten.Config{ReusePort: true}
		lns := listenN(b, func(addr string) (net.Listener, error) { return cfg.NewListener("tcp4", addr) })
		benchGroup(b, lns)
	})
	b.Run("impl=goreuseport", func(b *testing.B) {
		// go-reuseport listens with Go's defaults: Multipath TCP on for a
		// module that says go >= 1.24, as this one does.
		lns := listenN(b, func(addr string) (net.Listener, error) { return reuseport.Listen("tcp", addr) })
		benchGroup(b, lns)
	})
	b.Run("impl=net", func(b *testing.B) {
		// One listener shared by the same number of accept loops.
		ln := plainListen(b)
		lns := make([]net.Listener, groupLoops)
		for i := range lns {
			lns[i] = ln
		}
		benchGroup(b, lns)
	})
}

// listenN opens groupLoops listeners on one port with listen.
func listenN(b *testing.B, listen func(addr string) (net.Listener, error)) []net.Listener {
	first, err := listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	lns := []net.Listener{first}
	for len(lns) < groupLoops {
		ln, err := listen(first.Addr().String())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			b.Fatal(err)
		}
		lns = append(lns, ln)
	}
	return lns
}

// BenchmarkPerConnOptions isolates what Accept adds per connection: the
// typical set applied to one accepted conn, by the listener's path
// (sockopt.Apply, as Listener.Accept calls it) and by hand.
func BenchmarkPerConnOptions(b *testing.B) {
	ln := plainListen(b)
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer closeHard(client)
	s := <-done
	if s == nil {
		b.Fatal("accept failed")
	}
	defer s.Close()
	b.Run("impl=net", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := setTypicalByHand(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=nettune", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := sockopt.Apply(s.(*net.TCPConn), typical...); err != nil {
				b.Fatal(err)
			}
		}
	})
}
