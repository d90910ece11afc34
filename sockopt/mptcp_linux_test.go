package sockopt_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/sockopt"
)

func requireMPTCP(t *testing.T) {
	t.Helper()
	ln := listenTCP(t, true)
	if mp, err := sockopt.IsMPTCP(ln); err != nil || !mp {
		t.Skip("kernel without Multipath TCP or net.mptcp.enabled=0")
	}
}

func wantOf(tc readBack) sockopt.Option {
	if tc.want != nil {
		return tc.want
	}
	return tc.set
}

// TestNoOptionIsReportedSetOnMPTCPConnsUnlessItIs dials with Multipath TCP
// on, to a Multipath TCP listener (Go's default), and sets every option on
// both ends. Whatever sockopt reports as set must read back; what it
// refuses must be refused with ErrMPTCP.
func TestNoOptionIsReportedSetOnMPTCPConnsUnlessItIs(t *testing.T) {
	requireMPTCP(t)
	ln := listenTCP(t, true)
	for _, tc := range append(append([]readBack{}, connectedCases...), dialOnlyCases...) {
		t.Run(tc.set.String(), func(t *testing.T) {
			skipUnlessPrivileged(t, tc.set)
			var ctl []sockopt.Option
			if !sockopt.AfterConnect(tc.set) {
				ctl = append(ctl, tc.set)
			}
			c, a := connPair(t, ln, true, ctl...)
			mp, err := sockopt.IsMPTCP(c)
			require.NoError(t, err)
			if len(ctl) > 0 {
				if refusedOnMPTCPDial(tc.set) {
					assert.False(t, mp, "an option MPTCP refuses or drops made Go fall back to plain TCP")
				}
				got, err := sockopt.Get(c, tc.set)
				require.NoError(t, err)
				assert.Equal(t, wantOf(tc), got, "dialed conn (MPTCP=%v) reads back what was reported set", mp)
			}
			for name, conn := range map[string]*net.TCPConn{"dialed": c, "accepted": a} {
				if name == "accepted" && !applies(tc.set, sockopt.Accepted) {
					continue
				}
				err := sockopt.Apply(conn, tc.set)
				if sockopt.TCPOnly(tc.set) && err != nil {
					assert.ErrorIs(t, err, sockopt.ErrMPTCP, "%s conn refuses a TCP-only option with ErrMPTCP", name)
					continue
				}
				if name == "dialed" && !applies(tc.set, sockopt.Accepted) {
					continue // bind-time options cannot be set on a connected MPTCP socket
				}
				require.NoError(t, err, "%s conn", name)
				got, err := sockopt.Get(conn, tc.set)
				require.NoError(t, err)
				assert.Equal(t, wantOf(tc), got, "%s conn reads back what Apply reported set", name)
			}
		})
	}
}

// refusedOnMPTCPDial are the options measured to fail (ENOPROTOOPT) or to
// be lost on an MPTCP dialing socket.
func refusedOnMPTCPDial(o sockopt.Option) bool {
	switch o.(type) {
	case sockopt.UserTimeout, sockopt.WindowClamp, sockopt.NotSentLowat, sockopt.QuickAck:
		return true
	}
	return false
}

// refusedOnMPTCPListener are the options measured to fail on an MPTCP
// listener or not to reach the conns it accepts from TCP clients.
func refusedOnMPTCPListener(o sockopt.Option) bool {
	switch o.(type) {
	case sockopt.UserTimeout, sockopt.WindowClamp, sockopt.NotSentLowat, sockopt.BusyPoll:
		return true
	}
	return false
}

func applies(o sockopt.Option, r sockopt.Role) bool { return sockopt.Check(r, o) == nil }

// TestOptionsSetOnAListenerReachTheConnsItAccepts reads every option that
// Linux passes from a listener to its accepted sockets back from an accepted
// conn, for plain TCP and Multipath TCP listeners and clients. On an MPTCP
// listener, ListenControl must refuse the options MPTCP does not pass on
// (so Go falls back to plain TCP): every option it reports set must be on
// the accepted conn.
func TestOptionsSetOnAListenerReachTheConnsItAccepts(t *testing.T) {
	inherited := []readBack{
		{set: sockopt.ReusePort(true)},
		{set: sockopt.BindToDevice("lo")},
		{set: sockopt.UserTimeout(4 * time.Second)},
		{set: sockopt.ReceiveBuffer(65536), want: sockopt.ReceiveBuffer(131072)},
		{set: sockopt.SendBuffer(65536), want: sockopt.SendBuffer(131072)},
		{set: sockopt.Congestion("reno")},
		{set: sockopt.NotSentLowat(16384)},
		{set: sockopt.WindowClamp(20000)},
		{set: sockopt.Linger(2 * time.Second)},
		{set: sockopt.TOS(0x20)},
		{set: sockopt.Mark(9)},
		{set: sockopt.BusyPoll(30 * time.Microsecond)},
	}
	type variant struct{ listenerMPTCP, clientMPTCP bool }
	for _, tc := range inherited {
		for _, v := range []variant{{false, false}, {true, false}, {true, true}} {
			t.Run(fmt.Sprintf("%v/%+v", tc.set, v), func(t *testing.T) {
				if v.listenerMPTCP || v.clientMPTCP {
					requireMPTCP(t)
				}
				skipUnlessPrivileged(t, tc.set)
				clientMPTCP := v.clientMPTCP
				ln := listenTCP(t, v.listenerMPTCP, tc.set)
				lnMP, err := sockopt.IsMPTCP(ln)
				require.NoError(t, err)
				if refusedOnMPTCPListener(tc.set) {
					assert.False(t, lnMP, "an option MPTCP refuses or does not pass on made Go fall back to a plain TCP listener")
				}
				_, a := connPair(t, ln, clientMPTCP)
				got, err := sockopt.Get(a, tc.set)
				require.NoError(t, err)
				assert.Equal(t, wantOf(tc), got, "accepted conn (listener MPTCP=%v, client MPTCP=%v) holds the listener's value", lnMP, clientMPTCP)
			})
		}
	}
}

func TestCongestionWithAnUnknownNameFailsOnAnMPTCPDialSocket(t *testing.T) {
	// The kernel returns nil for this on a fresh MPTCP dialing socket.
	requireMPTCP(t)
	ln := listenTCP(t, true)
	d := net.Dialer{Control: sockopt.DialControl(sockopt.Congestion("nosuchcc"))}
	d.SetMultipathTCP(true)
	_, err := d.DialContext(context.Background(), "tcp4", ln.Addr().String())
	require.Error(t, err, "an unknown congestion control must never be reported set")
	var se *sockopt.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, sockopt.Congestion("nosuchcc"), se.Option)
}

func TestVerifyOnAnMPTCPConnSaysWhyTCPOnlyOptionsAreMissing(t *testing.T) {
	requireMPTCP(t)
	ln := listenTCP(t, true)
	c, _ := connPair(t, ln, true)
	rep, err := sockopt.Verify(c, sockopt.UserTimeout(time.Second), sockopt.ReceiveBuffer(1<<16))
	require.NoError(t, err)
	assert.Equal(t, sockopt.NotApplied, rep[0].Verdict)
	assert.Contains(t, rep[0].Reason, "Multipath TCP")
}
