package sockopt_test

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/sockopt"
)

func readSysctlInt(t testing.TB, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	require.NoError(t, err)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return n
}

func TestVerifyExplainsTheDoubledAndClampedReceiveBuffer(t *testing.T) {
	rmemMax := readSysctlInt(t, "net.core.rmem_max")
	ln := listenTCP(t, false)
	asked := sockopt.ReceiveBuffer(rmemMax * 2)
	c, _ := connPair(t, ln, false, sockopt.SendBuffer(65536), asked)
	rep, err := sockopt.Verify(c, sockopt.SendBuffer(65536), asked)
	require.NoError(t, err)
	require.Len(t, rep, 2)
	assert.Equal(t, sockopt.Adjusted, rep[0].Verdict, "SO_SNDBUF is doubled: %s", rep)
	assert.Equal(t, sockopt.SendBuffer(131072), rep[0].Got)
	assert.Equal(t, sockopt.Clamped, rep[1].Verdict, "SO_RCVBUF above rmem_max is clamped: %s", rep)
	assert.Equal(t, sockopt.ReceiveBuffer(2*rmemMax), rep[1].Got)
	assert.Contains(t, rep[1].Reason, "net.core.rmem_max", "the reason names the sysctl")
	assert.False(t, rep.OK(), "a clamped option is not applied as asked")
	assert.Contains(t, rep.String(), "clamped", "the table shows the verdict")
}

func TestVerifyExplainsDeferAcceptRoundingAndECNStripping(t *testing.T) {
	ln := listenTCP(t, false, sockopt.DeferAccept(5*time.Second), sockopt.TOS(0x13))
	rep, err := sockopt.Verify(ln, sockopt.DeferAccept(5*time.Second), sockopt.TOS(0x13), sockopt.ReuseAddr(true))
	require.NoError(t, err)
	assert.Equal(t, sockopt.DeferAccept(7*time.Second), rep[0].Got)
	assert.Equal(t, sockopt.Adjusted, rep[0].Verdict)
	assert.Equal(t, sockopt.TOS(0x10), rep[1].Got)
	assert.Equal(t, sockopt.Adjusted, rep[1].Verdict)
	assert.Equal(t, sockopt.Applied, rep[2].Verdict, "Go sets SO_REUSEADDR on listeners")
	assert.True(t, rep.OK(), "%s", rep)
}

func TestVerifyReportsOptionsGoUndidOnAcceptedConns(t *testing.T) {
	// Linux passes the listener's TCP_NODELAY=0 and keepalive idle to the
	// accepted socket, and Go overwrites both: Verify must say so.
	lc := net.ListenConfig{Control: sockopt.Control(sockopt.UserTimeout(2*time.Second), sockopt.Priority(4))}
	lc.SetMultipathTCP(false)
	l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	_, a := connPair(t, l.(*net.TCPListener), false)
	rep, err := sockopt.Verify(a, sockopt.NoDelay(false), sockopt.UserTimeout(2*time.Second), sockopt.Priority(4))
	require.NoError(t, err)
	assert.Equal(t, sockopt.NotApplied, rep[0].Verdict, "Go set TCP_NODELAY back to 1: %s", rep)
	assert.Equal(t, sockopt.Applied, rep[1].Verdict, "TCP_USER_TIMEOUT is inherited: %s", rep)
	assert.Equal(t, sockopt.NotApplied, rep[2].Verdict, "SO_PRIORITY is not inherited: %s", rep)
	assert.Contains(t, rep[2].Reason, "after Accept")
}

func TestVerifyExplainsTheMSSLessTheTimestampRoom(t *testing.T) {
	ln := listenTCP(t, false)
	c, _ := connPair(t, ln, false, sockopt.MaxSegment(1000))
	rep, err := sockopt.Verify(c, sockopt.MaxSegment(1000))
	require.NoError(t, err)
	if rep[0].Got == sockopt.MaxSegment(1000) {
		assert.Equal(t, sockopt.Applied, rep[0].Verdict)
		return
	}
	assert.Equal(t, sockopt.Adjusted, rep[0].Verdict, "%s", rep)
}

func TestTCPInfoOfALiveConnHasGoTypedFields(t *testing.T) {
	ln := listenTCP(t, false)
	c, a := connPair(t, ln, false)
	msg := []byte("hello, tcp_info")
	_, err := c.Write(msg)
	require.NoError(t, err)
	buf := make([]byte, len(msg))
	_, err = io.ReadFull(a, buf)
	require.NoError(t, err)
	// Wait, with a generous deadline, until the data is acknowledged.
	var ti sockopt.TCPInfo
	deadline := time.Now().Add(30 * time.Second)
	for {
		ti, err = sockopt.ReadTCPInfo(c)
		require.NoError(t, err)
		if ti.BytesAcked >= uint64(len(msg)) || time.Now().After(deadline) {
			break
		}
		_, _ = a.Write(nil)
	}
	assert.Equal(t, sockopt.StateEstablished, ti.State)
	assert.Equal(t, "ESTABLISHED", ti.State.String())
	assert.Positive(t, ti.RTT, "a loopback RTT is measured")
	assert.Less(t, ti.RTT, 10*time.Second, "RTT is in Go units, not raw microseconds")
	assert.Positive(t, ti.SendCwnd, "a congestion window exists")
	assert.Positive(t, ti.SendMSS)
	assert.GreaterOrEqual(t, ti.BytesSent, uint64(len(msg)))
	assert.GreaterOrEqual(t, ti.BytesAcked, uint64(len(msg)), "the peer acknowledged the bytes")
	assert.NotZero(t, ti.Options&sockopt.OptSACK, "loopback negotiates SACK: %v", ti.Options)
	assert.Positive(t, ti.RecvWScale, "loopback negotiates window scaling")
	ai, err := sockopt.ReadTCPInfo(a)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, ai.BytesReceived, uint64(len(msg)))
}

func TestVerifyExplainsEachKindOfDifference(t *testing.T) {
	ln := listenTCP(t, false)
	c, _ := connPair(t, ln, false, sockopt.Congestion("reno"), sockopt.WindowClamp(100))
	rep, err := sockopt.Verify(c,
		sockopt.KeepAliveIdle(time.Hour), // Go set 15s after connect
		sockopt.Congestion("bbr"),        // the socket uses reno
		sockopt.WindowClamp(100),         // raised to the minimum
		sockopt.Linger(7*time.Second),    // never set
		sockopt.UserTimeout(0),           // the default, as asked
	)
	require.NoError(t, err)
	require.Len(t, rep, 5)
	want := []struct {
		v      sockopt.Verdict
		reason string
	}{
		{sockopt.NotApplied, "Go sets it"},
		{sockopt.NotApplied, "the socket uses TCP_CONGESTION=reno"},
		{sockopt.Adjusted, "kernel minimum 1152"},
		{sockopt.NotApplied, "the socket holds off"},
		{sockopt.Applied, ""},
	}
	for i, w := range want {
		assert.Equal(t, w.v, rep[i].Verdict, "%s", rep)
		assert.Contains(t, rep[i].Reason, w.reason, "%s", rep)
	}
	assert.False(t, rep.OK())
	assert.True(t, rep[2].OK() && rep[4].OK())
	assert.Contains(t, rep.String(), "NOT APPLIED", "the table makes failures stand out")
}
