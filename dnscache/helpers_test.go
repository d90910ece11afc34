package dnscache

import (
	"context"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nettune/nettune/internal/dnstest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a manual clock for the cache's Clock option.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func startServer(t testing.TB) *dnstest.Server {
	t.Helper()
	s, err := dnstest.Start()
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// resolvConfFor writes a resolv.conf naming srv, with a 1 s timeout and one
// attempt unless extra lines say otherwise.
func resolvConfFor(t testing.TB, srv *dnstest.Server, extra ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, srv.WriteResolvConf(p, append([]string{"options timeout:1 attempts:1"}, extra...)...))
	return p
}

func newCache(t testing.TB, opts ...Option) *Cache {
	t.Helper()
	c, err := New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// stubCache is a cache reading real TTLs from srv, on a fake clock.
func stubCache(t testing.TB, srv *dnstest.Server, clk *fakeClock, opts ...Option) *Cache {
	t.Helper()
	return newCache(t, append([]Option{ResolvConf(resolvConfFor(t, srv)), Clock(clk.Now)}, opts...)...)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// settle waits until the cache has no lookup in progress.
func settle(t testing.TB, c *Cache) {
	t.Helper()
	require.Eventually(t, func() bool { return c.Stats().InFlight == 0 }, 20*time.Second, time.Millisecond,
		"background lookups did not finish")
}
