package dnscache

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nettune/nettune/internal/dnstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// invalidNames are names net's resolver refuses without sending a query.
var invalidNames = []string{
	"a\x00b.test",
	"a b.test",
	"*.test",
	"h\u00e9llo.test",
	"xn--hllo-bpa.test\u200b",
	"a..test",
	".a.test",
	"..",
	strings.Repeat("a", 64) + ".test",
	strings.Repeat("a.", 126) + "bc",  // 254 bytes without the final dot
	strings.Repeat("a.", 127) + "b.",  // 255 bytes with it
	strings.Repeat("a.", 127) + "bc.", // 256
	"123.456",
	"-a.test",
	"a-.test",
	"a.-b.test",
	"a@b.test",
	"a/b",
	"hidden.onion",
	"x.ONION.",
}

func TestStubRefusesNamesGoRefusesWithoutSendingAQuery(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
	c := stubCache(t, srv, newFakeClock())
	for _, name := range invalidNames {
		srv.ResetCounters()
		_, err := c.LookupNetIP(testCtx(t), "ip", name)
		var de *net.DNSError
		if assert.ErrorAs(t, err, &de, "%q", name) {
			assert.True(t, de.IsNotFound, "%q: not found, as net says: %v", name, err)
			assert.False(t, de.IsTemporary || de.IsTimeout, "%q: not a transient failure: %v", name, err)
			assert.Equal(t, name, de.Name, "the error names the host")
		}
		assert.Zero(t, srv.TotalQueries(), "%q: no query went out", name)

		// What net's own resolver does with the name, against the same server.
		srv.ResetCounters()
		_, goErr := srv.Resolver().LookupNetIP(testCtx(t), "ip", name)
		assert.Error(t, goErr, "%q: net refuses it too", name)
		if goDE := (*net.DNSError)(nil); errors.As(goErr, &goDE) { // for .onion, net says "no suitable address"
			assert.True(t, goDE.IsNotFound, "%q: net says not found: %v", name, goErr)
		}
		assert.Zero(t, srv.TotalQueries(), "%q: net sends no query either", name)
	}
	// Names at the limits are sent (asked of the stub itself: the cache may
	// take "x." and "x" for one name).
	s := stubFor(t, srv)
	for _, name := range []string{
		strings.Repeat("a", 63) + ".test",
		strings.Repeat("a.", 126) + "b",  // 253 bytes
		strings.Repeat("a.", 126) + "b.", // 254 with the final dot
		"_srv.test", "a-b.test", "1a.test", "x1.2",
	} {
		srv.ResetCounters()
		_, _, err := s.lookup(testCtx(t), "ip4", name)
		var de *net.DNSError
		require.ErrorAs(t, err, &de, "%q is NXDOMAIN at the server", name)
		assert.Equal(t, 1, srv.Queries(name, dnsmessage.TypeA), "%q was asked", name)
	}
}

// FuzzStubRefusesWhatNetRefuses checks that the stub refuses exactly the
// names net's pure-Go resolver refuses without a query (an error and no
// dial), so that switching a service between System and ResolvConf does not
// change which names are sent nowhere. The stub asks a real loopback server,
// which counts queries.
func FuzzStubRefusesWhatNetRefuses(f *testing.F) {
	for _, n := range invalidNames {
		f.Add(n)
	}
	for _, n := range []string{"svc.test", "svc.test.", ".", "_srv.test", "a-b.c", "1.2.3.a", "x", strings.Repeat("a.", 126) + "b.", "onion", "a.onion.test", "a.localhost"} {
		f.Add(n)
	}
	var dials atomic.Int64
	r := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("no DNS server in this test")
	}}
	if _, err := r.LookupNetIP(context.Background(), "ip4", "svc.test"); err == nil || dials.Load() == 0 {
		f.Skip("net's resolver does not ask DNS for names on this machine (see nsswitch.conf): nothing to compare with")
	}
	srv, err := dnstest.Start()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	s := stubFor(f, srv)
	var mu sync.Mutex // one name at a time: the counters are that name's
	f.Fuzz(func(t *testing.T, name string) {
		if _, err := netip.ParseAddr(name); err == nil || strings.ContainsRune(name, '%') {
			return // IP literals (and zones) never reach the stub
		}
		mu.Lock()
		defer mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dials.Store(0)
		_, netErr := r.LookupNetIP(ctx, "ip4", name)
		if netErr == nil {
			return // answered from the hosts file
		}
		srv.ResetCounters()
		_, _, err := s.lookup(ctx, "ip4", name)
		var de *net.DNSError
		stubRefuses := srv.TotalQueries() == 0 && errors.As(err, &de) && de.IsNotFound
		if netRefuses := dials.Load() == 0; stubRefuses != netRefuses {
			t.Fatalf("%q: the stub refuses it %v (%v), net refuses it %v (%v)", name, stubRefuses, err, netRefuses, netErr)
		}
	})
}

func TestStubAnswersLocalhostNamesFromLoopbackWithoutAQuery(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("localhost", time.Minute, addrs("127.0.0.9", "::9")...) // a server that says otherwise is never asked
	srv.SetAddrs("db.localhost", time.Minute, addrs("127.0.0.9", "::9")...)
	srv.SetAddrs("localhost.corp.test", time.Minute, addrs("127.0.0.9", "::9")...)
	p := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, srv.WriteResolvConf(p, "search corp.test", "options ndots:3 timeout:1 attempts:1"))
	c := newCache(t, ResolvConf(p))
	for _, name := range []string{"localhost", "localhost.", "LocalHost", "db.localhost", "a.b.LOCALHOST."} {
		for network, want := range map[string][]netip.Addr{
			"ip":  addrs("127.0.0.1", "::1"),
			"ip4": addrs("127.0.0.1"),
			"ip6": addrs("::1"),
		} {
			got, err := c.LookupNetIP(testCtx(t), network, name)
			require.NoError(t, err, "%s %q", network, name)
			assert.ElementsMatch(t, want, got, "%s %q", network, name)
		}
	}
	assert.Zero(t, srv.TotalQueries(), "RFC 6761: localhost names are never sent to a DNS server")

	for _, name := range []string{"localhost.test", "notlocalhost", "localhost-a.test"} {
		_, _ = c.LookupNetIP(testCtx(t), "ip4", name)
		assert.Positive(t, srv.Queries(name, dnsmessage.TypeA)+srv.Queries(name+".corp.test", dnsmessage.TypeA),
			"%q is not a localhost name: it is asked", name)
	}
}

func TestStubSendsAnAbsoluteNameAsItIsWithOneQuery(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("x.test", time.Minute, addrs("127.0.0.2")...)
	srv.SetAddrs("x.test.corp.test", time.Minute, addrs("127.0.0.66")...)
	p := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, srv.WriteResolvConf(p, "search corp.test other.test", "options ndots:5 timeout:1 attempts:1"))
	c := newCache(t, ResolvConf(p))

	got, err := c.LookupNetIP(testCtx(t), "ip4", "x.test.")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.2"), got, "no search domain was appended")
	assert.Equal(t, 1, srv.TotalQueries(), "one query, for x.test. itself")

	srv.ResetCounters()
	_, err = c.LookupNetIP(testCtx(t), "ip4", "gone.test.")
	var de *net.DNSError
	require.ErrorAs(t, err, &de)
	assert.True(t, de.IsNotFound)
	assert.Equal(t, 1, srv.TotalQueries(), "NXDOMAIN for an absolute name ends the lookup: no search domain is tried")
}

// The stub sends a name in the case it is given (the cache in front of it
// may have changed it).
func TestStubSendsTheNameInTheCaseGivenAndMatchesAnswersInAnyCase(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("web.example.test", time.Minute, addrs("127.0.0.2")...) // answers with lower-case owner names
	var mu sync.Mutex
	var asked []string
	srv.SetJunk("", func(query, _ []byte) [][]byte {
		var m dnsmessage.Message
		if m.Unpack(query) == nil && len(m.Questions) == 1 {
			mu.Lock()
			asked = append(asked, m.Questions[0].Name.String())
			mu.Unlock()
		}
		return nil
	})
	got, _, err := stubFor(t, srv).lookup(testCtx(t), "ip4", "WEB.Example.Test")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.2"), got)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"WEB.Example.Test."}, asked, "the name went out as the caller spelt it (RFC 4343: the server ignores case)")
}

func TestTheCacheKeepsTheStubsReasonForNoSuchHost(t *testing.T) {
	srv := startServer(t)
	c := stubCache(t, srv, newFakeClock())
	for range 2 { // the answer, then the cached negative entry
		_, err := c.LookupNetIP(testCtx(t), "ip4", "bad name.test")
		var de *net.DNSError
		require.ErrorAs(t, err, &de)
		assert.True(t, de.IsNotFound)
		assert.Contains(t, de.Err, "not a valid domain name", "the reason the stub gave is kept")
	}
	assert.Zero(t, srv.TotalQueries())
}
