package dnscachebench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rsdnscache "github.com/rs/dnscache"

	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/internal/dnstest"
)

// The cost of a hit and of an insert as the number of cached hosts grows:
// 10, 10,000 and 1,000,000 names. The names come from a source without a
// network ([dnscache.Static] for nettune, a map behind rs/dnscache's
// DNSResolver interface), so that the query costs next to nothing and what
// is measured is the cache's own work.
var scaleSizes = []int{10, 10_000, 1_000_000}

var (
	scaleMu    sync.Mutex // guards scaleNames
	scaleNames = map[int][]string{}
)

// names returns n distinct host names, the same ones on every call.
func names(n int) []string {
	scaleMu.Lock()
	defer scaleMu.Unlock()
	if s, ok := scaleNames[n]; ok {
		return s
	}
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("h%07d.scale.test", i)
	}
	scaleNames[n] = s
	return s
}

var scaleAddr = netip.MustParseAddr("127.0.0.2")

// staticCache is a nettune cache answering every name of hosts from a
// map, bounded well above len(hosts).
func staticCache(b *testing.B, hosts []string) *dnscache.Cache {
	b.Helper()
	m := make(map[string][]netip.Addr, len(hosts))
	for _, h := range hosts {
		m[h] = []netip.Addr{scaleAddr}
	}
	return nettuneCache(b, dnscache.Static(m), dnscache.TTL(time.Hour),
		dnscache.MaxEntries(2*len(hosts)+16), dnscache.MaxBytes(1<<31))
}

// mapResolver is an rs/dnscache DNSResolver answering from a map.
type mapResolver map[string][]string

func (m mapResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (m mapResolver) LookupAddr(context.Context, string) ([]string, error) { return nil, nil }

// anyResolver is an rs/dnscache DNSResolver answering every name.
type anyResolver struct{}

func (anyResolver) LookupHost(context.Context, string) ([]string, error) {
	return []string{scaleAddr.String()}, nil
}

func (anyResolver) LookupAddr(context.Context, string) ([]string, error) { return nil, nil }

func newMapResolver(hosts []string) mapResolver {
	m := make(mapResolver, len(hosts))
	for _, h := range hosts {
		m[h] = []string{scaleAddr.String()}
	}
	return m
}

func fillNettune(b *testing.B, c *dnscache.Cache, hosts []string) { fillNettuneFor(b, c, "ip4", hosts) }

// fillNettuneFor fills c with hosts for network: "ip" asks A and AAAA, as
// rs/dnscache's LookupHost does.
func fillNettuneFor(b *testing.B, c *dnscache.Cache, network string, hosts []string) {
	b.Helper()
	var buf [4]netip.Addr
	for _, h := range hosts {
		if a, err := c.AppendNetIP(context.Background(), buf[:0], network, h); err != nil || len(a) != 1 {
			b.Fatalf("%s: %v %v", h, a, err)
		}
	}
}

func fillRS(b *testing.B, r *rsdnscache.Resolver, hosts []string) {
	b.Helper()
	for _, h := range hosts {
		if a, err := r.LookupHost(context.Background(), h); err != nil || len(a) != 1 {
			b.Fatalf("%s: %v %v", h, a, err)
		}
	}
}

// hot is 16 names spread over hosts, the ones a hit benchmark asks for.
func hot(hosts []string) []string {
	out := make([]string, 16)
	for i := range out {
		// A copy, as a caller's name would be: not the very string a
		// cache stored, which compares equal by its address alone.
		out[i] = strings.Clone(hosts[i*len(hosts)/len(out)])
	}
	return out
}

// filledCaches returns a nettune cache and an rs/dnscache resolver that
// both hold the same n names, and 16 hot names to ask them for; the
// garbage of filling them is collected before it returns.
func filledCaches(b *testing.B, n int) (*dnscache.Cache, *rsdnscache.Resolver, []string) {
	hosts := names(n)
	hh := hot(hosts)
	c := staticCache(b, hosts)
	fillNettune(b, c, hosts)
	r := &rsdnscache.Resolver{Resolver: newMapResolver(hosts)}
	fillRS(b, r, hosts)
	runtime.GC()
	return c, r, hh
}

// BenchmarkScaleHit: a hit on one of 16 hot names in a cache holding
// entries names, serial and from every P. Each size's caches are filled
// once, outside the timings, and garbage collected before.
func BenchmarkScaleHit(b *testing.B) {
	ctx := context.Background()
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			c, r, hh := filledCaches(b, n)
			b.Run("impl=nettune", func(b *testing.B) {
				buf := make([]netip.Addr, 0, 4)
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", hh[i&15])
					i++
				}
				if len(buf) != 1 || c.Stats().Entries != n {
					b.Fatal(buf, c.Stats())
				}
			})
			b.Run("impl=rsdnscache", func(b *testing.B) {
				var got []string
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					got, _ = r.LookupHost(ctx, hh[i&15])
					i++
				}
				if len(got) != 1 {
					b.Fatal(got)
				}
			})
		})
	}
}

func BenchmarkScaleHitParallel(b *testing.B) {
	ctx := context.Background()
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			c, r, hh := filledCaches(b, n)
			b.Run("impl=nettune", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					buf := make([]netip.Addr, 0, 4)
					i := 0
					for pb.Next() {
						buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", hh[i&15])
						i++
					}
					if i > 0 && len(buf) != 1 {
						b.Error(buf)
					}
				})
			})
			b.Run("impl=rsdnscache", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					var got []string
					i := 0
					for pb.Next() {
						got, _ = r.LookupHost(ctx, hh[i&15])
						i++
					}
					if i > 0 && len(got) != 1 {
						b.Error(got)
					}
				})
			})
		})
	}
}

// BenchmarkScaleFill: filling an empty cache with entries names, one miss
// each; ns/host is the cost of one insert averaged over the fill (the
// whole fill is one op).
func BenchmarkScaleFill(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			hosts := names(n)
			b.Run("impl=nettune", func(b *testing.B) {
				c := staticCache(b, hosts)
				b.ReportAllocs()
				for b.Loop() {
					c.Flush()
					fillNettune(b, c, hosts)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/host")
			})
			b.Run("impl=rsdnscache", func(b *testing.B) {
				res := newMapResolver(hosts)
				b.ReportAllocs()
				for b.Loop() {
					fillRS(b, &rsdnscache.Resolver{Resolver: res}, hosts)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/host")
			})
		})
	}
}

// BenchmarkScaleInsertFull: a new name into a cache already holding
// entries names, at MaxEntries, so that each insert also evicts one.
// rs/dnscache has no bound: its row is a new name into a map of that size,
// which then grows.
func BenchmarkScaleInsertFull(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			hosts := names(2 * n)
			b.Run("impl=nettune", func(b *testing.B) {
				m := make(map[string][]netip.Addr, len(hosts))
				for _, h := range hosts {
					m[h] = []netip.Addr{scaleAddr}
				}
				c := nettuneCache(b, dnscache.Static(m), dnscache.TTL(time.Hour), dnscache.MaxEntries(n), dnscache.MaxBytes(1<<31))
				fillNettune(b, c, hosts[:n])
				i := n // hosts[:n] are cached: start at the first that is not
				var buf [4]netip.Addr
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.AppendNetIP(context.Background(), buf[:0], "ip4", hosts[i%len(hosts)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				if st := c.Stats(); st.Entries > n {
					b.Fatalf("%d entries, MaxEntries %d", st.Entries, n)
				}
			})
			b.Run("impl=rsdnscache", func(b *testing.B) {
				r := &rsdnscache.Resolver{Resolver: anyResolver{}}
				fillRS(b, r, hosts[:n])
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					// A name never asked before (rs/dnscache never evicts,
					// so a name asked again would be a hit): building it
					// costs one allocation of this row.
					if _, err := r.LookupHost(context.Background(), "x"+strconv.Itoa(i)+".scale.test"); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}

// BenchmarkScaleFillLoopback: filling an empty cache with 5,000 names from
// the DNS server on loopback, as the issue measured it: ns/host is one miss
// (the queries plus the insert), averaged over the fill. Every row asks A
// and AAAA (network "ip"; rs/dnscache's LookupHost).
func BenchmarkScaleFillLoopback(b *testing.B) {
	const n = 5000
	hosts := names(n)
	srv, err := dnstest.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	for _, h := range hosts {
		srv.SetAddrs(h, time.Hour, scaleAddr)
	}
	conf := filepath.Join(b.TempDir(), "resolv.conf")
	if err := srv.WriteResolvConf(conf, "options timeout:2 attempts:2"); err != nil {
		b.Fatal(err)
	}
	perHost := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/host")
	}
	b.Run("impl=nettune", func(b *testing.B) {
		c := nettuneCache(b, dnscache.ResolvConf(conf), dnscache.MaxEntries(2*n))
		b.ReportAllocs()
		for b.Loop() {
			c.Flush()
			fillNettuneFor(b, c, "ip", hosts)
		}
		perHost(b)
	})
	b.Run("impl=nettune-system", func(b *testing.B) {
		c := nettuneCache(b, dnscache.System(srv.Resolver()), dnscache.TTL(time.Hour), dnscache.MaxEntries(2*n))
		b.ReportAllocs()
		for b.Loop() {
			c.Flush()
			fillNettuneFor(b, c, "ip", hosts)
		}
		perHost(b)
	})
	b.Run("impl=rsdnscache", func(b *testing.B) {
		res := srv.Resolver()
		b.ReportAllocs()
		for b.Loop() {
			fillRS(b, &rsdnscache.Resolver{Resolver: res}, hosts)
		}
		perHost(b)
	})
}
