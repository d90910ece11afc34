//go:build linux

package dialer_test

import (
	"context"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/internal/netnstest"
	"github.com/nettune/nettune/sockopt"
)

// fastOpenEcho listens on 127.0.0.1 with a Fast Open queue and echoes the
// first message of every connection. Stop it with the returned function,
// which waits for its goroutines.
func fastOpenEcho(t *testing.T) (*net.TCPListener, func()) {
	t.Helper()
	lc := net.ListenConfig{Control: sockopt.ListenControl(sockopt.FastOpen(16))}
	lc.SetMultipathTCP(false)
	l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	ln := l.(*net.TCPListener)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(wait))
				buf := make([]byte, 64)
				n, err := c.Read(buf)
				if err == nil {
					c.Write(buf[:n])
				}
			})
		}
	})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ln.Close()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return ln, stop
}

// pingPong sends "ping" on c and reads the echo.
func pingPong(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(wait)))
	_, err := c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
}

// netstat reads one counter of /proc/net/netstat in the current network
// namespace.
func netstat(t *testing.T, group, name string) int64 {
	t.Helper()
	v, err := netnstest.Netstat(group, name)
	require.NoError(t, err)
	return v
}

func TestFastOpenSendsTheSecondConnectionsDataInTheSYN(t *testing.T) {
	if !netnstest.Enter(t, map[string]string{"net.ipv4.tcp_fastopen": "3"}) {
		return
	}
	ln, _ := fastOpenEcho(t)
	d, err := dialer.New(dialer.FastOpen(true), dialer.Timeout(wait))
	require.NoError(t, err)

	first := dialTCP(t, d, ln)
	v, err := unix.GetsockoptInt(fd(t, first), unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT)
	require.NoError(t, err)
	assert.Equal(t, 1, v, "TCP_FASTOPEN_CONNECT is set on the dialed socket")
	pingPong(t, first)
	info, err := sockopt.ReadTCPInfo(first)
	require.NoError(t, err)
	assert.Zero(t, info.Options&sockopt.OptSYNData, "no cookie yet: an ordinary handshake (%v)", info.Options)
	passive := netstat(t, "TcpExt", "TCPFastOpenPassive")

	second := dialTCP(t, d, ln)
	pingPong(t, second)
	info, err = sockopt.ReadTCPInfo(second)
	require.NoError(t, err)
	assert.NotZero(t, info.Options&sockopt.OptSYNData, "with the cookie, the data rode in the SYN (%v)", info.Options)
	assert.Greater(t, netstat(t, "TcpExt", "TCPFastOpenPassive"), passive, "the server accepted a Fast Open SYN")
}

func TestWithACachedCookieADialToADeadPortSucceedsAndTheErrorComesLater(t *testing.T) {
	if !netnstest.Enter(t, map[string]string{"net.ipv4.tcp_fastopen": "3"}) {
		return
	}
	ln, stop := fastOpenEcho(t)
	var rec recorder
	d, err := dialer.New(dialer.FastOpen(true), dialer.Timeout(wait), dialer.RecordConnectTime(&rec))
	require.NoError(t, err)
	pingPong(t, dialTCP(t, d, ln)) // the kernel now holds a cookie for 127.0.0.1
	addr := ln.Addr().String()
	stop() // nothing listens there any more

	c, err := d.DialContext(context.Background(), "tcp", addr)
	require.NoError(t, err, "the trap: the dial succeeds without a packet sent")
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(wait)))
	_, werr := c.Write([]byte("ping"))
	_, rerr := c.Read(make([]byte, 4))
	assert.NoError(t, werr, "the first write only queues the SYN with its data")
	assert.ErrorIs(t, rerr, syscall.ECONNREFUSED, "the refusal arrives on the first Read")
	assert.Len(t, rec.recorded(), 2, "both dials count as connected")

	plain, err := dialer.New(dialer.Timeout(wait))
	require.NoError(t, err)
	_, err = plain.DialContext(context.Background(), "tcp", addr)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "without Fast Open the dial itself fails")
}
