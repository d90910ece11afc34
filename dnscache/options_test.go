package dnscache

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEveryRefusedOptionIsAnOptionErrorNamingIt(t *testing.T) {
	dir := t.TempDir()
	badConf := filepath.Join(dir, "bad.conf")
	require.NoError(t, os.WriteFile(badConf, []byte("nameserver 127.0.0.1\nnameserver not-an-ip\n"), 0o644))
	badOpt := filepath.Join(dir, "badopt.conf")
	require.NoError(t, os.WriteFile(badOpt, []byte("options ndots:many\n"), 0o644))
	goodConf := filepath.Join(dir, "good.conf")
	require.NoError(t, os.WriteFile(goodConf, []byte("nameserver 127.0.0.1\n"), 0o644))
	badHosts := filepath.Join(dir, "bad.hosts")
	require.NoError(t, os.WriteFile(badHosts, []byte("127.0.0.1 a.test\nnot-an-address b.test\n"), 0o644))
	missing := filepath.Join(dir, "missing")
	hosts := map[string][]netip.Addr{"a.test": {netip.MustParseAddr("127.0.0.1")}}

	for _, tc := range []struct {
		opts      []Option
		option    Option   // want: the option named
		conflicts []Option // want: the options it conflicts with
		msg       string   // want: the whole message
	}{
		{[]Option{TTL(-time.Second)}, TTL(-time.Second), nil,
			"dnscache.TTL(-1s): must not be negative (0 means the default, 30s)"},
		{[]Option{MinTTL(-1)}, MinTTL(-1), nil, "dnscache.MinTTL(-1ns): must not be negative"},
		{[]Option{MaxTTL(-1)}, MaxTTL(-1), nil, "dnscache.MaxTTL(-1ns): must not be negative (0 means the default, 1h0m0s)"},
		{[]Option{StaleAnswerTimeout(-1)}, StaleAnswerTimeout(-1), nil,
			"dnscache.StaleAnswerTimeout(-1ns): must not be negative (0 means the default, 250ms)"},
		{[]Option{MinRefresh(-1)}, MinRefresh(-1), nil, "dnscache.MinRefresh(-1ns): must not be negative (0 means the default, 1s)"},
		{[]Option{LookupTimeout(-1)}, LookupTimeout(-1), nil,
			"dnscache.LookupTimeout(-1ns): must not be negative (0 means the default, 10s)"},
		{[]Option{MaxEntries(0)}, MaxEntries(0), nil, "dnscache.MaxEntries(0): must be at least 1"},
		{[]Option{MaxAnswerAddrs(0)}, MaxAnswerAddrs(0), nil, "dnscache.MaxAnswerAddrs(0): must be at least 1"},
		{[]Option{MaxBytes(-1)}, MaxBytes(-1), nil, "dnscache.MaxBytes(-1): must be at least 1"},
		{[]Option{MaxLookups(0)}, MaxLookups(0), nil, "dnscache.MaxLookups(0): must be at least 1"},
		{[]Option{Clock(nil)}, Clock(nil), nil, "dnscache.Clock(nil): need a function"},
		{[]Option{nil}, nil, nil, "dnscache: nil Option"},

		// Options that cannot be combined.
		{[]Option{MaxTTL(time.Minute), MinTTL(time.Hour)}, MinTTL(time.Hour), []Option{MaxTTL(time.Minute)},
			"dnscache.MinTTL(1h0m0s): above MaxTTL (1m0s) (conflicts with dnscache.MaxTTL(1m0s))"},
		{[]Option{MinTTL(2 * time.Hour)}, MinTTL(2 * time.Hour), nil,
			"dnscache.MinTTL(2h0m0s): above MaxTTL (1h0m0s)"},
		{[]Option{MaxBytes(2000)}, MaxBytes(2000), nil,
			"dnscache.MaxBytes(2000): one answer of 64 addresses counts 2622 bytes, above MaxBytes (2000)"},
		{[]Option{MaxAnswerAddrs(1000), MaxBytes(16 << 10)}, MaxBytes(16 << 10), []Option{MaxAnswerAddrs(1000)},
			"dnscache.MaxBytes(16384): one answer of 1000 addresses counts 32574 bytes, above MaxBytes (16384) (conflicts with dnscache.MaxAnswerAddrs(1000))"},
		{[]Option{MaxAnswerAddrs(600_000)}, MaxAnswerAddrs(600_000), nil,
			"dnscache.MaxAnswerAddrs(600000): one answer of 600000 addresses counts 19200574 bytes, above MaxBytes (16777216)"},
		{[]Option{HostsFile(badHosts)}, HostsFile(badHosts), nil,
			"dnscache.HostsFile(\"" + badHosts + "\"): needs ResolvConf: the System source's resolver reads the hosts file itself, and Static has no DNS to put it before"},
		{[]Option{System(nil), HostsFile(badHosts)}, HostsFile(badHosts), []Option{System(nil)},
			"dnscache.HostsFile(\"" + badHosts + "\"): needs ResolvConf: the System source's resolver reads the hosts file itself, and Static has no DNS to put it before (conflicts with dnscache.System(net.DefaultResolver))"},
		{[]Option{HostsFile(badHosts), Static(hosts)}, HostsFile(badHosts), []Option{Static(hosts)}, ""},
		{[]Option{TTL(time.Minute), ResolvConf(goodConf)}, TTL(time.Minute), []Option{ResolvConf(goodConf)},
			"dnscache.TTL(1m0s): ResolvConf keeps the TTLs of the answers: TTL is for the System and Static sources (bound ResolvConf's TTLs with MinTTL and MaxTTL) (conflicts with dnscache.ResolvConf(\"" + goodConf + "\"))"},

		// Files the options name.
		{[]Option{ResolvConf(missing)}, ResolvConf(missing), nil,
			"dnscache.ResolvConf(\"" + missing + "\"): open " + missing + ": no such file or directory"},
		{[]Option{ResolvConf(badConf)}, ResolvConf(badConf), nil, ""},
		{[]Option{ResolvConf(badOpt)}, ResolvConf(badOpt), nil,
			"dnscache.ResolvConf(\"" + badOpt + "\"): " + badOpt + ":1: options ndots:many: want a whole number of at least 0"},
		{[]Option{ResolvConf(goodConf), HostsFile(badHosts)}, HostsFile(badHosts), nil,
			"dnscache.HostsFile(\"" + badHosts + "\"): " + badHosts + ":2: address \"not-an-address\": ParseAddr(\"not-an-address\"): unable to parse IP"},
		{[]Option{ResolvConf(goodConf), HostsFile(missing)}, HostsFile(missing), nil, ""},
	} {
		c, err := New(tc.opts...)
		if !assert.Error(t, err, "%v", tc.opts) {
			c.Close()
			continue
		}
		var oe *OptionError
		if !assert.ErrorAs(t, err, &oe, "%v", tc.opts) {
			continue
		}
		assert.Equal(t, tc.option, oe.Option, "%v: the option named", tc.opts)
		assert.Equal(t, tc.conflicts, oe.Conflicts, "%v: the conflicts", tc.opts)
		if tc.msg != "" {
			assert.Equal(t, tc.msg, err.Error(), "%v", tc.opts)
		}
		assert.Equal(t, 1+len(tc.conflicts), strings.Count(err.Error(), "dnscache"),
			"%v: each option is named once, with its package, and the package no more: %v", tc.opts, err)
	}
}

func TestAFileAnOptionNamesThatIsMissingIsFsErrNotExist(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := New(ResolvConf(missing))
	assert.ErrorIs(t, err, fs.ErrNotExist)
	var pe *fs.PathError
	assert.ErrorAs(t, err, &pe, "the os error is kept")
}

func TestTTLWithResolvConfIsRefused(t *testing.T) {
	srv := startServer(t)
	c, err := New(ResolvConf(resolvConfFor(t, srv)), TTL(time.Minute))
	if err == nil {
		c.Close()
	}
	require.Error(t, err, "ResolvConf keeps the answers' TTLs: a TTL given with it would be ignored")
	var oe *OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, TTL(time.Minute), oe.Option)
}

func TestOptionsPrintAsTheCallThatMadeThem(t *testing.T) {
	r := &net.Resolver{}
	for _, tc := range []struct {
		o    Option
		want string
	}{
		{System(nil), "dnscache.System(net.DefaultResolver)"},
		{System(r), "dnscache.System(resolver)"},
		{ResolvConf(""), `dnscache.ResolvConf("")`},
		{ResolvConf("/etc/r.conf"), `dnscache.ResolvConf("/etc/r.conf")`},
		{HostsFile("/etc/hosts"), `dnscache.HostsFile("/etc/hosts")`},
		{Static(map[string][]netip.Addr{"b.test": {netip.MustParseAddr("::1")}, "a.test": addrs("127.0.0.1", "127.0.0.2")}),
			"dnscache.Static(map[a.test:[127.0.0.1 127.0.0.2] b.test:[::1]])"},
		{Static(map[string][]netip.Addr{"a": nil, "b": nil, "c": nil, "d": nil, "e": nil}), "dnscache.Static(map[…5 names…])"},
		{TTL(30 * time.Second), "dnscache.TTL(30s)"},
		{MinTTL(time.Second), "dnscache.MinTTL(1s)"},
		{MaxTTL(time.Hour), "dnscache.MaxTTL(1h0m0s)"},
		{NegativeTTL(-1), "dnscache.NegativeTTL(-1ns)"},
		{MaxStale(10 * time.Minute), "dnscache.MaxStale(10m0s)"},
		{StaleAnswerTimeout(100 * time.Millisecond), "dnscache.StaleAnswerTimeout(100ms)"},
		{MinRefresh(2 * time.Second), "dnscache.MinRefresh(2s)"},
		{LookupTimeout(5 * time.Second), "dnscache.LookupTimeout(5s)"},
		{Prefetch(false), "dnscache.Prefetch(false)"},
		{MaxEntries(100), "dnscache.MaxEntries(100)"},
		{MaxAnswerAddrs(8), "dnscache.MaxAnswerAddrs(8)"},
		{MaxBytes(1 << 20), "dnscache.MaxBytes(1048576)"},
		{MaxLookups(4), "dnscache.MaxLookups(4)"},
		{Clock(time.Now), "dnscache.Clock(func)"},
		{Clock(nil), "dnscache.Clock(nil)"},
	} {
		assert.Equal(t, tc.want, tc.o.String())
	}
}

// Durations mean the same in every option: 0 the default, negative off
// where off makes sense (NegativeTTL, MaxStale), an error elsewhere.
func TestZeroDurationsMeanTheDefaultAndNegativeOnesOffOrAnError(t *testing.T) {
	for _, tc := range []struct {
		opt  func(time.Duration) Option
		def  time.Duration
		off  bool
		read func(*config) time.Duration
	}{
		{TTL, DefaultTTL, false, func(c *config) time.Duration { return c.ttl }},
		{MinTTL, 0, false, func(c *config) time.Duration { return c.minTTL }},
		{MaxTTL, DefaultMaxTTL, false, func(c *config) time.Duration { return c.maxTTL }},
		{NegativeTTL, DefaultNegativeTTL, true, func(c *config) time.Duration { return c.negativeTTL }},
		{MaxStale, DefaultMaxStale, true, func(c *config) time.Duration { return c.maxStale }},
		{StaleAnswerTimeout, DefaultStaleAnswerTimeout, false, func(c *config) time.Duration { return c.staleTimeout }},
		{MinRefresh, DefaultMinRefresh, false, func(c *config) time.Duration { return c.minRefresh }},
		{LookupTimeout, DefaultLookupTimeout, false, func(c *config) time.Duration { return c.lookupTimeout }},
	} {
		cfg, err := configure([]Option{tc.opt(0)})
		require.NoError(t, err, "%v", tc.opt(0))
		assert.Equal(t, tc.def, tc.read(&cfg), "%v is the default", tc.opt(0))

		cfg, err = configure([]Option{tc.opt(-time.Second)})
		if tc.off {
			require.NoError(t, err, "%v", tc.opt(-time.Second))
			assert.Negative(t, tc.read(&cfg), "%v turns it off", tc.opt(-time.Second))
			continue
		}
		var oe *OptionError
		require.ErrorAs(t, err, &oe, "%v is an error", tc.opt(-time.Second))
		assert.Equal(t, tc.opt(-time.Second), oe.Option)
	}
}

func TestOptionErrorWithoutErrOrOptionStillPrints(t *testing.T) {
	assert.Equal(t, "dnscache: ", (&OptionError{}).Error())
	assert.True(t, errors.Is(&OptionError{Err: fs.ErrNotExist}, fs.ErrNotExist))
}
