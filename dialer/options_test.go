package dialer_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/sockopt"
)

func TestNewRefusesBadValuesWithAnOptionErrorNamingTheOption(t *testing.T) {
	ka := func(idle, interval time.Duration, count int) dialer.Option {
		return dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: interval, Count: count})
	}
	cases := []dialer.Option{
		dialer.Timeout(-time.Second),
		ka(1500*time.Millisecond, 0, 0),
		ka(0, 40000*time.Second, 0),
		ka(0, 0, 128),
		dialer.LocalAddr(netip.AddrPort{}),
		dialer.Resolver(nil),
		dialer.RecordConnectTime(nil),
		dialer.Sockopt(nil),
	}
	for _, o := range cases {
		t.Run(o.String(), func(t *testing.T) {
			d, err := dialer.New(dialer.Timeout(time.Second), o)
			require.Error(t, err)
			assert.Nil(t, d)
			var oe *dialer.OptionError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, o, oe.Option, "the error names the refused option: %v", err)
			assert.Empty(t, oe.Conflicts, "a bad value is not a conflict")
		})
	}
}

func TestNewRefusesBadSockoptsWithAnOptionErrorWrappingTheSockoptError(t *testing.T) {
	cases := []struct {
		name string
		opts []dialer.Option
		bad  sockopt.Option
	}{
		{"negative user timeout", []dialer.Option{dialer.Sockopt(sockopt.UserTimeout(-time.Second))}, sockopt.UserTimeout(-time.Second)},
		{"zero receive buffer", []dialer.Option{dialer.Sockopt(sockopt.ReceiveBuffer(0))}, sockopt.ReceiveBuffer(0)},
		{"empty congestion control", []dialer.Option{dialer.Sockopt(sockopt.Congestion(""))}, sockopt.Congestion("")},
		{"a listening option on a dialer", []dialer.Option{dialer.Sockopt(sockopt.DeferAccept(5 * time.Second))}, sockopt.DeferAccept(5 * time.Second)},
		{"two values for one option", []dialer.Option{
			dialer.Sockopt(sockopt.SendBuffer(1 << 16)), dialer.Sockopt(sockopt.SendBuffer(1 << 17)),
		}, sockopt.SendBuffer(1 << 17)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialer.New(tc.opts...)
			var se *sockopt.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.bad, se.Option, "the error names the bad option: %v", err)
			var oe *dialer.OptionError
			require.ErrorAs(t, err, &oe, "New's errors are all *OptionError")
			assert.Equal(t, dialer.Sockopt(tc.bad), oe.Option, "the error names the dialer option: %v", err)
		})
	}
}

func TestNewRefusesMultipathTCPWithTCPOnlyOptionsNamingThemAll(t *testing.T) {
	ut := sockopt.UserTimeout(30 * time.Second)
	qa := sockopt.QuickAck(true)
	require.True(t, sockopt.TCPOnly(ut), "precondition: TCP_USER_TIMEOUT is TCP-only")
	rb := sockopt.ReceiveBuffer(1 << 16)
	require.False(t, sockopt.TCPOnly(rb), "precondition: SO_RCVBUF works on MPTCP")

	_, err := dialer.New(dialer.Sockopt(ut), dialer.Sockopt(rb), dialer.Sockopt(qa), dialer.MultipathTCP(true))
	var oe *dialer.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, dialer.MultipathTCP(true), oe.Option)
	assert.Equal(t, []dialer.Option{dialer.Sockopt(ut), dialer.Sockopt(qa)}, oe.Conflicts,
		"the error names every TCP-only option and only those")
	assert.Contains(t, err.Error(), ut.String(), "the message names the option for the reader")

	for _, opts := range [][]dialer.Option{
		{dialer.Sockopt(ut)},                             // MPTCP unset: turned off
		{dialer.Sockopt(ut), dialer.MultipathTCP(false)}, // explicitly off
		{dialer.Sockopt(rb), dialer.MultipathTCP(true)},  // not TCP-only
	} {
		_, err := dialer.New(opts...)
		assert.NoError(t, err, "%v is a valid set", opts)
	}
}

func TestNewRefusesKeepAliveConfiguredTwoWays(t *testing.T) {
	cfg := net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second}
	idle := sockopt.KeepAliveIdle(10 * time.Second)
	_, err := dialer.New(dialer.KeepAliveConfig(cfg), dialer.Sockopt(idle))
	var oe *dialer.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, dialer.KeepAliveConfig(cfg), oe.Option)
	assert.Equal(t, []dialer.Option{dialer.Sockopt(idle)}, oe.Conflicts)
}

func TestNewRefusesFastOpenOffWithFastOpenConnectOn(t *testing.T) {
	_, err := dialer.New(dialer.FastOpen(false), dialer.Sockopt(sockopt.FastOpenConnect(true)))
	var oe *dialer.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, dialer.FastOpen(false), oe.Option)

	_, err = dialer.New(dialer.FastOpen(true), dialer.Sockopt(sockopt.FastOpenConnect(true)))
	assert.NoError(t, err, "saying the same thing twice is fine")
}

func TestNewRefusesANilOptionWithAnOptionError(t *testing.T) {
	_, err := dialer.New(nil)
	var oe *dialer.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Nil(t, oe.Option)
	assert.Equal(t, "dialer: nil Option", err.Error())
}

func TestOptionErrorPrintsTheOptionItsCauseAndItsConflicts(t *testing.T) {
	_, err := dialer.New(dialer.Timeout(-time.Second))
	require.Error(t, err)
	assert.Equal(t, "dialer.Timeout(-1s): must not be negative (0 means no timeout)", err.Error())

	ut := sockopt.UserTimeout(time.Minute)
	_, err = dialer.New(dialer.Sockopt(ut), dialer.MultipathTCP(true))
	require.Error(t, err)
	assert.Regexp(t, `^dialer\.MultipathTCP\(true\): .+ \(conflicts with dialer\.Sockopt\(TCP_USER_TIMEOUT=1m0s\)\)$`, err.Error())
}

func TestNewRefusesKeepAliveFieldsWithEnableFalse(t *testing.T) {
	// net.Dialer keeps keep-alive on with its own defaults for this value
	// and ignores Idle; the old KeepAlive option turned keep-alive off.
	for _, cfg := range []net.KeepAliveConfig{
		{Idle: 30 * time.Second},
		{Interval: 10 * time.Second},
		{Count: 3},
		{Idle: -1},
	} {
		d, err := dialer.New(dialer.KeepAliveConfig(cfg))
		assert.Nil(t, d)
		var oe *dialer.OptionError
		require.ErrorAs(t, err, &oe, "%+v", cfg)
		assert.Equal(t, dialer.KeepAliveConfig(cfg), oe.Option)
		assert.Contains(t, err.Error(), "set Enable: true to use them, or leave them zero to turn keep-alive off",
			"the message says what to write")
	}
	_, err := dialer.New(dialer.KeepAliveConfig(net.KeepAliveConfig{}))
	assert.NoError(t, err, "Enable false with zero fields is keep-alive off")
}

func TestNewRefusesANilControl(t *testing.T) {
	_, err := dialer.New(dialer.Control(nil))
	var oe *dialer.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, dialer.Control(nil), oe.Option)
}

type discard struct{}

func (discard) Record(time.Duration) {}

func TestOptionsAreComparableValuesThatPrintThemselves(t *testing.T) {
	r := &net.Resolver{}
	cases := []struct {
		a, b dialer.Option
		want string
	}{
		{dialer.Timeout(5 * time.Second), dialer.Timeout(5 * time.Second), "dialer.Timeout(5s)"},
		{dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: 10 * time.Second, Count: 3}),
			dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: 10 * time.Second, Count: 3}),
			"dialer.KeepAliveConfig(net.KeepAliveConfig{Enable:true, Idle:1m0s, Interval:10s, Count:3})"},
		{dialer.KeepAliveConfig(net.KeepAliveConfig{}), dialer.KeepAliveConfig(net.KeepAliveConfig{}), "dialer.KeepAliveConfig(net.KeepAliveConfig{Enable:false, Idle:0s, Interval:0s, Count:0})"},
		{dialer.Sockopt(sockopt.UserTimeout(time.Minute)), dialer.Sockopt(sockopt.UserTimeout(time.Minute)),
			"dialer.Sockopt(TCP_USER_TIMEOUT=1m0s)"},
		{dialer.LocalAddr(netip.MustParseAddrPort("127.0.0.1:0")), dialer.LocalAddr(netip.MustParseAddrPort("127.0.0.1:0")),
			"dialer.LocalAddr(127.0.0.1:0)"},
		{dialer.FastOpen(true), dialer.FastOpen(true), "dialer.FastOpen(true)"},
		{dialer.MultipathTCP(false), dialer.MultipathTCP(false), "dialer.MultipathTCP(false)"},
		{dialer.Resolver(r), dialer.Resolver(r), "dialer.Resolver(*net.Resolver)"},
		{dialer.RecordConnectTime(discard{}), dialer.RecordConnectTime(discard{}), "dialer.RecordConnectTime(dialer_test.discard)"},
		{dialer.FallbackDelay(50 * time.Millisecond), dialer.FallbackDelay(50 * time.Millisecond), "dialer.FallbackDelay(50ms)"},
		{dialer.Control(nil), dialer.Control(nil), "dialer.Control(nil)"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, tc.a.String())
		assert.True(t, tc.a == tc.b, "%v compares equal to the same option", tc.a)
	}
	assert.True(t, dialer.Timeout(time.Second) != dialer.Timeout(2*time.Second), "different values differ")
	assert.True(t, dialer.FastOpen(true) != dialer.MultipathTCP(true), "different options differ")
}

func TestTheLastOfTwoValuesForOneSettingWins(t *testing.T) {
	d, err := dialer.New(dialer.Timeout(time.Second), dialer.Timeout(3*time.Second))
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, d.NetDialer().Timeout)
}

func TestNetDialerIsAFreshCopyOfTheConfiguration(t *testing.T) {
	r := &net.Resolver{PreferGo: true}
	local := netip.MustParseAddrPort("127.0.0.1:0")
	cfg := net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 4}
	d, err := dialer.New(
		dialer.Timeout(7*time.Second),
		dialer.KeepAliveConfig(cfg),
		dialer.LocalAddr(local),
		dialer.Resolver(r),
		dialer.FallbackDelay(time.Second),
		dialer.Sockopt(sockopt.UserTimeout(time.Minute)),
	)
	require.NoError(t, err)
	nd := d.NetDialer()
	assert.Equal(t, 7*time.Second, nd.Timeout)
	assert.Equal(t, cfg, nd.KeepAliveConfig)
	assert.Equal(t, time.Second, nd.FallbackDelay)
	assert.Same(t, r, nd.Resolver, "a *net.Resolver is handed on")
	assert.NotNil(t, nd.Control, "the socket options are in Control")
	assert.False(t, nd.MultipathTCP(), "a TCP-only option turns MPTCP off in the copy too")
	require.IsType(t, &net.TCPAddr{}, nd.LocalAddr)
	assert.Equal(t, local, nd.LocalAddr.(*net.TCPAddr).AddrPort())

	nd.Timeout = time.Hour
	nd.LocalAddr.(*net.TCPAddr).Port = 9
	again := d.NetDialer()
	assert.Equal(t, 7*time.Second, again.Timeout, "changing a copy leaves the Dialer alone")
	assert.Equal(t, local, again.LocalAddr.(*net.TCPAddr).AddrPort(), "the local address is copied too")

	off, err := dialer.New(dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: false}))
	require.NoError(t, err)
	assert.Negative(t, off.NetDialer().KeepAlive, "keepalive off is KeepAlive < 0 for net")
}

func TestNetDialerSetsTheSockoptsItWasGiven(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	d, err := dialer.New(dialer.Sockopt(sockopt.UserTimeout(4321 * time.Millisecond)))
	require.NoError(t, err)
	c, err := d.NetDialer().DialContext(context.Background(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	got, err := sockopt.Get(c.(*net.TCPConn), sockopt.UserTimeout(0))
	require.NoError(t, err)
	assert.Equal(t, sockopt.UserTimeout(4321*time.Millisecond), got)
}

func TestDialerStringListsItsOptions(t *testing.T) {
	d, err := dialer.New(dialer.Timeout(5*time.Second), dialer.MultipathTCP(false))
	require.NoError(t, err)
	assert.Equal(t, "dialer.Dialer(dialer.Timeout(5s), dialer.MultipathTCP(false))", d.String())
	var zero dialer.Dialer
	assert.Equal(t, "dialer.Dialer()", zero.String())
}

func TestTheZeroDialerDialsLikeNet(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	var d dialer.Dialer
	c, err := d.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	assert.Equal(t, ln.Addr().String(), c.RemoteAddr().String())
	c.Close()
}

func TestDialRefusesNetworksOtherThanTCP(t *testing.T) {
	d, err := dialer.New()
	require.NoError(t, err)
	for _, network := range []string{"udp", "unix", "ip4:icmp", ""} {
		_, err := d.DialContext(context.Background(), network, "127.0.0.1:1")
		var unknown net.UnknownNetworkError
		assert.True(t, errors.As(err, &unknown), "%q: got %v", network, err)
		var oe *net.OpError
		assert.ErrorAs(t, err, &oe, "%q: net's error type", network)
	}
}
