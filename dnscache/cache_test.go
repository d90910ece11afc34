package dnscache

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nettune/nettune/internal/dnstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

func TestRecordTTLIsHonouredToTheSecond(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", 30*time.Second, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, Prefetch(false))

	got, err := c.LookupNetIP(testCtx(t), "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.2"), got)

	clk.Advance(29*time.Second + 900*time.Millisecond)
	_, err = c.LookupNetIP(testCtx(t), "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, 1, srv.Queries("svc.test", dnsmessage.TypeA), "still fresh just before the TTL ends")

	srv.SetAddrs("svc.test", 30*time.Second, addrs("127.0.0.3")...)
	clk.Advance(100 * time.Millisecond)
	got, err = c.LookupNetIP(testCtx(t), "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Queries("svc.test", dnsmessage.TypeA), "expired at the TTL: asked again")
	assert.Equal(t, addrs("127.0.0.3"), got, "the refreshed answer is served")
}

func TestTTLsAreClampedByMinTTLAndMaxTTL(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("short.test", time.Second, addrs("127.0.0.2")...)
	srv.SetAddrs("long.test", 24*time.Hour, addrs("127.0.0.3")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, Prefetch(false), MinTTL(10*time.Second), MaxTTL(20*time.Second))
	ctx := testCtx(t)

	for _, h := range []string{"short.test", "long.test"} {
		_, err := c.LookupNetIP(ctx, "ip4", h)
		require.NoError(t, err)
	}
	clk.Advance(9 * time.Second)
	_, err := c.LookupNetIP(ctx, "ip4", "short.test")
	require.NoError(t, err)
	assert.Equal(t, 1, srv.Queries("short.test", dnsmessage.TypeA), "a 1 s TTL is raised to MinTTL 10 s")

	clk.Advance(11 * time.Second) // t = 20 s
	_, err = c.LookupNetIP(ctx, "ip4", "long.test")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Queries("long.test", dnsmessage.TypeA), "a day-long TTL is cut to MaxTTL 20 s")
}

func TestSystemSourceKeepsAnswersForTheConfiguredTTL(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", time.Hour, addrs("127.0.0.2", "::2")...)
	clk := newFakeClock()
	c := newCache(t, System(srv.Resolver()), TTL(5*time.Second), Clock(clk.Now), Prefetch(false))

	got, err := c.LookupNetIP(testCtx(t), "ip", "svc.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, addrs("127.0.0.2", "::2"), got, "IPv4 comes back unmapped")
	clk.Advance(4 * time.Second)
	_, err = c.LookupNetIP(testCtx(t), "ip", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, 1, srv.Queries("svc.test", dnsmessage.TypeA))
	clk.Advance(time.Second)
	_, err = c.LookupNetIP(testCtx(t), "ip", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Queries("svc.test", dnsmessage.TypeA), "TTL(5s) ended: asked again, ignoring the record's hour")
}

func TestSixtyFourConcurrentColdLookupsSendOneQueryPerRecordType(t *testing.T) {
	for _, src := range []string{"stub", "system"} {
		t.Run(src, func(t *testing.T) {
			srv := startServer(t)
			srv.SetAddrs("busy.test", time.Minute, addrs("127.0.0.2", "::2")...)
			srv.SetDelay("busy.test", 100*time.Millisecond) // keep the first lookup in flight
			opt := ResolvConf(resolvConfFor(t, srv))
			if src == "system" {
				opt = System(srv.Resolver())
			}
			c := newCache(t, opt)
			ctx := testCtx(t)

			var wg sync.WaitGroup
			errs := make([]error, 64)
			for i := range errs {
				wg.Go(func() {
					got, err := c.LookupNetIP(ctx, "ip", "busy.test")
					if err == nil && len(got) != 2 {
						err = errors.New("wrong answer")
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for i, err := range errs {
				assert.NoError(t, err, "caller %d", i)
			}
			assert.Equal(t, 1, srv.Queries("busy.test", dnsmessage.TypeA), "one A query for 64 callers")
			assert.Equal(t, 1, srv.Queries("busy.test", dnsmessage.TypeAAAA), "one AAAA query for 64 callers")
		})
	}
}

func TestDuringAnOutageEveryLookupInsideTheStaleWindowSucceedsAndNoneAfter(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", 10*time.Second, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, MaxStale(time.Minute), StaleAnswerTimeout(20*time.Millisecond),
		LookupTimeout(200*time.Millisecond), MinRefresh(2*time.Second))
	ctx := testCtx(t)
	_, err := c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)

	srv.SetOutage(true)
	clk.Advance(10 * time.Second) // expired; stale window until 70 s
	for elapsed := 10 * time.Second; elapsed < 70*time.Second; elapsed += 3 * time.Second {
		got, err := c.LookupNetIP(ctx, "ip4", "svc.test")
		if assert.NoError(t, err, "at %v, inside the stale window", elapsed) {
			assert.Equal(t, addrs("127.0.0.2"), got, "at %v the last good answer is served", elapsed)
		}
		clk.Advance(3 * time.Second)
	}
	clk.Advance(time.Second) // 71 s
	_, err = c.LookupNetIP(ctx, "ip4", "svc.test")
	var de *net.DNSError
	require.ErrorAs(t, err, &de, "past MaxStale the outage shows")
	assert.False(t, de.IsNotFound, "an outage is not NXDOMAIN: %v", err)
	assert.True(t, de.IsTimeout, "an outage is a timeout: %v", err)
	st := c.Stats()
	assert.Equal(t, uint64(20), st.StaleServed, "one stale answer per lookup in the window")
	assert.Positive(t, st.LookupErrors, "failed refreshes are counted")
	settle(t, c)
}

func TestAfterRecoveryFreshAnswersReturnWithinOneRefresh(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", 10*time.Second, addrs("127.0.0.2")...)
	clk := newFakeClock()
	// A long StaleAnswerTimeout: during the outage the refresh fails after
	// LookupTimeout anyway, and after it the fresh answer must win even on a
	// loaded machine.
	c := stubCache(t, srv, clk, StaleAnswerTimeout(10*time.Second),
		LookupTimeout(200*time.Millisecond), MinRefresh(2*time.Second))
	ctx := testCtx(t)
	_, err := c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)

	srv.SetOutage(true)
	clk.Advance(15 * time.Second)
	got, err := c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.2"), got, "stale during the outage")
	settle(t, c) // the refresh it started has failed

	srv.SetAddrs("svc.test", 10*time.Second, addrs("127.0.0.9")...)
	srv.SetOutage(false)
	clk.Advance(2 * time.Second) // MinRefresh after the failure: the next lookup refreshes
	before := srv.Queries("svc.test", dnsmessage.TypeA)
	got, err = c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.9"), got, "the first lookup after recovery gets the fresh answer")
	assert.Equal(t, before+1, srv.Queries("svc.test", dnsmessage.TypeA), "with one query")
}

func TestAFailedRefreshServesStaleWithoutNewQueriesUntilMinRefresh(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", 10*time.Second, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, MinRefresh(5*time.Second))
	ctx := testCtx(t)
	_, err := c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)

	srv.SetRCode("svc.test", dnsmessage.RCodeServerFailure)
	clk.Advance(11 * time.Second)
	got, err := c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err, "SERVFAIL on refresh: the stale answer is served")
	assert.Equal(t, addrs("127.0.0.2"), got)
	settle(t, c)
	queries := srv.Queries("svc.test", dnsmessage.TypeA)
	for range 10 {
		_, err := c.LookupNetIP(ctx, "ip4", "svc.test")
		require.NoError(t, err)
	}
	assert.Equal(t, queries, srv.Queries("svc.test", dnsmessage.TypeA), "no new query before MinRefresh")
	clk.Advance(5 * time.Second)
	_, err = c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, queries+1, srv.Queries("svc.test", dnsmessage.TypeA), "retried after MinRefresh")
}

func TestASlowRefreshServesStaleAfterStaleAnswerTimeoutAndThenStoresTheFreshAnswer(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", 10*time.Second, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, StaleAnswerTimeout(10*time.Millisecond))
	ctx := testCtx(t)
	_, err := c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)

	srv.SetAddrs("svc.test", 10*time.Second, addrs("127.0.0.3")...)
	srv.SetDelay("svc.test", 500*time.Millisecond) // far over StaleAnswerTimeout, under the 1 s query timeout
	clk.Advance(11 * time.Second)
	got, err := c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.2"), got, "the triggering caller is served stale, not failed")
	settle(t, c)
	got, err = c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.3"), got, "the refresh finished in the background")
}

func TestNXDOMAINIsCachedForTheSOANegativeTTLAndExpires(t *testing.T) {
	srv := startServer(t)
	srv.SetNegativeTTL(3 * time.Second)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, NegativeTTL(10*time.Second))
	ctx := testCtx(t)

	for range 3 {
		_, err := c.LookupNetIP(ctx, "ip4", "gone.test")
		var de *net.DNSError
		require.ErrorAs(t, err, &de)
		assert.True(t, de.IsNotFound, "NXDOMAIN reads as not found: %v", err)
		assert.Equal(t, "gone.test", de.Name)
	}
	assert.Equal(t, 1, srv.Queries("gone.test", dnsmessage.TypeA), "cached after the first")
	assert.Equal(t, uint64(2), c.Stats().NegativeHits)

	clk.Advance(3 * time.Second) // the SOA said 3 s, under the 10 s cap
	srv.SetAddrs("gone.test", time.Minute, addrs("127.0.0.7")...)
	got, err := c.LookupNetIP(ctx, "ip4", "gone.test")
	require.NoError(t, err, "the negative entry expired")
	assert.Equal(t, addrs("127.0.0.7"), got)
}

func TestNegativeTTLCapsTheSOAAndNoDataIsNegativeToo(t *testing.T) {
	srv := startServer(t)
	srv.SetNegativeTTL(time.Hour)
	srv.SetAddrs("v4only.test", time.Minute, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, NegativeTTL(2*time.Second))
	ctx := testCtx(t)

	_, err := c.LookupNetIP(ctx, "ip6", "v4only.test")
	var de *net.DNSError
	require.ErrorAs(t, err, &de)
	assert.True(t, de.IsNotFound, "no AAAA record is 'no such host' for ip6: %v", err)
	clk.Advance(1900 * time.Millisecond)
	_, err = c.LookupNetIP(ctx, "ip6", "v4only.test")
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 1, srv.Queries("v4only.test", dnsmessage.TypeAAAA))
	clk.Advance(100 * time.Millisecond)
	_, _ = c.LookupNetIP(ctx, "ip6", "v4only.test")
	assert.Equal(t, 2, srv.Queries("v4only.test", dnsmessage.TypeAAAA), "capped at NegativeTTL 2 s, not the SOA's hour")
}

func TestNegativeCachingCanBeTurnedOff(t *testing.T) {
	srv := startServer(t)
	c := stubCache(t, srv, newFakeClock(), NegativeTTL(-1))
	for range 2 {
		_, err := c.LookupNetIP(testCtx(t), "ip4", "gone.test")
		var de *net.DNSError
		require.ErrorAs(t, err, &de)
		assert.True(t, de.IsNotFound)
	}
	assert.Equal(t, 2, srv.Queries("gone.test", dnsmessage.TypeA))
}

func TestTransientFailuresAreNeverCachedOrReportedAsNotFound(t *testing.T) {
	for _, rc := range []dnsmessage.RCode{dnsmessage.RCodeServerFailure, dnsmessage.RCodeRefused} {
		t.Run(rc.String(), func(t *testing.T) {
			srv := startServer(t)
			srv.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
			srv.SetRCode("svc.test", rc)
			c := stubCache(t, srv, newFakeClock())
			ctx := testCtx(t)
			_, err := c.LookupNetIP(ctx, "ip4", "svc.test")
			var de *net.DNSError
			require.ErrorAs(t, err, &de)
			assert.False(t, de.IsNotFound, "%v is not NXDOMAIN: %v", rc, err)
			assert.True(t, de.IsTemporary, "%v is temporary: %v", rc, err)

			srv.SetRCode("svc.test", dnsmessage.RCodeSuccess)
			got, err := c.LookupNetIP(ctx, "ip4", "svc.test")
			require.NoError(t, err, "the failure was not cached")
			assert.Equal(t, addrs("127.0.0.2"), got)
		})
	}
}

func TestPrefetchKeepsAHotEntryFromEverMissing(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("hot.test", 10*time.Second, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, MinRefresh(time.Second), MaxStale(-1))
	ctx := testCtx(t)

	for step := range 240 { // 2 minutes, a lookup every 500 ms
		_, err := c.LookupNetIP(ctx, "ip4", "hot.test")
		require.NoError(t, err, "step %d", step)
		settle(t, c) // a prefetch, if one started, has landed
		clk.Advance(500 * time.Millisecond)
	}
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Misses, "only the cold lookup missed")
	assert.Zero(t, st.StaleServed, "never expired")
	assert.GreaterOrEqual(t, st.Prefetches, uint64(11), "refreshed about every 8-9 s over 120 s")
	assert.Equal(t, int(st.Prefetches)+1, srv.Queries("hot.test", dnsmessage.TypeA), "one query per prefetch")
}

func TestUnusedEntriesAreNotPrefetchedAndAgeOut(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("cold.test", 10*time.Second, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, MaxStale(30*time.Second))
	_, err := c.LookupNetIP(testCtx(t), "ip4", "cold.test")
	require.NoError(t, err)
	clk.Advance(39 * time.Second)
	c.sweep()
	assert.Equal(t, 1, c.Stats().Entries, "kept while it could still be served stale")
	clk.Advance(time.Second)
	c.sweep()
	st := c.Stats()
	assert.Zero(t, st.Entries, "dropped once past its stale window")
	assert.Equal(t, uint64(1), st.Expired)
	assert.Zero(t, st.Prefetches)
	assert.Equal(t, 1, srv.Queries("cold.test", dnsmessage.TypeA), "never refreshed")
}

func TestEvictionHoldsTheBoundAndKeepsRecentlyUsedEntries(t *testing.T) {
	srv := startServer(t)
	const n = 60
	names := make([]string, n)
	for i := range names {
		names[i] = "h" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + ".test"
		srv.SetAddrs(names[i], time.Hour, netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}))
	}
	srv.SetAddrs("keep.test", time.Hour, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, MaxEntries(20))
	ctx := testCtx(t)

	for _, h := range names {
		clk.Advance(time.Millisecond)
		_, err := c.LookupNetIP(ctx, "ip4", "keep.test")
		require.NoError(t, err)
		_, err = c.LookupNetIP(ctx, "ip4", h)
		require.NoError(t, err)
		assert.LessOrEqual(t, c.Stats().Entries, 20, "after %s", h)
	}
	assert.Equal(t, 1, srv.Queries("keep.test", dnsmessage.TypeA), "the entry in constant use was never evicted")
	st := c.Stats()
	assert.Positive(t, st.Evictions)
	assert.Equal(t, uint64(n+1)-st.Evictions, uint64(st.Entries), "entries = inserted - evicted")
}

func TestTwoCachesWithDifferentUpstreamsNeverSeeEachOthersAnswers(t *testing.T) {
	srvA, srvB := startServer(t), startServer(t)
	srvA.SetAddrs("svc.test", time.Minute, addrs("127.0.0.10")...)
	srvB.SetAddrs("svc.test", time.Minute, addrs("127.0.0.20")...)
	srvA.SetDelay("", 50*time.Millisecond) // overlap the lookups
	srvB.SetDelay("", 50*time.Millisecond)
	a := newCache(t, ResolvConf(resolvConfFor(t, srvA)))
	b := newCache(t, System(srvB.Resolver()))
	ctx := testCtx(t)

	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			got, err := a.LookupNetIP(ctx, "ip4", "svc.test")
			if assert.NoError(t, err) {
				assert.Equal(t, addrs("127.0.0.10"), got, "cache A answers from server A only")
			}
		})
		wg.Go(func() {
			got, err := b.LookupNetIP(ctx, "ip4", "svc.test")
			if assert.NoError(t, err) {
				assert.Equal(t, addrs("127.0.0.20"), got, "cache B answers from server B only")
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, srvA.Queries("svc.test", dnsmessage.TypeA))
	assert.Equal(t, 1, srvB.Queries("svc.test", dnsmessage.TypeA))
}

func TestCallersGetCopiesTheyMayChange(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2", "127.0.0.3")...)
	c := stubCache(t, srv, newFakeClock())
	ctx := testCtx(t)
	got, err := c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)
	got[0], got[1] = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.1")
	hosts, err := c.LookupHost(ctx, "svc.test")
	require.NoError(t, err)
	hosts[0] = "mine"
	again, err := c.LookupNetIP(ctx, "ip4", "svc.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, addrs("127.0.0.2", "127.0.0.3"), again, "the cache was not changed through a copy")
	hosts, err = c.LookupHost(ctx, "svc.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"127.0.0.2", "127.0.0.3"}, hosts, "nor through a LookupHost slice")
}

func TestAddressesAreRotatedSoEveryAddressComesFirst(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("pool.test", time.Hour, addrs("127.0.0.2", "127.0.0.3", "127.0.0.4")...)
	c := stubCache(t, srv, newFakeClock())
	ctx := testCtx(t)
	first := map[netip.Addr]int{}
	buf := make([]netip.Addr, 0, 4)
	for range 300 {
		var err error
		buf, err = c.AppendNetIP(ctx, buf[:0], "ip4", "pool.test")
		require.NoError(t, err)
		require.ElementsMatch(t, addrs("127.0.0.2", "127.0.0.3", "127.0.0.4"), buf)
		first[buf[0]]++
	}
	assert.Len(t, first, 3, "each address led some of the answers: %v", first)
	for a, n := range first {
		assert.Greater(t, n, 30, "%v led %d of 300 answers", a, n)
	}
}

func TestACallerThatGivesUpDoesNotFailTheOthers(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("slow.test", time.Minute, addrs("127.0.0.2")...)
	srv.SetDelay("slow.test", 300*time.Millisecond)
	c := stubCache(t, srv, newFakeClock())

	impatient, cancel := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	go func() {
		_, err := c.LookupNetIP(impatient, "ip4", "slow.test")
		errA <- err
	}()
	require.Eventually(t, func() bool { return c.Stats().InFlight == 1 }, 10*time.Second, time.Millisecond)
	got := make(chan []netip.Addr, 1)
	go func() {
		a, err := c.LookupNetIP(testCtx(t), "ip4", "slow.test")
		assert.NoError(t, err, "the patient caller is answered")
		got <- a
	}()
	cancel()
	err := <-errA
	assert.ErrorIs(t, err, context.Canceled, "the impatient caller sees its own cancellation")
	var de *net.DNSError
	assert.ErrorAs(t, err, &de, "as a *net.DNSError, like net")
	assert.Equal(t, addrs("127.0.0.2"), <-got)
	assert.Equal(t, 1, srv.Queries("slow.test", dnsmessage.TypeA), "one query served both")
}

func TestStubRetriesOverTCPWhenTheAnswerIsTruncated(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("big.test", time.Minute, addrs("127.0.0.2")...)
	srv.SetTruncate("big.test", true)
	c := stubCache(t, srv, newFakeClock())
	got, err := c.LookupNetIP(testCtx(t), "ip4", "big.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.2"), got)
	assert.Equal(t, 1, srv.TCPQueries(), "the retry went over TCP")
}

func TestStubReadsLargeAnswersOverTCP(t *testing.T) {
	srv := startServer(t)
	var many []netip.Addr
	for i := range 100 {
		many = append(many, netip.AddrFrom4([4]byte{127, 0, 2, byte(i)}))
	}
	srv.SetAddrs("many.test", time.Minute, many...)
	c := stubCache(t, srv, newFakeClock(), MaxAnswerAddrs(len(many)))
	got, err := c.LookupNetIP(testCtx(t), "ip4", "many.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, many, got)
}

func TestStubIgnoresAnswersWithAWrongIDOrQuestion(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
	srv.SetSpoof("svc.test", true)
	c := stubCache(t, srv, newFakeClock())
	got, err := c.LookupNetIP(testCtx(t), "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.2"), got, "the forged %v was not taken", dnstest.SpoofedAddr)
}

func TestStubFollowsCNAMEChainsAndKeepsTheSmallestTTL(t *testing.T) {
	srv := startServer(t)
	srv.SetCNAME("www.test", "cdn.test", 5*time.Second)
	srv.SetCNAME("cdn.test", "edge.test", time.Hour)
	srv.SetAddrs("edge.test", time.Minute, addrs("127.0.0.5")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, Prefetch(false))
	got, err := c.LookupNetIP(testCtx(t), "ip4", "www.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.5"), got)
	clk.Advance(5 * time.Second)
	_, err = c.LookupNetIP(testCtx(t), "ip4", "www.test")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Queries("www.test", dnsmessage.TypeA), "the 5 s CNAME bounds the answer's life")
}

func TestStubAppliesTheSearchListAndNdots(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("db.corp.test", time.Minute, addrs("127.0.0.6")...)
	p := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, srv.WriteResolvConf(p, "search other.test corp.test", "options ndots:2 timeout:1 attempts:1"))
	c := newCache(t, ResolvConf(p))
	got, err := c.LookupNetIP(testCtx(t), "ip4", "db")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.6"), got)
	assert.Equal(t, 1, srv.Queries("db.other.test", dnsmessage.TypeA), "search domains tried in order")
	assert.Zero(t, srv.Queries("db.", dnsmessage.TypeA), "the bare name comes last and was not needed")
}

func TestInvalidateAndFlushDropAnswers(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("a.test", time.Hour, addrs("127.0.0.2")...)
	srv.SetAddrs("b.test", time.Hour, addrs("127.0.0.3")...)
	c := stubCache(t, srv, newFakeClock())
	ctx := testCtx(t)
	for _, h := range []string{"a.test", "b.test"} {
		_, err := c.LookupNetIP(ctx, "ip4", h)
		require.NoError(t, err)
		_, err = c.LookupNetIP(ctx, "ip6", h)
		require.ErrorAs(t, err, new(*net.DNSError))
	}
	require.Equal(t, 4, c.Stats().Entries)
	c.Invalidate("a.test")
	assert.Equal(t, 2, c.Stats().Entries, "both networks of a.test dropped")
	_, err := c.LookupNetIP(ctx, "ip4", "a.test")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Queries("a.test", dnsmessage.TypeA), "asked again after Invalidate")
	c.Flush()
	assert.Zero(t, c.Stats().Entries)
	_, err = c.LookupNetIP(ctx, "ip4", "b.test")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Queries("b.test", dnsmessage.TypeA), "asked again after Flush")
}

func TestCloseEndsLookupsInProgressAndLaterLookupsFail(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("stuck.test", time.Minute, addrs("127.0.0.2")...)
	srv.SetDelay("stuck.test", time.Hour)
	c, err := New(ResolvConf(resolvConfFor(t, srv, "options timeout:30")))
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := c.LookupNetIP(context.Background(), "ip4", "stuck.test")
		errc <- err
	}()
	require.Eventually(t, func() bool { return c.Stats().InFlight == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	err = <-errc
	var de *net.DNSError
	assert.ErrorAs(t, err, &de, "the waiting caller is released with an error")
	_, err = c.LookupNetIP(context.Background(), "ip4", "other.test")
	assert.ErrorIs(t, err, ErrClosed)
	assert.NoError(t, c.Close(), "Close is idempotent")
}

func TestIPLiteralsAreAnsweredWithoutAQuery(t *testing.T) {
	srv := startServer(t)
	c := stubCache(t, srv, newFakeClock())
	ctx := testCtx(t)
	got, err := c.LookupNetIP(ctx, "ip", "127.0.0.8")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.8"), got)
	got, err = c.LookupNetIP(ctx, "ip6", "::1")
	require.NoError(t, err)
	assert.Equal(t, addrs("::1"), got)
	_, err = c.LookupNetIP(ctx, "ip4", "::1")
	assert.ErrorAs(t, err, new(*net.DNSError), "an IPv6 literal does not suit ip4")
	assert.Zero(t, srv.TotalQueries())
	assert.Zero(t, c.Stats().Entries, "literals are not cached")
}

func TestUnknownNetworksAreRejected(t *testing.T) {
	c := newCache(t)
	_, err := c.LookupNetIP(context.Background(), "tcp", "example.test")
	var une net.UnknownNetworkError
	assert.ErrorAs(t, err, &une)
}

func TestTheHitPathAllocatesNothing(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", time.Hour, addrs("127.0.0.2", "127.0.0.3")...)
	c := newCache(t, ResolvConf(resolvConfFor(t, srv)))
	ctx := testCtx(t)
	buf := make([]netip.Addr, 0, 4)
	_, err := c.AppendNetIP(ctx, buf, "ip4", "svc.test")
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(1000, func() {
		buf, err = c.AppendNetIP(ctx, buf[:0], "ip4", "svc.test")
	})
	require.NoError(t, err)
	assert.Zero(t, allocs, "AppendNetIP on a fresh entry")
	assert.Equal(t, uint64(1001), c.Stats().Hits)
}

func TestSystemSourceReportsNotFoundAndCachesIt(t *testing.T) {
	srv := startServer(t)
	c := newCache(t, System(srv.Resolver()), Clock(newFakeClock().Now))
	for range 2 {
		_, err := c.LookupNetIP(testCtx(t), "ip4", "gone.test")
		var de *net.DNSError
		require.ErrorAs(t, err, &de)
		assert.True(t, de.IsNotFound, "%v", err)
	}
	assert.Equal(t, 1, srv.Queries("gone.test", dnsmessage.TypeA), "cached for NegativeTTL")
}

func TestNegativeDurationsTurnOptionalFeaturesOff(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", 10*time.Second, addrs("127.0.0.2")...)
	clk := newFakeClock()
	c := stubCache(t, srv, clk, MaxStale(-1), LookupTimeout(200*time.Millisecond))
	_, err := c.LookupNetIP(testCtx(t), "ip4", "svc.test")
	require.NoError(t, err)
	srv.SetOutage(true)
	clk.Advance(10 * time.Second)
	_, err = c.LookupNetIP(testCtx(t), "ip4", "svc.test")
	var de *net.DNSError
	require.ErrorAs(t, err, &de, "without serve-stale an expired answer is not served")
	assert.True(t, de.IsTimeout)
}

func TestANameTooLongForDNSIsNotFoundWithoutAQuery(t *testing.T) {
	srv := startServer(t)
	c := stubCache(t, srv, newFakeClock())
	long := strings.Repeat("a", 64) + ".test" // a label over 63 bytes
	_, err := c.LookupNetIP(testCtx(t), "ip4", long)
	var de *net.DNSError
	require.ErrorAs(t, err, &de)
	assert.True(t, de.IsNotFound, "%v", err)
	assert.Zero(t, srv.TotalQueries())
}

func TestHitsFromManyGoroutinesAreAllCounted(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", time.Hour, addrs("127.0.0.2", "127.0.0.3")...)
	c := stubCache(t, srv, newFakeClock())
	ctx := testCtx(t)
	_, err := c.LookupNetIP(ctx, "ip4", "svc.test") // the miss
	require.NoError(t, err)
	// Enough hits per goroutine that goroutines overlap on every P (a
	// lost update needs two at once on one counter).
	const goroutines, each = 8, 50_000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			buf := make([]netip.Addr, 0, 2)
			for range each {
				buf, _ = c.AppendNetIP(ctx, buf[:0], "ip4", "svc.test")
			}
		})
	}
	wg.Wait()
	st := c.Stats()
	assert.Equal(t, goroutines*each, int(st.Hits), "no hit lost across the per-P counters")
	assert.Equal(t, uint64(1), st.Misses)
}

func TestStubMovesToTheNextNameserverOnSERVFAIL(t *testing.T) {
	bad, good := startServer(t), startServer(t)
	bad.SetRCode("", dnsmessage.RCodeServerFailure)
	good.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
	p := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "nameserver " + bad.Addr().String() + "\nnameserver " + good.Addr().String() + "\noptions timeout:1 attempts:1\n"
	require.NoError(t, os.WriteFile(p, []byte(conf), 0o644))
	c := newCache(t, ResolvConf(p))
	got, err := c.LookupNetIP(testCtx(t), "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.2"), got)
	assert.Equal(t, 1, bad.Queries("svc.test", dnsmessage.TypeA), "the first server was asked")
	assert.Equal(t, 1, good.Queries("svc.test", dnsmessage.TypeA), "then the second")
}

func TestALookupInFlightDuringInvalidateIsNotStored(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
	srv.SetDelay("svc.test", 200*time.Millisecond)
	c := stubCache(t, srv, newFakeClock())
	got := make(chan error, 1)
	go func() {
		_, err := c.LookupNetIP(testCtx(t), "ip4", "svc.test")
		got <- err
	}()
	require.Eventually(t, func() bool { return c.Stats().InFlight == 1 }, 10*time.Second, time.Millisecond)
	c.Invalidate("svc.test")
	assert.NoError(t, <-got, "the caller still gets its answer")
	assert.Zero(t, c.Stats().Entries, "an answer asked for before Invalidate is not cached after it")
}
