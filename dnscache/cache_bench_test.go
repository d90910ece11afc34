package dnscache

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
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

// scaleSizes are the cache sizes of the scale benchmarks.
var scaleSizes = []int{10, 10_000, 1_000_000}

func scaleNames(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("h%07d.scale.test", i)
	}
	return s
}

// scaleCache is a cache holding every name of hosts (one address each,
// from a source without a network), bounded at maxEntries.
func scaleCache(b *testing.B, hosts []string, maxEntries int) *Cache {
	b.Helper()
	c := newCache(b, MaxEntries(maxEntries), MaxBytes(1<<31))
	c.src, c.instant = countingSource{1}, true // as Static would be
	var buf [4]netip.Addr
	for _, h := range hosts {
		if _, err := c.AppendNetIP(context.Background(), buf[:0], "ip4", h); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkScale: a hit on one of 16 names spread over a cache of entries
// names (serial and parallel), then an insert into that full cache (which
// evicts one) through a lookup (run by the caller, or detached in a
// goroutine of its own) and alone, and a fill from empty (ns/host), at 10,
// 10k and 1M entries.
// The cache is filled once per size, outside the timings, and collected
// garbage first, so that a hit does not share the CPU with the collector.
func BenchmarkScale(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) { benchmarkScale(b, n) })
	}
}

func benchmarkScale(b *testing.B, n int) {
	ctx := context.Background()
	hosts := scaleNames(2 * n)
	hot := make([]string, 16)
	for i := range hot {
		// A copy, as a caller's name would be: not the very string the
		// cache stored, which compares equal by its address alone.
		hot[i] = strings.Clone(hosts[i*n/len(hot)])
	}
	c := scaleCache(b, hosts[:n], n)
	// next is the next name to insert, shared by the insert benchmarks so
	// that each inserts names the cache does not hold: hosts[n:] first,
	// then round again to names evicted n inserts ago.
	next := n
	runtime.GC()
	b.Run("op=hit", func(b *testing.B) {
		buf := make([]netip.Addr, 0, 4)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", hot[i&15])
			i++
		}
		if len(buf) != 1 {
			b.Fatal(buf)
		}
	})
	b.Run("op=hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]netip.Addr, 0, 4)
			i := 0
			for pb.Next() {
				buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", hot[i&15])
				i++
			}
		})
	})
	b.Run("op=insert-full", func(b *testing.B) {
		var buf [4]netip.Addr
		misses, first := c.Stats().Misses, next
		defer func() {
			if got := c.Stats().Misses - misses; got != uint64(next-first) {
				b.Errorf("%d misses for %d inserts: some names were cached", got, next-first)
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.AppendNetIP(ctx, buf[:0], "ip4", hosts[next%len(hosts)]); err != nil {
				b.Fatal(err)
			}
			next++
		}
		if e := c.Stats().Entries; e > n {
			b.Fatalf("%d entries, MaxEntries %d", e, n)
		}
	})
	b.Run("op=insert-full-detached", func(b *testing.B) {
		// The same, from a caller that can give up (a context that
		// ends) and a source that may block (as a DNS server does): the
		// lookup runs in a goroutine of its own, which the caller waits
		// for, and the caller's flight has a channel.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		c.instant = false
		defer func() { c.instant = true }()
		var buf [4]netip.Addr
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.AppendNetIP(ctx, buf[:0], "ip4", hosts[next%len(hosts)]); err != nil {
				b.Fatal(err)
			}
			next++
		}
	})
	b.Run("op=store-full", func(b *testing.B) {
		// The insert alone, without the lookup around it: what the
		// table and the eviction hand cost, under the cache's lock.
		e := c.positive([]netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}, time.Hour, c.now())
		b.ReportAllocs()
		for b.Loop() {
			c.mu.Lock()
			c.storeLocked(key{1, hosts[next%len(hosts)]}, e)
			c.mu.Unlock()
			next++
		}
		if e := c.Stats().Entries; e != n {
			b.Fatalf("%d entries, MaxEntries %d", e, n)
		}
	})
	c.Flush()
	runtime.GC()
	b.Run("op=fill", func(b *testing.B) {
		var buf [4]netip.Addr
		b.ReportAllocs()
		for b.Loop() {
			c.Flush()
			for _, h := range hosts[:n] {
				if _, err := c.AppendNetIP(ctx, buf[:0], "ip4", h); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/host")
	})
	c.Flush()
}
