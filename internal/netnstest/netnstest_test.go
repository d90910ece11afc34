package netnstest_test

import (
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/internal/netnstest"
)

func TestEnterGivesTheTestItsOwnSysctlsAndLoopback(t *testing.T) {
	host, err := netnstest.Sysctl("net.ipv4.tcp_migrate_req")
	if err != nil {
		t.Skipf("no tcp_migrate_req sysctl here: %v", err)
	}
	if !netnstest.Enter(t, map[string]string{"net.ipv4.tcp_migrate_req": "1", "net.core.somaxconn": "77"}) {
		// Back in the parent: the host's value is untouched.
		got, err := netnstest.Sysctl("net.ipv4.tcp_migrate_req")
		require.NoError(t, err)
		assert.Equal(t, host, got, "the namespace's sysctl leaked into the host")
		return
	}
	require.NotEmpty(t, os.Getenv("NETTUNE_NETNS_CHILD"))
	v, err := netnstest.Sysctl("net.ipv4.tcp_migrate_req")
	require.NoError(t, err)
	assert.Equal(t, "1", v)
	v, err = netnstest.Sysctl("net.core.somaxconn")
	require.NoError(t, err)
	assert.Equal(t, "77", v)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "loopback is up in the namespace")
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	c.Close()

	ifs, err := net.Interfaces()
	require.NoError(t, err)
	assert.Len(t, ifs, 1, "a fresh namespace has only lo: %v", ifs)
}

func TestEnterRunsSubtestsInTheNamespace(t *testing.T) {
	t.Run("sub test", func(t *testing.T) {
		if !netnstest.Enter(t, nil) {
			return
		}
		ifs, err := net.Interfaces()
		require.NoError(t, err)
		assert.Len(t, ifs, 1, "a fresh namespace has only lo: %v", ifs)
	})
}

func TestNetstatReadsACounterThatMoves(t *testing.T) {
	if _, err := os.Stat("/proc/net/netstat"); err != nil {
		t.Skipf("no /proc/net/netstat: %v", err)
	}
	if !netnstest.Enter(t, nil) {
		return
	}
	// A fresh namespace: no connection has been opened yet, so
	// TcpExt.TCPOrigDataSent is 0 and goes up once data is sent.
	before, err := netnstest.Netstat("TcpExt", "TCPOrigDataSent")
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	after, err := netnstest.Netstat("TcpExt", "TCPOrigDataSent")
	require.NoError(t, err)
	assert.Greater(t, after, before)

	_, err = netnstest.Netstat("TcpExt", "NoSuchCounter")
	assert.Error(t, err)
}
