package dnscache

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// staticHosts is the map the Static tests answer from.
func staticHosts() map[string][]netip.Addr {
	return map[string][]netip.Addr{
		"api.test":   addrs("127.0.0.2", "::2", "127.0.0.3"),
		"v4.test":    addrs("127.0.0.4"),
		"v6.test":    addrs("::6"),
		"MiXeD.Test": addrs("127.0.0.5"),
		"dot.test.":  addrs("127.0.0.6"),
	}
}

func requireNotFound(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	var de *net.DNSError
	require.ErrorAs(t, err, &de, msgAndArgs...)
	assert.True(t, de.IsNotFound, msgAndArgs...)
}

func TestStaticAnswersFromTheMapForTheTTL(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Static(staticHosts()), TTL(10*time.Second), Clock(clk.Now))
	ctx := testCtx(t)

	got, err := c.LookupNetIP(ctx, "ip", "api.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, addrs("127.0.0.2", "::2", "127.0.0.3"), got)
	clk.Advance(5 * time.Second) // before the prefetch window, the last 10–20%
	_, err = c.LookupNetIP(ctx, "ip", "api.test")
	require.NoError(t, err)
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Lookups, "the second lookup, inside the TTL, is a hit")
	assert.Equal(t, uint64(1), st.Hits)

	clk.Advance(5 * time.Second)
	_, err = c.LookupNetIP(ctx, "ip", "api.test")
	require.NoError(t, err)
	settle(t, c)
	assert.Equal(t, uint64(2), c.Stats().Lookups, "past the TTL the source is asked again")
}

func TestStaticMissingNameIsNotFoundCachedForNegativeTTL(t *testing.T) {
	clk := newFakeClock()
	c := newCache(t, Static(staticHosts()), NegativeTTL(3*time.Second), Clock(clk.Now))
	ctx := testCtx(t)

	_, err := c.LookupNetIP(ctx, "ip", "missing.test")
	requireNotFound(t, err, "a name the map does not list")
	_, err = c.LookupNetIP(ctx, "ip", "missing.test")
	requireNotFound(t, err)
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Lookups)
	assert.Equal(t, uint64(1), st.NegativeHits, "the second is the cached negative answer")

	clk.Advance(3 * time.Second)
	_, err = c.LookupNetIP(ctx, "ip", "missing.test")
	requireNotFound(t, err)
	assert.Equal(t, uint64(2), c.Stats().Lookups, "past NegativeTTL the source is asked again")
}

func TestStaticNamesMatchWithoutCaseOrFinalDot(t *testing.T) {
	c := newCache(t, Static(staticHosts()), Clock(newFakeClock().Now))
	ctx := testCtx(t)
	for _, tc := range []struct{ host, want string }{
		{"api.test.", ""}, {"API.Test", ""}, {"Api.Test.", ""},
		{"mixed.test", "127.0.0.5"}, {"MIXED.TEST.", "127.0.0.5"},
		{"dot.test", "127.0.0.6"}, {"dot.test.", "127.0.0.6"},
	} {
		got, err := c.LookupNetIP(ctx, "ip4", tc.host)
		require.NoError(t, err, tc.host)
		if tc.want == "" {
			assert.ElementsMatch(t, addrs("127.0.0.2", "127.0.0.3"), got, tc.host)
		} else {
			assert.Equal(t, addrs(tc.want), got, tc.host)
		}
	}
	assert.Equal(t, uint64(3), c.Stats().Lookups, "one lookup per name and network, whatever the spelling")
}

func TestStaticAnswersIP4AndIP6WithTheirFamily(t *testing.T) {
	c := newCache(t, Static(staticHosts()), Clock(newFakeClock().Now))
	ctx := testCtx(t)

	got, err := c.LookupNetIP(ctx, "ip6", "api.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("::2"), got)
	got, err = c.LookupNetIP(ctx, "ip4", "v4.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.4"), got)
	got, err = c.LookupNetIP(ctx, "ip", "v6.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("::6"), got)

	_, err = c.LookupNetIP(ctx, "ip6", "v4.test")
	requireNotFound(t, err, "a name with IPv4 addresses only has no IPv6 answer")
	_, err = c.LookupNetIP(ctx, "ip4", "v6.test")
	requireNotFound(t, err, "and the other way round")
}

func TestStaticKeepsIPv4MappedAddressesAsIPv4(t *testing.T) {
	c := newCache(t, Static(map[string][]netip.Addr{"m.test": addrs("::ffff:127.0.0.9")}))
	got, err := c.LookupNetIP(testCtx(t), "ip4", "m.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.9"), got)
}

func TestStaticCopiesTheMap(t *testing.T) {
	m := map[string][]netip.Addr{"a.test": addrs("127.0.0.1")}
	o := Static(m)
	m["a.test"][0] = netip.MustParseAddr("127.0.0.99")
	m["b.test"] = addrs("127.0.0.2")
	c := newCache(t, o)
	got, err := c.LookupNetIP(testCtx(t), "ip", "a.test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.1"), got, "a change to the map after Static is not seen")
	_, err = c.LookupNetIP(testCtx(t), "ip", "b.test")
	requireNotFound(t, err)
}

func TestStaticRefusesAMapItCannotAnswerFrom(t *testing.T) {
	for _, m := range []map[string][]netip.Addr{
		{"not a name": addrs("127.0.0.1")},
		{"": addrs("127.0.0.1")},
		{"a.test": nil},
		{"a.test": addrs("127.0.0.1"), "A.Test.": addrs("127.0.0.2")},
		{"a.test": {netip.Addr{}}},
	} {
		c, err := New(Static(m))
		if !assert.Error(t, err, "%v", m) {
			c.Close()
			continue
		}
		var oe *OptionError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, Static(m).String(), oe.Option.String())
	}
}

func TestStaticAnswersIPLiteralsAndNothingElseWithoutAsking(t *testing.T) {
	c := newCache(t, Static(staticHosts()))
	got, err := c.LookupNetIP(testCtx(t), "ip", "192.0.2.1")
	require.NoError(t, err)
	assert.Equal(t, addrs("192.0.2.1"), got)
	_, err = c.LookupNetIP(testCtx(t), "ip", "localhost")
	requireNotFound(t, err, "Static answers only what the map lists")
}
