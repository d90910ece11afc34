package sockopt_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/sockopt"
)

func getInt(t *testing.T, c *net.TCPConn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var v int
	var gerr error
	require.NoError(t, rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }))
	require.NoError(t, gerr)
	return v
}

func TestTOSOnIPv6SetsTrafficClass(t *testing.T) {
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback: ", err)
	}
	t.Cleanup(func() { ln.Close() })
	d := net.Dialer{Control: sockopt.DialControl(sockopt.TOS(0xb8))}
	c, err := d.Dial("tcp6", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	tc := c.(*net.TCPConn)
	assert.Equal(t, 0xb8, getInt(t, tc, unix.IPPROTO_IPV6, unix.IPV6_TCLASS), "IPV6_TCLASS carries the value")
	got, err := sockopt.Get(tc, sockopt.TOS(0))
	require.NoError(t, err)
	assert.Equal(t, sockopt.TOS(0xb8), got)
}

func TestTOSOnADualStackListenerReachesIPv4MappedConns(t *testing.T) {
	// "tcp" on the unspecified address makes Go open one AF_INET6 socket
	// with IPV6_V6ONLY off: IPv4 clients arrive as ::ffff:127.0.0.1 and
	// their packets follow IP_TOS, not IPV6_TCLASS.
	lc := net.ListenConfig{Control: sockopt.ListenControl(sockopt.TOS(0x28))}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", ":0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, ln.(*net.TCPListener).SetDeadline(time.Now().Add(30*time.Second)))
	a, err := ln.(*net.TCPListener).AcceptTCP()
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	assert.Equal(t, 0x28, getInt(t, a, unix.IPPROTO_IP, unix.IP_TOS), "the v4-mapped conn inherited IP_TOS")
	assert.Equal(t, 0x28, getInt(t, a, unix.IPPROTO_IPV6, unix.IPV6_TCLASS), "and IPV6_TCLASS")
	got, err := sockopt.Get(a, sockopt.TOS(0))
	require.NoError(t, err)
	assert.Equal(t, sockopt.TOS(0x28), got, "Get reads the value that applies to the conn's traffic")
}

func TestTOSOnAnMPTCPDualStackListenerFallsBackToTCP(t *testing.T) {
	// MPTCP refuses IPV6_TCLASS (EOPNOTSUPP); Go's default listener is
	// MPTCP, so ListenControl refuses and Go retries with plain TCP.
	requireMPTCP(t)
	lc := net.ListenConfig{Control: sockopt.ListenControl(sockopt.TOS(0x28))}
	ln, err := lc.Listen(context.Background(), "tcp", ":0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	mp, err := sockopt.IsMPTCP(ln)
	require.NoError(t, err)
	assert.False(t, mp)
	rep, err := sockopt.Verify(ln, sockopt.TOS(0x28))
	require.NoError(t, err)
	assert.True(t, rep.OK(), "%s", rep)
}

func TestTCPOptionsOnAUDPSocketFailWithENOPROTOOPTThroughNetOpError(t *testing.T) {
	lc := net.ListenConfig{Control: sockopt.Control(sockopt.UserTimeout(time.Second))}
	_, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	require.Error(t, err)
	var opErr *net.OpError
	assert.ErrorAs(t, err, &opErr)
	assert.ErrorIs(t, err, unix.ENOPROTOOPT)
	var se *sockopt.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, sockopt.UserTimeout(time.Second), se.Option)
}
