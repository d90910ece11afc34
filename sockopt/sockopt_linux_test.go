package sockopt_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/sockopt"
)

func isRoot() bool { return os.Geteuid() == 0 }

// needsRoot are the options whose values in the table need CAP_NET_ADMIN.
func needsRoot(o sockopt.Option) bool {
	switch o.(type) {
	case sockopt.Mark, sockopt.ReceiveBufferForce, sockopt.SendBufferForce:
		return true
	}
	return false
}

// listenTCP listens on 127.0.0.1:0 with Multipath TCP off, setting opts on
// the listening socket.
func listenTCP(t testing.TB, mptcp bool, opts ...sockopt.Option) *net.TCPListener {
	t.Helper()
	lc := net.ListenConfig{Control: sockopt.ListenControl(opts...)}
	lc.SetMultipathTCP(mptcp)
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// connPair dials ln with opts in the dialer's Control and returns both ends.
func connPair(t testing.TB, ln *net.TCPListener, mptcp bool, opts ...sockopt.Option) (dialed, accepted *net.TCPConn) {
	t.Helper()
	d := net.Dialer{Control: sockopt.DialControl(opts...)}
	d.SetMultipathTCP(mptcp)
	c, err := d.Dial("tcp4", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, ln.SetDeadline(time.Now().Add(30*time.Second)))
	a, err := ln.AcceptTCP()
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	return c.(*net.TCPConn), a
}

// skipUnlessPrivileged skips a test of o when it needs a capability the
// test process lacks.
func skipUnlessPrivileged(t *testing.T, o sockopt.Option) {
	t.Helper()
	if needsRoot(o) && !isRoot() {
		t.Skip("needs CAP_NET_ADMIN: not root")
	}
}

type readBack struct {
	set  sockopt.Option
	want sockopt.Option // nil: the value set
}

// connectedCases read back exactly (or as documented) on a connected
// socket of either kind.
var connectedCases = []readBack{
	{set: sockopt.NoDelay(false)},
	{set: sockopt.KeepAlive(false)},
	{set: sockopt.KeepAliveIdle(33 * time.Second)},
	{set: sockopt.KeepAliveInterval(11 * time.Second)},
	{set: sockopt.KeepAliveCount(4)},
	{set: sockopt.UserTimeout(12345 * time.Millisecond)},
	{set: sockopt.ReceiveBuffer(65536), want: sockopt.ReceiveBuffer(2 * 65536)},
	{set: sockopt.SendBuffer(65536), want: sockopt.SendBuffer(2 * 65536)},
	{set: sockopt.ReceiveBufferForce(70000), want: sockopt.ReceiveBufferForce(140000)},
	{set: sockopt.SendBufferForce(70000), want: sockopt.SendBufferForce(140000)},
	{set: sockopt.Congestion("reno")},
	{set: sockopt.NotSentLowat(16384)},
	{set: sockopt.QuickAck(false)},
	{set: sockopt.WindowClamp(20000)},
	{set: sockopt.Linger(3 * time.Second)},
	{set: sockopt.Linger(0)},
	{set: sockopt.LingerOff},
	{set: sockopt.TOS(0x10)},
	{set: sockopt.TOS(0x13), want: sockopt.TOS(0x10)},
	{set: sockopt.Mark(7)},
	{set: sockopt.Priority(3)},
	{set: sockopt.BusyPoll(50 * time.Microsecond)},
}

// dialOnlyCases are meaningful before connect only.
var dialOnlyCases = []readBack{
	{set: sockopt.ReuseAddr(true)},
	{set: sockopt.ReusePort(true)},
	{set: sockopt.FastOpenConnect(true)},
	{set: sockopt.BindToDevice("lo")},
	{set: sockopt.BindAddressNoPort(true)},
}

func TestEveryOptionReadsBackFromADialedConn(t *testing.T) {
	ln := listenTCP(t, false)
	for _, tc := range append(append([]readBack{}, connectedCases...), dialOnlyCases...) {
		t.Run(tc.set.String(), func(t *testing.T) {
			skipUnlessPrivileged(t, tc.set)
			want := wantOf(tc)
			var ctl []sockopt.Option
			if !sockopt.AfterConnect(tc.set) {
				ctl = append(ctl, tc.set)
			}
			c, _ := connPair(t, ln, false, ctl...)
			if sockopt.AfterConnect(tc.set) {
				require.NoError(t, sockopt.Apply(c, tc.set))
			}
			got, err := sockopt.Get(c, tc.set)
			require.NoError(t, err)
			assert.Equal(t, want, got, "dialed conn read back %v after setting %v", got, tc.set)
		})
	}
}

func TestEveryConnectedOptionReadsBackFromAnAcceptedConn(t *testing.T) {
	ln := listenTCP(t, false)
	for _, tc := range connectedCases {
		t.Run(tc.set.String(), func(t *testing.T) {
			skipUnlessPrivileged(t, tc.set)
			want := wantOf(tc)
			_, a := connPair(t, ln, false)
			require.NoError(t, sockopt.Apply(a, tc.set))
			got, err := sockopt.Get(a, tc.set)
			require.NoError(t, err)
			assert.Equal(t, want, got, "accepted conn read back %v after setting %v", got, tc.set)
		})
	}
}

func TestListeningOptionsReadBackFromTheListener(t *testing.T) {
	cases := []readBack{
		{set: sockopt.FastOpen(16)},
		{set: sockopt.DeferAccept(5 * time.Second), want: sockopt.DeferAccept(7 * time.Second)},
		{set: sockopt.IncomingCPU(0)},
		{set: sockopt.ReusePort(true)},
		{set: sockopt.MaxSegment(1000)},
		{set: sockopt.ReceiveBuffer(32768), want: sockopt.ReceiveBuffer(65536)},
	}
	for _, tc := range cases {
		t.Run(tc.set.String(), func(t *testing.T) {
			want := wantOf(tc)
			ln := listenTCP(t, false, tc.set)
			got, err := sockopt.Get(ln, tc.set)
			require.NoError(t, err)
			assert.Equal(t, want, got, "listener read back %v after setting %v", got, tc.set)
		})
	}
}

func TestMaxSegmentIsReducedByTheRoomForTCPOptions(t *testing.T) {
	ln := listenTCP(t, false)
	c, _ := connPair(t, ln, false, sockopt.MaxSegment(1000))
	got, err := sockopt.Get(c, sockopt.MaxSegment(0))
	require.NoError(t, err)
	mss := int(got)
	assert.LessOrEqual(t, mss, 1000, "the MSS never exceeds the one asked for")
	assert.GreaterOrEqual(t, mss, 1000-40, "the kernel only subtracts TCP option room (at most 40 bytes)")
}

func TestControlRefusesOptionsThatGoResetsAfterConnect(t *testing.T) {
	ln := listenTCP(t, false)
	d := net.Dialer{Control: sockopt.Control(sockopt.NoDelay(false))}
	_, err := d.Dial("tcp4", ln.Addr().String())
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr, "net wraps a Control error in *net.OpError")
	var se *sockopt.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, sockopt.NoDelay(false), se.Option, "the error names the option")
}

func TestSetsockoptErrorsUnwrapToTheErrnoThroughNetOpError(t *testing.T) {
	ln := listenTCP(t, false)
	d := net.Dialer{Control: sockopt.Control(sockopt.Congestion("nosuchcc"))}
	_, err := d.Dial("tcp4", ln.Addr().String())
	require.Error(t, err)
	assert.ErrorIs(t, err, unix.ENOENT, "an unknown congestion control is ENOENT")
	var se *sockopt.Error
	require.ErrorAs(t, err, &se)
	assert.NotEmpty(t, se.Hint, "ENOENT on TCP_CONGESTION names the algorithms the kernel has")
	assert.Contains(t, se.Error(), "sockopt TCP_CONGESTION=nosuchcc: setsockopt: no such file or directory (net.ipv4.tcp_available_congestion_control is [",
		"the message reads like net's: option, call, errno, then the hint")
}

func TestMPTCPListenerWithATCPOnlyOptionFallsBackToPlainTCPWithTheOptionSet(t *testing.T) {
	// The Control function refuses UserTimeout on the MPTCP socket; Go then
	// retries with plain TCP, where it is set for real.
	ln := listenTCP(t, true, sockopt.UserTimeout(1500*time.Millisecond))
	mp, err := sockopt.IsMPTCP(ln)
	require.NoError(t, err)
	assert.False(t, mp, "Go fell back to a plain TCP listener")
	got, err := sockopt.Get(ln, sockopt.UserTimeout(0))
	require.NoError(t, err)
	assert.Equal(t, sockopt.UserTimeout(1500*time.Millisecond), got)
}

func TestApplyOnAnMPTCPConnRefusesTCPOnlyOptions(t *testing.T) {
	ln := listenTCP(t, true)
	if mp, err := sockopt.IsMPTCP(ln); err != nil || !mp {
		t.Skip("kernel without Multipath TCP (net.mptcp.enabled=0?)")
	}
	c, a := connPair(t, ln, true)
	for _, conn := range []*net.TCPConn{c, a} {
		mp, err := sockopt.IsMPTCP(conn)
		require.NoError(t, err)
		require.True(t, mp)
		err = sockopt.Apply(conn, sockopt.UserTimeout(time.Second))
		assert.ErrorIs(t, err, sockopt.ErrMPTCP, "TCP_USER_TIMEOUT is refused on an MPTCP socket")
	}
}
