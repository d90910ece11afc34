//go:build linux

package latency

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// tcpInfoRTT reads the kernel's smoothed RTT (tcpi_rtt, microseconds) the
// way a sockopt TCP_INFO reader would.
func tcpInfoRTT(c net.Conn) (time.Duration, error) {
	sc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var serr error
	if err := sc.Control(func(fd uintptr) { info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	return time.Duration(info.Rtt) * time.Microsecond, nil
}

func TestKernelRTTFromTCPInfoOnLoopback(t *testing.T) {
	ln := listen(t)
	serve(t, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	// Some traffic, so the kernel has measured a round trip.
	_, err = (&Probe{Sink: mustNew(t)}).RoundTrip(context.Background(), 10, c, []byte("x"), 1)
	require.NoError(t, err)
	h := mustNew(t)
	st, err := (&Probe{Sink: h}).KernelRTT(context.Background(), 3, time.Millisecond, c, tcpInfoRTT)
	require.NoError(t, err)
	assert.Equal(t, 3, st.Samples)
	s := h.Snapshot()
	t.Logf("loopback tcpi_rtt: min %v max %v", s.Min(), s.Max())
	assert.Positive(t, s.Min(), "the kernel reports a non-zero RTT")
	assert.Less(t, s.Max(), time.Second, "a loopback RTT is far under a second")
}
