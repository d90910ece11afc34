package sockopt_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nettune/nettune/sockopt"
)

// typical is a realistic client set: one TCP-only option (so the MPTCP
// check runs), a buffer, and a read-back option (Congestion).
var typical = []sockopt.Option{
	sockopt.UserTimeout(30 * time.Second),
	sockopt.ReceiveBuffer(256 << 10),
	sockopt.NotSentLowat(16 << 10),
	sockopt.Congestion("reno"),
}

// benchPair is a loopback connection pair for benchmarks, plain TCP.
func benchPair(b *testing.B) (*net.TCPListener, *net.TCPConn) {
	b.Helper()
	ln := listenTCP(b, false)
	d := net.Dialer{}
	d.SetMultipathTCP(false)
	c, err := d.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	a, err := ln.AcceptTCP()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return ln, c.(*net.TCPConn)
}

func BenchmarkApply(b *testing.B) {
	if !supportsTypical() {
		b.Skip("the typical set is Linux-only")
	}
	_, c := benchPair(b)
	cases := []struct {
		name string
		opts []sockopt.Option
	}{
		{"options=nodelay", []sockopt.Option{sockopt.NoDelay(true)}},
		{"options=typical", typical},
	}
	for _, o := range typical {
		cases = append(cases, struct {
			name string
			opts []sockopt.Option
		}{"option=" + o.Name(), []sockopt.Option{o}})
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := sockopt.Apply(c, bc.opts...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkControl is the cost the Control function adds to a dial, run
// on a live socket so that the connect itself is not measured.
func BenchmarkControl(b *testing.B) {
	if !supportsTypical() {
		b.Skip("the typical set is Linux-only")
	}
	_, c := benchPair(b)
	rc, err := c.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	ctl := sockopt.DialControl(typical...)
	b.ReportAllocs()
	for b.Loop() {
		if err := ctl("tcp4", "127.0.0.1:1", rc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDial puts Control's cost next to a whole loopback connect.
func BenchmarkDial(b *testing.B) {
	if !supportsTypical() {
		b.Skip("the typical set is Linux-only")
	}
	ln := listenTCP(b, false)
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
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	for _, bc := range []struct {
		name string
		d    net.Dialer
	}{
		{"control=none", net.Dialer{}},
		{"control=typical", net.Dialer{Control: sockopt.DialControl(typical...)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.d.SetMultipathTCP(false)
			b.ReportAllocs()
			for b.Loop() {
				c, err := bc.d.Dial("tcp4", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkReadTCPInfo is the cost of one TCP_INFO sample on a live
// connection, as a periodic sampler pays it.
func BenchmarkReadTCPInfo(b *testing.B) {
	if !supportsTypical() {
		b.Skip("TCP_INFO is read in full on Linux only")
	}
	_, c := benchPair(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sockopt.ReadTCPInfo(c); err != nil {
			b.Fatal(err)
		}
	}
}
