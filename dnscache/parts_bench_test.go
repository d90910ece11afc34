package dnscache

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
	_ "unsafe" // for go:linkname
)

//go:linkname runtimeNanotime runtime.nanotime
func runtimeNanotime() int64

var sinkI64 int64
var sinkU64 uint64
var sinkU32 uint32
var sinkBool bool

// BenchmarkHitParts measures each part of a hit alone, on a cache of 10k
// names, so that a hit reads as the sum of its parts: the clock (as the
// cache reads it, and runtime.nanotime, which time.Since wraps), the hash
// of the name, the probe of the table (hash given), the load of the
// entry, the CLOCK mark, the hit counter, the copy of the answer, and the
// whole hit.
func BenchmarkHitParts(b *testing.B) {
	hosts := scaleNames(10_000)
	c := scaleCache(b, hosts, len(hosts))
	runtime.GC()
	hot := make([]string, 16)
	hashes := make([]uint64, 16)
	for i := range hot {
		hot[i] = strings.Clone(hosts[i*len(hosts)/len(hot)]) // a caller's copy (see benchmarkScale)
		hashes[i] = c.hashName(hot[i])
	}
	t := c.idx[1].t.Load()
	s := t.find(hashes[0], hot[0])
	e := s.e.Load()
	b.Run("part=clock-time.Since", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			sinkI64 = int64(time.Since(start))
		}
	})
	b.Run("part=clock-nanotime", func(b *testing.B) {
		for b.Loop() {
			sinkI64 = runtimeNanotime()
		}
	})
	b.Run("part=maphash", func(b *testing.B) {
		i := 0
		for b.Loop() {
			sinkU64 = maphash.String(c.seed, hot[i&15])
			i++
		}
	})
	b.Run("part=hashName", func(b *testing.B) {
		i := 0
		for b.Loop() {
			sinkU64 = c.hashName(hot[i&15])
			i++
		}
	})
	b.Run("part=probe", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s = c.idx[1].t.Load().find(hashes[i&15], hot[i&15])
			i++
		}
	})
	b.Run("part=entry-load", func(b *testing.B) {
		for b.Loop() {
			e = s.e.Load()
			sinkBool = e.err == nil
		}
	})
	b.Run("part=touch", func(b *testing.B) {
		for b.Loop() {
			s.touch()
		}
	})
	b.Run("part=countHit", func(b *testing.B) {
		for b.Loop() {
			sinkU32 = c.countHit()
		}
	})
	b.Run("part=countHit/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sinkU32 = c.countHit()
			}
		})
	})
	b.Run("part=appendRotated", func(b *testing.B) {
		buf := make([]netip.Addr, 0, 4)
		for b.Loop() {
			buf = e.appendRotated(buf[:0], 12345, famAll)
		}
	})
	b.Run("part=whole", func(b *testing.B) {
		buf := make([]netip.Addr, 0, 4)
		ctx := context.Background()
		i := 0
		for b.Loop() {
			buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", hot[i&15])
			i++
		}
	})
	b.Run("part=whole-without-clock", func(b *testing.B) {
		// The whole hit but the clock read: an injected clock that
		// returns a constant (one indirect call instead of the read).
		now := c.now()
		c.clock = func() int64 { return now }
		defer func() { c.clock = nil }()
		buf := make([]netip.Addr, 0, 4)
		ctx := context.Background()
		i := 0
		for b.Loop() {
			buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", hot[i&15])
			i++
		}
	})
}

// BenchmarkMissParts measures each part of a miss alone (a new name into a
// full cache), at 10 and 1M entries (where every allocation also pays for
// the collector marking a large heap): a goroutine and the wait for it
// (what a caller that can give up still pays), a lookup context, the
// flight's bookkeeping under the lock, the source, the entry, the insert,
// and the whole miss (run by the caller: Background context).
func BenchmarkMissParts(b *testing.B) {
	for _, n := range []int{10, 1_000_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			hosts := scaleNames(2 * n)
			c := scaleCache(b, hosts[:n], n)
			next := n // the next name to insert: one the cache does not hold (see benchmarkScale)
			runtime.GC()
			b.Run("part=go-and-wait", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					done := make(chan struct{})
					c.wg.Add(1)
					go func() { defer c.wg.Done(); close(done) }()
					<-done
				}
			})
			b.Run("part=lookupCtx", func(b *testing.B) {
				// What a miss from a source that never asks for Done
				// pays for its context now (Cache.run).
				var f flight
				b.ReportAllocs()
				for b.Loop() {
					f.ctx = lookupCtx{}
					f.ctx.start(c.ctx, c.cfg.lookupTimeout)
					f.ctx.end()
				}
			})
			b.Run("part=withTimeout", func(b *testing.B) {
				// What it paid before, and what one that asks pays.
				b.ReportAllocs()
				for b.Loop() {
					ctx, cancel := context.WithTimeout(c.ctx, c.cfg.lookupTimeout)
					_ = ctx
					cancel()
				}
			})
			b.Run("part=flight-bookkeeping", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					k := key{1, hosts[i%len(hosts)]}
					c.mu.Lock()
					f := &flight{host: k.host, gen: c.gen}
					c.flights[k] = f
					c.sem <- struct{}{}
					c.mu.Unlock()
					c.mu.Lock()
					delete(c.flights, k)
					c.mu.Unlock()
					<-c.sem
					i++
				}
			})
			b.Run("part=source", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c.src.lookup(c.ctx, "ip4", hosts[0])
				}
			})
			b.Run("part=positive", func(b *testing.B) {
				a := []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}
				b.ReportAllocs()
				for b.Loop() {
					c.positive(a, time.Hour, c.now())
				}
			})
			b.Run("part=store-full", func(b *testing.B) {
				e := c.positive([]netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}, time.Hour, c.now())
				b.ReportAllocs()
				for b.Loop() {
					c.mu.Lock()
					c.storeLocked(key{1, hosts[next%len(hosts)]}, e)
					c.mu.Unlock()
					next++
				}
			})
			b.Run("part=whole", func(b *testing.B) {
				var buf [4]netip.Addr
				misses, first := c.Stats().Misses, next
				b.ReportAllocs()
				for b.Loop() {
					c.AppendNetIP(context.Background(), buf[:0], "ip4", hosts[next%len(hosts)])
					next++
				}
				if got := c.Stats().Misses - misses; got != uint64(next-first) {
					b.Errorf("%d misses for %d inserts: some names were cached", got, next-first)
				}
			})
		})
	}
}
