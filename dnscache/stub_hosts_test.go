package dnscache

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

func writeHosts(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

func TestStubAnswersNamesInTheHostsFileWithoutAQuery(t *testing.T) {
	srv := startServer(t)
	for _, name := range []string{"db.internal", "db", "v4only.internal", "other.internal"} {
		srv.SetAddrs(name, time.Minute, addrs("127.0.0.66", "::66")...) // the server disagrees: it must not be asked
	}
	p := writeHosts(t, `# comment
127.0.0.7   db.internal db   # the canonical name, then an alias
::7         db.internal
127.0.0.8   v4only.internal
::ffff:127.0.0.9 db.internal
127.0.0.10
127.0.0.11  localhost
`)
	h, err := readHosts(p)
	require.NoError(t, err)
	s := stubFor(t, srv, "search internal", "options ndots:3")
	s.hosts = h

	for _, tc := range []struct {
		network, host string
		want          []netip.Addr
	}{
		{"ip", "db.internal", addrs("127.0.0.7", "::7", "127.0.0.9")},
		{"ip4", "db.internal", addrs("127.0.0.7", "127.0.0.9")},
		{"ip6", "db.internal", addrs("::7")},
		{"ip4", "DB.Internal.", addrs("127.0.0.7", "127.0.0.9")},
		{"ip4", "db", addrs("127.0.0.7")},
		{"ip", "v4only.internal", addrs("127.0.0.8")},
		{"ip", "localhost", addrs("127.0.0.1", "::1")}, // RFC 6761 wins over the file
	} {
		got, ttl, err := s.lookup(testCtx(t), tc.network, tc.host)
		require.NoError(t, err, "%s %s", tc.network, tc.host)
		assert.Equal(t, tc.want, got, "%s %s: the file's addresses in file order", tc.network, tc.host)
		assert.Equal(t, staticTTL, ttl)
	}
	_, _, err = s.lookup(testCtx(t), "ip6", "v4only.internal")
	var de *net.DNSError
	require.ErrorAs(t, err, &de)
	assert.True(t, de.IsNotFound, "listed with IPv4 only: no IPv6 address, and no query: %v", err)
	assert.Zero(t, srv.TotalQueries(), "no name the file lists was sent to the server")

	got, _, err := s.lookup(testCtx(t), "ip4", "other")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.66"), got, "a name the file does not list goes to DNS, through the search list")
	assert.Equal(t, 1, srv.Queries("other.internal", dnsmessage.TypeA))
}

func TestAHostsFileWithAnAddressThatDoesNotParseIsAnErrorNamingTheLine(t *testing.T) {
	p := writeHosts(t, "127.0.0.1 a.test\n\n127.0.0.300 b.test\n")
	_, err := readHosts(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), p+":3: address \"127.0.0.300\"")

	_, err = readHosts(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// FuzzParseHosts checks that any hosts file either fails with an error
// naming the file and line, or yields names every lookup can read: each
// family gets only its own addresses, "ip" gets both, in file order, and a
// name is found whatever its case or final dot; and that every address of a
// line is found under each of the line's names.
func FuzzParseHosts(f *testing.F) {
	f.Add("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
	f.Add("# c\n10.0.0.1\tdb db.internal. # alias\n::ffff:10.0.0.2 DB\nfe80::1%lo0 link\n")
	f.Add("bad address\n")
	f.Add("127.0.0.1 .\n127.0.0.2 ..\n")
	f.Fuzz(func(t *testing.T, text string) {
		h, err := parseHosts("fuzz.hosts", []byte(text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.hosts:") {
				t.Fatalf("error does not name the file and line: %v", err)
			}
			return
		}
		for name, all := range h.byName {
			if k, ok := hostsName(name); !ok || k != name {
				t.Fatalf("key %q", name)
			}
			for _, host := range []string{name, name + ".", strings.ToUpper(name)} {
				ip, ok := h.lookup("ip", host)
				ip4, ok4 := h.lookup("ip4", host)
				ip6, ok6 := h.lookup("ip6", host)
				if !ok || !ok4 || !ok6 || !slices.Equal(ip, all) || len(ip4)+len(ip6) != len(ip) {
					t.Fatalf("%q: ip %v, ip4 %v, ip6 %v of %v", host, ip, ip4, ip6, all)
				}
				for _, a := range ip4 {
					if !a.Is4() {
						t.Fatalf("%q: %v for ip4", host, a)
					}
				}
				for _, a := range ip6 {
					if !a.Is6() || a.Is4In6() {
						t.Fatalf("%q: %v for ip6", host, a)
					}
				}
			}
		}
		// A model of the format: every name of a line lists its address.
		for _, l := range strings.Split(text, "\n") {
			l, _, _ = strings.Cut(l, "#")
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			a := netip.MustParseAddr(f[0]).Unmap() // the parser accepted it
			for _, name := range f[1:] {
				if got, _ := h.lookup("ip", name); hostsNameOK(name) && !slices.Contains(got, a) {
					t.Fatalf("%q: %v not among %v", name, a, got)
				}
			}
		}
	})
}

func hostsNameOK(name string) bool {
	_, ok := hostsName(name)
	return ok
}

func TestHostsFileAnswersThroughTheCacheWithoutAQuery(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("db.internal", time.Minute, addrs("127.0.0.66")...) // the server disagrees: it must not be asked
	srv.SetAddrs("web.internal", time.Minute, addrs("127.0.0.67")...)
	p := writeHosts(t, "127.0.0.7 db.internal\n")
	c := stubCache(t, srv, newFakeClock(), HostsFile(p))

	got, err := c.LookupNetIP(testCtx(t), "ip4", "db.internal")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.7"), got, "the hosts file answers before DNS")
	assert.Zero(t, srv.Queries("db.internal", dnsmessage.TypeA), "a name the file lists is not sent to DNS")
	got, err = c.LookupNetIP(testCtx(t), "ip4", "web.internal")
	require.NoError(t, err)
	assert.Equal(t, addrs("127.0.0.67"), got, "a name the file does not list goes to DNS")

	assert.Equal(t, `dnscache.HostsFile("`+p+`")`, HostsFile(p).String())
}

func TestHostsFileIsAnErrorFromNewWhenItCannotBeUsed(t *testing.T) {
	srv := startServer(t)
	_, err := New(HostsFile(writeHosts(t, "127.0.0.1 a.test\n")))
	assert.ErrorContains(t, err, "needs ResolvConf", "the System source reads the hosts file itself")

	_, err = New(ResolvConf(resolvConfFor(t, srv)), HostsFile(filepath.Join(t.TempDir(), "missing")))
	assert.ErrorIs(t, err, os.ErrNotExist)

	_, err = New(ResolvConf(resolvConfFor(t, srv)), HostsFile(writeHosts(t, "127.0.0.1 a.test\nnot-an-address b.test\n")))
	assert.ErrorContains(t, err, ":2: address \"not-an-address\"")
}
