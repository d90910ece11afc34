package dnscache

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// benchCache is a cache over a loopback server with svc.bench.test cached
// for network n (two addresses, so that rotation has work to do).
func benchCache(b *testing.B, network string) *Cache {
	b.Helper()
	srv := startServer(b)
	srv.SetAddrs("svc.bench.test", time.Hour, addrs("127.0.0.2", "127.0.0.3", "::2")...)
	c := newCache(b, ResolvConf(resolvConfFor(b, srv)))
	if _, err := c.LookupNetIP(context.Background(), network, "svc.bench.test"); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkHit is the hot path: AppendNetIP of a fresh entry into a reused
// buffer, serially and from every P.
func BenchmarkHit(b *testing.B) {
	ctx := context.Background()
	b.Run("path=AppendNetIP", func(b *testing.B) {
		c := benchCache(b, "ip4")
		buf := make([]netip.Addr, 0, 8)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", "svc.bench.test")
		}
		if len(buf) != 2 {
			b.Fatal(buf)
		}
	})
	b.Run("path=AppendNetIP/parallel", func(b *testing.B) {
		c := benchCache(b, "ip4")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]netip.Addr, 0, 8)
			for pb.Next() {
				buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", "svc.bench.test")
			}
		})
	})
	b.Run("path=LookupNetIP", func(b *testing.B) {
		c := benchCache(b, "ip4")
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.LookupNetIP(ctx, "ip4", "svc.bench.test")
		}
	})
	b.Run("path=LookupHost", func(b *testing.B) {
		c := benchCache(b, "ip")
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.LookupHost(ctx, "svc.bench.test")
		}
	})
}
