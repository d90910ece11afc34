package netlab_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nettune/nettune/netlab"
)

// BenchmarkDelayAccuracy sends 1000-byte UDP datagrams from A to B, paced
// at a load of 1, 10 and 100 Mbit/s, over a link with a 5 ms delay and no
// rate limit, and reports how far the delay the link actually added lies
// from the configured one (added-p50-µs, added-p99-µs: measured minus
// configured) and the relay's lateness. Run it with -benchtime=2000x or
// more so that the quantiles mean something.
func BenchmarkDelayAccuracy(b *testing.B) {
	for _, mbps := range []int{1, 10, 100} {
		b.Run("load="+strconv.Itoa(mbps)+"Mbit", func(b *testing.B) {
			const delay = 5 * time.Millisecond
			lab := newLab(b, netlab.Path(netlab.Profile{Delay: delay}))
			pc, c := udpPair(b, lab)
			defer pc.Close()
			defer c.Close()
			msg := make([]byte, 1000-28) // 1000 bytes with the IP and UDP headers
			interval := time.Duration(float64(len(msg)+28) * 8 / (float64(mbps) * 1e6) * float64(time.Second))
			start := time.Now()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				for time.Since(start) < time.Duration(i)*interval { // pace the load
					if d := time.Duration(i)*interval - time.Since(start); d > 200*time.Microsecond {
						time.Sleep(d - 200*time.Microsecond)
					}
				}
				if _, err := c.Write(msg); err != nil && !errors.Is(err, syscall.ENOBUFS) {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			st := settle(b, lab)
			b.ReportMetric(float64(st.Delay.Quantile(0.5)-delay)/1e3, "added-p50-µs")
			b.ReportMetric(float64(st.Delay.Quantile(0.99)-delay)/1e3, "added-p99-µs")
			b.ReportMetric(float64(st.Late.Quantile(0.5))/1e3, "late-p50-µs")
			b.ReportMetric(float64(st.Late.Quantile(0.99))/1e3, "late-p99-µs")
			b.ReportMetric(float64(st.Sent-st.Delivered), "undelivered")
		})
	}
}

// BenchmarkRelayPerPacket measures what carrying one packet costs: A sends
// 100-byte UDP datagrams as fast as it can over a perfect link; ns/op is
// the time per packet, and cpu-ns/pkt the process's CPU time (the relay's,
// the sender's and the receiver's) per packet delivered.
func BenchmarkRelayPerPacket(b *testing.B) {
	lab := newLab(b)
	pc, c := udpPair(b, lab)
	defer pc.Close()
	defer c.Close()
	msg := make([]byte, 100)
	cpu0 := cpuTime()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil && !errors.Is(err, syscall.ENOBUFS) {
			b.Fatal(err)
		}
	}
	st := settle(b, lab)
	if st.Delivered > 0 {
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(st.Delivered), "cpu-ns/pkt")
	}
	b.ReportMetric(float64(st.Delivered)/float64(st.Sent), "delivered/sent")
}

// udpPair returns a receiver on B that drains what it gets and a
// connected sender on A.
func udpPair(b *testing.B, lab *netlab.Lab) (net.PacketConn, net.Conn) {
	pc, err := lab.B().ListenPacket("udp", netip.AddrPortFrom(lab.B().Addr(), 0).String())
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { pc.Close(); wg.Wait() })
	c, err := lab.A().Dial("udp", pc.LocalAddr().String())
	if err != nil {
		b.Fatal(err)
	}
	return pc, c
}

// settle waits until every packet read from A has been delivered or
// dropped, and returns A's link stats.
func settle(b *testing.B, lab *netlab.Lab) netlab.Stats {
	var st netlab.Stats
	waitFor(b, "the link to settle", func() bool {
		st = lab.Link(lab.A(), lab.B()).Stats()
		return st.Sent == st.Delivered+st.Lost+st.Overflowed+st.Blackholed+st.TooBig
	})
	return st
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBulk moves 1 MiB per op over TCP from A to B: on a perfect link
// it shows the most the relay carries here (MB/s); on a 100 Mbit/s link
// with a 5 ms delay, how close TCP gets to the rate and how late the relay
// delivered under that load.
func BenchmarkBulk(b *testing.B) {
	const chunk = 1 << 20
	for _, bc := range []struct {
		name string
		prof netlab.Profile
	}{
		{"link=perfect", netlab.Profile{}},
		{"link=100Mbit-5ms", netlab.Profile{Delay: 5 * time.Millisecond, Rate: 100_000_000}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			lab := newLab(b, netlab.Path(bc.prof))
			ln := listen(b, lab.B(), func(c net.Conn) {
				buf := make([]byte, chunk)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write([]byte{'k'}); err != nil {
						return
					}
				}
			})
			c := dial(b, lab.A(), ln.Addr().String())
			data := make([]byte, chunk)
			ack := make([]byte, 1)
			b.SetBytes(chunk)
			for b.Loop() {
				if _, err := c.Write(data); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, ack); err != nil {
					b.Fatal(err)
				}
			}
			st := lab.Link(lab.A(), lab.B()).Stats()
			b.ReportMetric(float64(st.Late.Quantile(0.5))/1e3, "late-p50-µs")
			b.ReportMetric(float64(st.Late.Quantile(0.99))/1e3, "late-p99-µs")
			b.ReportMetric(float64(st.Overflowed), "overflowed")
		})
	}
}
