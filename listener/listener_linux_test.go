package listener_test

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/internal/netnstest"
	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/sockopt"
)

func withFD(t testing.TB, c syscall.Conn, f func(fd int)) {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(fd uintptr) { f(int(fd)) }))
}

func soProtocol(t testing.TB, c syscall.Conn) int {
	var p int
	withFD(t, c, func(fd int) {
		var err error
		p, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		require.NoError(t, err)
	})
	return p
}

func TestGoResetsNoDelayAndKeepaliveOnConnsAcceptedByAPlainListener(t *testing.T) {
	// The trap ConnSockopt exists for: set on the listening socket, both
	// options are inherited by the accepted socket and then overwritten
	// by Go's Accept (DESIGN fact 2).
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		cerr := rc.Control(func(fd uintptr) {
			err = errors.Join(
				unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 0),
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1),
				unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 300))
		})
		return errors.Join(cerr, err)
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, c, err := dialAccept(t, ln, nil)
	require.NoError(t, err)
	readBack(t, c.(*net.TCPConn), sockopt.NoDelay(true), sockopt.KeepAliveIdle(15*time.Second))
}

func mptcpEnabled(t *testing.T) {
	t.Helper()
	v, err := netnstest.Sysctl("net.mptcp.enabled")
	if err != nil || v != "1" {
		t.Skipf("Multipath TCP is not enabled here (net.mptcp.enabled=%q, %v)", v, err)
	}
}

func TestMultipathTCPIsTurnedOffWhenAnOptionNeedsPlainTCP(t *testing.T) {
	mptcpEnabled(t)
	mpDialer := &net.Dialer{}
	mpDialer.SetMultipathTCP(true)

	// Go's default for this module (go 1.25 in go.mod): an MPTCP listener.
	plain := listen(t)
	assert.Equal(t, unix.IPPROTO_MPTCP, soProtocol(t, plain.TCPListener()), "Go listens with MPTCP by default")
	assert.True(t, plain.MultipathTCP())
	_, c, err := dialAccept(t, plain, mpDialer)
	require.NoError(t, err)
	assert.Equal(t, unix.IPPROTO_MPTCP, soProtocol(t, c.(*net.TCPConn)), "an MPTCP client gets an MPTCP accepted socket")

	// A TCP-only per-conn option turns it off: even an MPTCP client's
	// connection is a plain TCP socket on which the option holds.
	l := listen(t, listener.ConnSockopt(sockopt.UserTimeout(3*time.Second)))
	assert.Equal(t, unix.IPPROTO_TCP, soProtocol(t, l.TCPListener()), "SO_PROTOCOL of the listening socket")
	assert.False(t, l.MultipathTCP())
	_, c, err = dialAccept(t, l, mpDialer)
	require.NoError(t, err)
	assert.Equal(t, unix.IPPROTO_TCP, soProtocol(t, c.(*net.TCPConn)), "SO_PROTOCOL of the accepted socket")
	readBack(t, c.(*net.TCPConn), sockopt.UserTimeout(3*time.Second))

	// Asked for explicitly, with options MPTCP accepts, it stays on.
	on := listen(t, listener.MultipathTCP(true), listener.ConnSockopt(sockopt.NoDelay(false)))
	assert.Equal(t, unix.IPPROTO_MPTCP, soProtocol(t, on.TCPListener()))
	_, c, err = dialAccept(t, on, mpDialer)
	require.NoError(t, err)
	assert.Equal(t, unix.IPPROTO_MPTCP, soProtocol(t, c.(*net.TCPConn)))
	readBack(t, c.(*net.TCPConn), sockopt.NoDelay(false))

	off := listen(t, listener.MultipathTCP(false))
	assert.Equal(t, unix.IPPROTO_TCP, soProtocol(t, off.TCPListener()))
}

func TestBacklogIsTruncatedBySomaxconnAndSaysSo(t *testing.T) {
	if !netnstest.Enter(t, map[string]string{"net.core.somaxconn": "64"}) {
		return
	}
	l := listen(t, listener.Backlog(1000))
	got, asked := l.Backlog()
	assert.Equal(t, 64, got, "the kernel truncates to somaxconn")
	assert.Equal(t, 1000, asked)

	cfg, err := listener.New(listener.Backlog(1000), listener.StrictBacklog(true))
	require.NoError(t, err)
	_, err = cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	assert.ErrorIs(t, err, listener.ErrBacklogTruncated)
	var op *net.OpError
	assert.ErrorAs(t, err, &op)

	strictOK := listen(t, listener.Backlog(64), listener.StrictBacklog(true))
	got, _ = strictOK.Backlog()
	assert.Equal(t, 64, got)
}

func TestBacklogReallyLimitsTheAcceptQueue(t *testing.T) {
	// With backlog 2 the kernel queues 3 connections (it refuses when the
	// queue holds more than the backlog) and drops the next SYN.
	l := listen(t, listener.Backlog(2), listener.MultipathTCP(false))
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		clients = append(clients, c)
	}
	waitFor(t, "3 queued connections", func() bool {
		n, err := l.QueueLen()
		require.NoError(t, err)
		return n == 3
	})
	d := net.Dialer{Timeout: 300 * time.Millisecond}
	c, err := d.Dial("tcp", l.Addr().String())
	if err == nil {
		c.Close()
	}
	assert.Error(t, err, "a fourth connection does not fit a backlog of 2")
	n, err := l.QueueLen()
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

// netstat reads a TcpExt counter from /proc/net/netstat of the namespace.
func netstat(t testing.TB, name string) int64 {
	t.Helper()
	v, err := netnstest.Netstat("TcpExt", name)
	require.NoError(t, err)
	return v
}

const tcpiOptSynData = 0x20 // TCPI_OPT_SYN_DATA: the SYN carried data that was accepted

func TestFastOpenAcceptsDataInTheSYN(t *testing.T) {
	if !netnstest.Enter(t, map[string]string{"net.ipv4.tcp_fastopen": "3"}) {
		return
	}
	l := listen(t, listener.FastOpen(16))
	readBack(t, l.TCPListener(), sockopt.FastOpen(16))
	d := &net.Dialer{Control: sockopt.Control(sockopt.FastOpenConnect(true))}

	exchange := func() (synData bool) {
		ch := make(chan accepted, 1)
		go func() {
			c, err := l.Accept()
			ch <- accepted{c, err}
		}()
		client, err := d.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer client.Close()
		_, err = client.Write([]byte("hello"))
		require.NoError(t, err)
		a := <-ch
		require.NoError(t, a.err)
		defer a.c.Close()
		buf := make([]byte, 5)
		_, err = io.ReadFull(a.c, buf)
		require.NoError(t, err)
		assert.Equal(t, "hello", string(buf))
		withFD(t, a.c.(*net.TCPConn), func(fd int) {
			ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
			require.NoError(t, err)
			synData = ti.Options&tcpiOptSynData != 0
		})
		return synData
	}
	before := netstat(t, "TCPFastOpenPassive")
	assert.False(t, exchange(), "the first connection only fetches a cookie")
	assert.True(t, exchange(), "with the cookie, the data rides in the SYN")
	assert.Equal(t, int64(1), netstat(t, "TCPFastOpenPassive")-before, "TcpExtTCPFastOpenPassive counts the accepted SYN data")
}
