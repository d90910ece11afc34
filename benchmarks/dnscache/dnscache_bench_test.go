// Package dnscachebench compares dnscache.Cache with github.com/rs/dnscache
// on cache hits (serial and parallel) and misses against a DNS server on
// loopback.
package dnscachebench

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	rsdnscache "github.com/rs/dnscache"
	"go.uber.org/goleak"

	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/internal/dnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const host = "api.bench.test"

// two addresses, so that rotation has work to do.
var want = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}

// upstream starts a loopback DNS server answering host and returns it with
// a resolv.conf naming it.
func upstream(b *testing.B) (*dnstest.Server, string) {
	b.Helper()
	srv, err := dnstest.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	srv.SetAddrs(host, time.Hour, want...)
	p := filepath.Join(b.TempDir(), "resolv.conf")
	if err := srv.WriteResolvConf(p, "options timeout:2 attempts:2"); err != nil {
		b.Fatal(err)
	}
	return srv, p
}

func nettuneCache(b *testing.B, opts ...dnscache.Option) *dnscache.Cache {
	b.Helper()
	c, err := dnscache.New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// warm checks one lookup works, which also fills the cache.
func warm(b *testing.B, lookup func() (int, error)) {
	b.Helper()
	n, err := lookup()
	if err != nil || n != len(want) {
		b.Fatalf("warm-up lookup: %d addresses, %v", n, err)
	}
}

// warmNettune is a nettune cache over the stub resolver, host cached.
func warmNettune(b *testing.B) *dnscache.Cache {
	b.Helper()
	_, conf := upstream(b)
	c := nettuneCache(b, dnscache.ResolvConf(conf))
	warm(b, func() (int, error) {
		a, err := c.LookupNetIP(context.Background(), "ip4", host)
		return len(a), err
	})
	return c
}

// warmRS is an rs/dnscache resolver over the loopback server, host cached.
func warmRS(b *testing.B) *rsdnscache.Resolver {
	b.Helper()
	srv, _ := upstream(b)
	r := &rsdnscache.Resolver{Resolver: srv.Resolver()}
	warm(b, func() (int, error) {
		a, err := r.LookupHost(context.Background(), host)
		return len(a), err
	})
	return r
}

// BenchmarkHit: the hot path, serial. nettune appends into a reused buffer
// (AppendNetIP); rs/dnscache has only LookupHost, which returns its
// internal slice of strings.
func BenchmarkHit(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=nettune", func(b *testing.B) {
		c := warmNettune(b)
		buf := make([]netip.Addr, 0, 8)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", host)
		}
		if len(buf) != len(want) {
			b.Fatal(buf)
		}
	})
	b.Run("impl=rsdnscache", func(b *testing.B) {
		r := warmRS(b)
		var got []string
		b.ReportAllocs()
		for b.Loop() {
			got, _ = r.LookupHost(ctx, host)
		}
		if len(got) != len(want) {
			b.Fatal(got)
		}
	})
}

// BenchmarkHitParallel: the hot path from every P at once.
func BenchmarkHitParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=nettune", func(b *testing.B) {
		c := warmNettune(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]netip.Addr, 0, 8)
			n := 0
			for pb.Next() {
				buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", host)
				n++
			}
			if n > 0 && len(buf) != len(want) {
				b.Error(buf)
			}
		})
	})
	b.Run("impl=rsdnscache", func(b *testing.B) {
		r := warmRS(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var got []string
			n := 0
			for pb.Next() {
				got, _ = r.LookupHost(ctx, host)
				n++
			}
			if n > 0 && len(got) != len(want) {
				b.Error(got)
			}
		})
	})
}

// BenchmarkHitLookupNetIP: a hit through the signature the dialer takes,
// which hands the caller a []netip.Addr of its own. rs/dnscache has only
// LookupHost, so its row is LookupHost plus the parsing a caller that needs
// netip.Addr values (the dialer) has to do.
func BenchmarkHitLookupNetIP(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=nettune", func(b *testing.B) {
		c := warmNettune(b)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.LookupNetIP(ctx, "ip4", host)
		}
	})
	b.Run("impl=rsdnscache", func(b *testing.B) {
		r := warmRS(b)
		lookup := func() ([]netip.Addr, error) {
			hosts, err := r.LookupHost(ctx, host)
			if err != nil {
				return nil, err
			}
			out := make([]netip.Addr, 0, len(hosts))
			for _, h := range hosts {
				a, err := netip.ParseAddr(h)
				if err != nil {
					return nil, err
				}
				out = append(out, a)
			}
			return out, nil
		}
		b.ReportAllocs()
		for b.Loop() {
			_, _ = lookup()
		}
	})
}

// BenchmarkHitLookupHost: a hit through the string form. nettune returns a
// new slice (the strings themselves are shared, being immutable);
// rs/dnscache returns its internal slice, which a caller can corrupt.
func BenchmarkHitLookupHost(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=nettune", func(b *testing.B) {
		c := warmNettune(b) // "ip4" cached; LookupHost asks for "ip"
		warm(b, func() (int, error) { a, err := c.LookupHost(ctx, host); return len(a), err })
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.LookupHost(ctx, host)
		}
	})
	b.Run("impl=rsdnscache", func(b *testing.B) {
		r := warmRS(b)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = r.LookupHost(ctx, host)
		}
	})
}

// BenchmarkMiss: a lookup that has to ask the loopback DNS server (A and
// AAAA for "ip"), for the record. impl=nettune is the stub resolver source,
// impl=nettune-system the net.Resolver source, impl=net Go's resolver
// without any cache; the caches add their bookkeeping to a real query.
func BenchmarkMiss(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=nettune", func(b *testing.B) {
		_, conf := upstream(b)
		c := nettuneCache(b, dnscache.ResolvConf(conf))
		b.ReportAllocs()
		for b.Loop() {
			c.Flush()
			if _, err := c.LookupNetIP(ctx, "ip", host); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=nettune-system", func(b *testing.B) {
		srv, _ := upstream(b)
		c := nettuneCache(b, dnscache.System(srv.Resolver()))
		b.ReportAllocs()
		for b.Loop() {
			c.Flush()
			if _, err := c.LookupNetIP(ctx, "ip", host); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=rsdnscache", func(b *testing.B) {
		srv, _ := upstream(b)
		res := srv.Resolver()
		b.ReportAllocs()
		for b.Loop() {
			r := &rsdnscache.Resolver{Resolver: res} // a fresh, empty cache
			if _, err := r.LookupHost(ctx, host); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=net", func(b *testing.B) {
		srv, _ := upstream(b)
		res := srv.Resolver()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := res.LookupNetIP(ctx, "ip", host); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The caches must answer what the server says; a benchmark of a wrong
// answer would be worthless.
func TestBothCachesAnswerFromTheLoopbackServer(t *testing.T) {
	srv, err := dnstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetAddrs(host, time.Hour, want...)
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := srv.WriteResolvConf(p); err != nil {
		t.Fatal(err)
	}
	c, err := dnscache.New(dnscache.ResolvConf(p))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.LookupNetIP(context.Background(), "ip4", host)
	if err != nil || len(got) != 2 {
		t.Fatalf("nettune: %v %v", got, err)
	}
	r := &rsdnscache.Resolver{Resolver: srv.Resolver()}
	hosts, err := r.LookupHost(context.Background(), host)
	if err != nil || len(hosts) != 2 {
		t.Fatalf("rs/dnscache: %v %v", hosts, err)
	}
}
