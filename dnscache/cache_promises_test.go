package dnscache

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// Tests for the promises of issue 9: TTL 0, memory bounds, the clock after a
// stall, LookupHost after a failed refresh, name normalisation and the cap
// on lookups in flight.

func TestATTLZeroAnswerIsNeverServedFromTheCacheNotEvenStale(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("zero.test", 0, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, MaxStale(time.Hour), LookupTimeout(200*time.Millisecond),
		StaleAnswerTimeout(10*time.Millisecond))
	ctx := testCtx(t)

	got, err := c.LookupNetIP(ctx, "ip4", "zero.test")
	require.NoError(t, err, "the transaction in progress gets the answer")
	assert.Equal(t, addrs("127.0.0.2"), got)
	_, err = c.LookupNetIP(ctx, "ip4", "zero.test")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Queries("zero.test", dnsmessage.TypeA), "TTL 0: asked again at once")

	srv.SetOutage(true)
	clk.Advance(time.Second)
	_, err = c.LookupNetIP(ctx, "ip4", "zero.test")
	var de *net.DNSError
	require.ErrorAs(t, err, &de, "a TTL-0 answer is not served stale during an outage")
	assert.True(t, de.IsTimeout, "%v", err)
	assert.Zero(t, c.Stats().StaleServed)
	settle(t, c)
}

func TestATTLZeroAnswerDropsTheOlderAnswerItReplaces(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("zero.test", 10*time.Second, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, Prefetch(false), MaxStale(time.Hour), LookupTimeout(200*time.Millisecond),
		StaleAnswerTimeout(10*time.Second))
	ctx := testCtx(t)
	_, err := c.LookupNetIP(ctx, "ip4", "zero.test")
	require.NoError(t, err)

	srv.SetAddrs("zero.test", 0, addrs("127.0.0.3")...)
	clk.Advance(10 * time.Second)
	got, err := c.LookupNetIP(ctx, "ip4", "zero.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.3"), got, "the refresh's TTL-0 answer is used for this lookup")

	srv.SetOutage(true)
	_, err = c.LookupNetIP(ctx, "ip4", "zero.test")
	assert.ErrorAs(t, err, new(*net.DNSError), "neither the TTL-0 answer nor the older one it replaced is served stale")
	settle(t, c)
}

func TestMinTTLStillRaisesATTLZeroAnswer(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("zero.test", 0, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, Prefetch(false), MinTTL(5*time.Second))
	for range 3 {
		_, err := c.LookupNetIP(testCtx(t), "ip4", "zero.test")
		require.NoError(t, err)
		clk.Advance(time.Second)
	}
	assert.Equal(t, 1, srv.Queries("zero.test", dnsmessage.TypeA), "MinTTL(5s) keeps a TTL-0 answer for 5 s")
}

func TestLookupHostReturnsEveryAddressAfterAFailedRefresh(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", 10*time.Second, addrs("127.0.0.2", "127.0.0.3", "::2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, Prefetch(false), StaleAnswerTimeout(10*time.Second))
	ctx := testCtx(t)
	hosts, err := c.LookupHost(ctx, "svc.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"127.0.0.2", "127.0.0.3", "::2"}, hosts)

	srv.SetRCode("svc.test", dnsmessage.RCodeServerFailure)
	clk.Advance(11 * time.Second)
	for i := range 5 { // the first refreshes and fails; the others are served stale
		hosts, err = c.LookupHost(ctx, "svc.test")
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"127.0.0.2", "127.0.0.3", "::2"}, hosts, "lookup %d after the failed refresh", i)
		settle(t, c)
	}
}

// stopTicker ends the cache's background goroutine, as a process stall
// would leave it: whatever it maintains stops moving.
func stopTicker(t *testing.T, c *Cache) {
	t.Helper()
	settle(t, c)
	c.cancel()
	c.wg.Wait()
}

func TestAfterAStallAnExpiredAnswerIsNeverServedAsAFreshHit(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", time.Second, addrs("127.0.0.2")...)
	c := newCache(t, ResolvConf(resolvConfFor(t, srv)), Prefetch(false))
	ctx := testCtx(t)
	_, err := c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)
	_, err = c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)
	require.Equal(t, uint64(1), c.Stats().Hits, "fresh at first")

	// A 1.5 s stall: the process (and so the background goroutine) stops,
	// real time goes on. Moving the cache's origin back is real time moving
	// forward for every reading it takes from now on.
	stopTicker(t, c)
	c.start = c.start.Add(-1500 * time.Millisecond)

	_, err = c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err, "served stale: the refresh fails, the cache being stopped")
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Hits, "an answer 1.5 s old with TTL 1 s is not a fresh hit")
	assert.Equal(t, uint64(1), st.StaleServed, "it is counted as stale")
}

func TestNamesDifferingOnlyInCaseOrTheFinalDotShareOneEntryAndOneQuery(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("web.example.test", time.Hour, addrs("127.0.0.2")...)
	c := stubCache(t, srv, newFakeClock())
	ctx := testCtx(t)
	for _, h := range []string{"web.example.test", "web.example.test.", "WEB.Example.Test", "Web.Example.Test."} {
		got, err := c.LookupNetIP(ctx, "ip4", h)
		require.NoError(t, err, h)
		assert.Equal(t, addrs("127.0.0.2"), got, h)
	}
	assert.Equal(t, 1, srv.Queries("web.example.test", dnsmessage.TypeA), "one query for four spellings")
	assert.Equal(t, 1, c.Stats().Entries, "one entry for four spellings")
}

func TestAFreshIPEntryAnswersIP4AndIP6WithoutAQuery(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("dual.test", time.Hour, addrs("127.0.0.2", "::2", "127.0.0.3", "::3")...)
	c := stubCache(t, srv, newFakeClock())
	ctx := testCtx(t)
	got, err := c.LookupNetIP(ctx, "ip", "dual.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, addrs("127.0.0.2", "127.0.0.3", "::2", "::3"), got)

	got, err = c.LookupNetIP(ctx, "ip4", "dual.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, addrs("127.0.0.2", "127.0.0.3"), got, "ip4 is the IPv4 part of the ip answer")
	got, err = c.LookupNetIP(ctx, "ip6", "Dual.Test.")
	require.NoError(t, err)
	assert.ElementsMatch(t, addrs("::2", "::3"), got, "ip6 is the IPv6 part of the ip answer")
	assert.Equal(t, 1, srv.Queries("dual.test", dnsmessage.TypeA), "no A query for ip4")
	assert.Equal(t, 1, srv.Queries("dual.test", dnsmessage.TypeAAAA), "no AAAA query for ip6")
}

func TestLookupsInFlightAreCappedAgainstASilentServer(t *testing.T) {
	srv := startServer(t)
	srv.SetOutage(true)
	const cap = DefaultMaxLookups
	c := newCache(t, ResolvConf(resolvConfFor(t, srv, "options timeout:30")), LookupTimeout(time.Minute))
	base := runtime.NumGoroutine()

	var wg sync.WaitGroup
	for i := range 2 * cap {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := c.LookupNetIP(ctx, "ip", fmt.Sprintf("n%d.test", i))
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		})
	}
	wg.Wait() // every caller gave up
	st := c.Stats()
	assert.LessOrEqual(t, st.InFlight, cap, "lookups left running after their callers gave up")
	// Each "ip" lookup runs one goroutine and two queries (A, AAAA) in
	// goroutines of their own; the slack is for the server's short-lived
	// goroutine per datagram (the old code left 6 per cap: 768 here).
	assert.LessOrEqual(t, runtime.NumGoroutine()-base, 3*cap+cap/4, "goroutines left running")
}

// cacheHeap is the live heap after a full collection.
func cacheHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestAHostileAnswerOfThousandsOfRecordsCostsTheCacheAtMostOneCappedEntry(t *testing.T) {
	srv := startServer(t)
	const names, records = 40, 4000
	many := make([]netip.Addr, records)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)})
	}
	for i := range names {
		srv.SetAddrs(fmt.Sprintf("h%02d.hostile.test", i), time.Hour, many...)
	}
	// Building and parsing 64 KB answers takes a while under -race on a
	// loaded machine: a long timeout.
	c := newCache(t, ResolvConf(resolvConfFor(t, srv, "options timeout:15")), Clock(newFakeClock().Now),
		LookupTimeout(time.Minute))
	ctx := testCtx(t)
	before := cacheHeap()
	for i := range names {
		got, err := c.LookupNetIP(ctx, "ip4", fmt.Sprintf("h%02d.hostile.test", i))
		require.NoError(t, err)
		if assert.Equal(t, 64, len(got), "capped at DefaultMaxAnswerAddrs") {
			assert.ElementsMatch(t, many[:64], got, "the first addresses of the answer are kept")
		}
	}
	grown := int64(cacheHeap()) - int64(before)
	// The documented count: 320 bytes + the name + 32 per address kept.
	perEntry := int64(320 + len("h00.hostile.test") + DefaultMaxAnswerAddrs*32)
	t.Logf("heap grown by %d bytes for %d answers of %d records (%d each); counted %d", grown, names, records, grown/names, c.Stats().Bytes)
	assert.Equal(t, names*perEntry, c.Stats().Bytes, "what the cache counts")
	assert.LessOrEqual(t, grown, names*perEntry+64<<10, "heap grown by the cache for %d hostile answers", names)
	runtime.KeepAlive(c)
}

func TestTheCacheStaysWithinMaxBytesWithManyNames(t *testing.T) {
	srv := startServer(t)
	const names, perName = 300, 40
	set := make([]netip.Addr, perName)
	for i := range set {
		set[i] = netip.AddrFrom4([4]byte{127, 2, 0, byte(i)})
	}
	for i := range names {
		srv.SetAddrs(fmt.Sprintf("n%03d.budget.test", i), time.Hour, set...)
	}
	// Ask each name once through net's resolver first, so that the
	// server's per-name query counters exist before the heap is measured.
	for i := range names {
		_, err := srv.Resolver().LookupNetIP(testCtx(t), "ip4", fmt.Sprintf("n%03d.budget.test", i))
		require.NoError(t, err)
	}
	const budget = 64 << 10
	clk := newFakeClock()
	c := newCache(t, ResolvConf(resolvConfFor(t, srv, "options timeout:15")), Clock(clk.Now),
		LookupTimeout(time.Minute), MaxBytes(budget))
	ctx := testCtx(t)
	before := cacheHeap()
	for i := range names {
		clk.Advance(time.Millisecond)
		_, err := c.LookupNetIP(ctx, "ip4", fmt.Sprintf("n%03d.budget.test", i))
		require.NoError(t, err)
		require.LessOrEqual(t, c.Stats().Bytes, int64(budget), "after name %d", i)
	}
	grown := int64(cacheHeap()) - int64(before)
	st := c.Stats()
	t.Logf("%d entries count %d bytes; heap grown by %d; %d evictions", st.Entries, st.Bytes, grown, st.Evictions)
	assert.Positive(t, st.Evictions, "the budget evicted")
	assert.Equal(t, uint64(names)-st.Evictions, uint64(st.Entries), "entries = inserted - evicted")
	assert.LessOrEqual(t, grown, int64(budget)+64<<10, "the heap the cache holds is within MaxBytes")
	// The most recent names are the ones kept.
	before2 := srv.TotalQueries()
	_, err := c.LookupNetIP(ctx, "ip4", fmt.Sprintf("n%03d.budget.test", names-1))
	require.NoError(t, err)
	assert.Equal(t, before2, srv.TotalQueries(), "the last name looked up is still cached")
}

// countingSource answers every name with n addresses (n = 0: no such host)
// without a network, so that a test measures the cache's heap alone.
type countingSource struct{ n int }

func (f countingSource) lookup(_ context.Context, _, host string) ([]netip.Addr, time.Duration, error) {
	if f.n == 0 {
		return nil, time.Hour, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, f.n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{127, 9, byte(i >> 8), byte(i)})
	}
	return out, time.Hour, nil
}

func TestAnEntryHoldsNoMoreHeapThanItCountsAgainstMaxBytes(t *testing.T) {
	const names = 2000
	hosts := make([]string, names)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("n%05d.heap.test", i)
	}
	for _, n := range []int{0, 1, 2, 16, 63, 64, 1000} {
		t.Run(fmt.Sprintf("addrs=%d", n), func(t *testing.T) {
			c := newCache(t, MaxEntries(names), MaxBytes(1<<30), NegativeTTL(time.Hour))
			c.src = countingSource{n}
			before := cacheHeap()
			for _, h := range hosts {
				_, _ = c.LookupNetIP(context.Background(), "ip4", h)
			}
			grown := int64(cacheHeap()) - int64(before)
			st := c.Stats()
			require.Equal(t, names, st.Entries)
			kept := min(n, DefaultMaxAnswerAddrs)
			assert.Equal(t, int64(names*(320+len(hosts[0])+32*kept)), st.Bytes, "the documented count")
			t.Logf("%d addresses: %d bytes of heap per entry, %d counted", n, grown/names, st.Bytes/names)
			assert.LessOrEqual(t, grown, st.Bytes, "the heap the entries hold is within what they count")
		})
	}
}

// A caller may pass a name cut out of a larger string (a URL, a request
// read into one buffer). The cache keeps a copy of the name, not the
// string it was cut from: MaxBytes counts the name only.
func TestACachedNameKeepsNoneOfTheLargerStringItWasCutFrom(t *testing.T) {
	const names, pad = 200, 64 << 10
	c := newCache(t, MaxEntries(names), MaxBytes(1<<30))
	c.src = countingSource{1}
	before := cacheHeap()
	for i := range names {
		s := strings.Repeat("x", pad) + fmt.Sprintf("n%03d.cut.test", i)
		_, err := c.LookupNetIP(context.Background(), "ip4", s[pad:])
		require.NoError(t, err)
	}
	grown := int64(cacheHeap()) - int64(before)
	st := c.Stats()
	require.Equal(t, names, st.Entries)
	assert.LessOrEqual(t, grown, st.Bytes, "%d entries hold %d bytes of heap (%d each), count %d: the %d KiB strings the names were cut from are kept alive",
		names, grown, grown/names, st.Bytes, pad>>10)
}

func TestAnAnswerOverMaxAnswerAddrsKeepsTheFirstOfEachFamily(t *testing.T) {
	srv := startServer(t)
	var v4, v6 []netip.Addr
	for i := range 10 {
		v4 = append(v4, netip.AddrFrom4([4]byte{127, 3, 0, byte(i)}))
		v6 = append(v6, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
	}
	srv.SetAddrs("big.test", time.Hour, append(append([]netip.Addr{}, v4...), v6...)...)
	srv.SetAddrs("few6.test", time.Hour, append(append([]netip.Addr{}, v4...), v6[:1]...)...)
	c := stubCache(t, srv, newFakeClock(), MaxAnswerAddrs(6))
	ctx := testCtx(t)

	got, err := c.LookupNetIP(ctx, "ip", "big.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, append(append([]netip.Addr{}, v4[:3]...), v6[:3]...), got, "three of each family, the first ones")
	got, err = c.LookupNetIP(ctx, "ip", "few6.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, append(append([]netip.Addr{}, v4[:5]...), v6[0]), got, "the one AAAA is kept, IPv4 fills the rest")

	before := srv.Queries("big.test", dnsmessage.TypeA)
	got, err = c.LookupNetIP(ctx, "ip4", "big.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, v4[:6], got, "a cut ip answer does not answer ip4: its own query may hold more")
	assert.Equal(t, before+1, srv.Queries("big.test", dnsmessage.TypeA))
}

func TestAnIPAnswerWithoutTheFamilyDoesNotAnswerIt(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("v4.test", time.Hour, addrs("127.0.0.2")...)
	c := stubCache(t, srv, newFakeClock())
	ctx := testCtx(t)
	_, err := c.LookupNetIP(ctx, "ip", "v4.test")
	require.NoError(t, err)
	_, err = c.LookupNetIP(ctx, "ip6", "v4.test")
	var de *net.DNSError
	require.ErrorAs(t, err, &de)
	assert.True(t, de.IsNotFound, "asked, and the server says no AAAA: %v", err)
	assert.Equal(t, 2, srv.Queries("v4.test", dnsmessage.TypeAAAA), "ip6 sent its own AAAA query")
}

func TestHitsAllocateNothingForCanonicalNamesTheFinalDotAndIPViews(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", time.Hour, addrs("127.0.0.2", "::2", "127.0.0.3")...)
	c := newCache(t, ResolvConf(resolvConfFor(t, srv)))
	ctx := testCtx(t)
	_, err := c.LookupNetIP(ctx, "ip", "svc.test")
	require.NoError(t, err)
	buf := make([]netip.Addr, 0, 4)
	for _, tc := range []struct{ network, host string }{
		{"ip", "svc.test"}, {"ip", "svc.test."}, {"ip4", "svc.test"}, {"ip6", "svc.test."},
	} {
		allocs := testing.AllocsPerRun(200, func() {
			buf, err = c.AppendNetIP(ctx, buf[:0], tc.network, tc.host)
		})
		require.NoError(t, err)
		assert.Zero(t, allocs, "AppendNetIP(%s, %s)", tc.network, tc.host)
	}
	assert.Equal(t, 1, srv.TotalQueries()/2, "one A and one AAAA query in all")
}

func TestInvalidateNormalisesTheName(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", time.Hour, addrs("127.0.0.2")...)
	c := stubCache(t, srv, newFakeClock())
	_, err := c.LookupNetIP(testCtx(t), "ip4", "svc.test")
	require.NoError(t, err)
	c.Invalidate("SVC.test.")
	assert.Zero(t, c.Stats().Entries)
}

func TestWithASearchListTheFinalDotKeepsItsMeaning(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("db.corp.test", time.Minute, addrs("127.0.0.6")...)
	c := newCache(t, ResolvConf(resolvConfFor(t, srv, "search corp.test")))
	ctx := testCtx(t)
	got, err := c.LookupNetIP(ctx, "ip4", "DB")
	require.NoError(t, err, "db is searched in corp.test")
	assert.Equal(t, addrs("127.0.0.6"), got)
	_, err = c.LookupNetIP(ctx, "ip4", "db.")
	var de *net.DNSError
	require.ErrorAs(t, err, &de, "db. is absolute: not searched, not the cached answer for db")
	assert.True(t, de.IsNotFound)
	assert.Equal(t, "db.", de.Name, "the error names the host as given")
}

func TestACallerBeyondMaxLookupsWaitsForASlotAndIsAnswered(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("a.test", time.Hour, addrs("127.0.0.2")...)
	srv.SetAddrs("b.test", time.Hour, addrs("127.0.0.3")...)
	srv.SetDelay("a.test", 200*time.Millisecond)
	c := stubCache(t, srv, newFakeClock(), MaxLookups(1))
	ctx := testCtx(t)

	errA := make(chan error, 1)
	go func() {
		_, err := c.LookupNetIP(ctx, "ip4", "a.test")
		errA <- err
	}()
	require.Eventually(t, func() bool { return c.Stats().InFlight == 1 }, 10*time.Second, time.Millisecond)

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err := c.LookupNetIP(short, "ip4", "b.test")
	assert.ErrorIs(t, err, context.DeadlineExceeded, "a caller whose context ends while it waits for a slot")
	var de *net.DNSError
	if assert.ErrorAs(t, err, &de) {
		assert.True(t, de.IsTimeout)
		assert.Equal(t, "b.test", de.Name)
	}
	assert.Zero(t, srv.Queries("b.test", dnsmessage.TypeA), "sent nothing")

	got, err := c.LookupNetIP(ctx, "ip4", "b.test") // waits for a.test's lookup to end
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.3"), got)
	require.NoError(t, <-errA)
	assert.LessOrEqual(t, c.Stats().InFlight, 1)
}

func TestCloseReleasesCallersWaitingForALookupSlot(t *testing.T) {
	srv := startServer(t)
	srv.SetOutage(true)
	c, err := New(ResolvConf(resolvConfFor(t, srv, "options timeout:30")), MaxLookups(1))
	require.NoError(t, err)
	go func() { _, _ = c.LookupNetIP(context.Background(), "ip4", "a.test") }()
	require.Eventually(t, func() bool { return c.Stats().InFlight == 1 }, 10*time.Second, time.Millisecond)
	errB := make(chan error, 1)
	go func() {
		_, err := c.LookupNetIP(context.Background(), "ip4", "b.test")
		errB <- err
	}()
	require.NoError(t, c.Close())
	select {
	case err := <-errB:
		assert.ErrorIs(t, err, ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("a caller waiting for a slot was not released by Close")
	}
}
