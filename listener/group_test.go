package listener_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/internal/netnstest"
	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/sockopt"
)

func TestGroupListenersShareOneAddressAndEachAcceptsConns(t *testing.T) {
	cfg, err := listener.New(listener.ConnSockopt(sockopt.NoDelay(false)))
	require.NoError(t, err)
	g, err := cfg.ListenGroup(context.Background(), "tcp", "127.0.0.1:0", 3)
	require.NoError(t, err)
	ls := g.Listeners()
	require.Len(t, ls, 3)

	var mu sync.Mutex // guards counts, loopErrs
	counts := make([]int, len(ls))
	loopErrs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		assert.Equal(t, g.Addr().String(), l.Addr().String(), "one address for the group")
		readBack(t, l.TCPListener(), sockopt.ReusePort(true))
		wg.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					mu.Lock()
					loopErrs[i] = err
					mu.Unlock()
					return
				}
				readBack(t, c.(*net.TCPConn), sockopt.NoDelay(false))
				c.Close()
				mu.Lock()
				counts[i]++
				mu.Unlock()
			}
		})
	}
	everyLoopAccepted := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range counts {
			if n == 0 {
				return false
			}
		}
		return true
	}
	// The kernel hashes each connection to one listener; keep dialing
	// until every accept loop has had one.
	waitFor(t, "every listener of the group to accept", func() bool {
		c, err := net.Dial("tcp", g.Addr().String())
		require.NoError(t, err)
		c.Close()
		return everyLoopAccepted()
	})
	require.NoError(t, g.Close())
	wg.Wait()
	for i, err := range loopErrs {
		assert.ErrorIs(t, err, net.ErrClosed, "accept loop %d ends with the group closed", i)
	}
	assert.NoError(t, g.Close(), "closing twice is fine")
}

func TestListenGroupRefusesBadSizesAndReusePortOff(t *testing.T) {
	cfg, err := listener.New()
	require.NoError(t, err)
	for _, n := range []int{0, -1, 65536} {
		g, err := cfg.ListenGroup(context.Background(), "tcp", "127.0.0.1:0", n)
		assert.Nil(t, g)
		var op *net.OpError
		require.ErrorAs(t, err, &op, "n=%d: a bad argument is a *net.OpError, as Listen's bad network is", n)
		assert.Equal(t, "listen", op.Op)
		assert.Contains(t, err.Error(), fmt.Sprintf("ListenGroup n = %d", n), "the error names the argument")
	}
	_, err = cfg.ListenGroup(context.Background(), "udp", "127.0.0.1:0", 2)
	var unknown net.UnknownNetworkError
	assert.ErrorAs(t, err, &unknown, "the network is checked as by Listen")
	off, err := listener.New(listener.ReusePort(false))
	require.NoError(t, err)
	_, err = off.ListenGroup(context.Background(), "tcp", "127.0.0.1:0", 2)
	var oe *listener.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, listener.ReusePort(false), oe.Option)
}

func TestListenGroupClosesWhatItOpenedWhenOneListenFails(t *testing.T) {
	// A plain listener (no SO_REUSEPORT) holds the port: the group's first
	// listen fails and nothing stays open (goleak and the port check it).
	l := listen(t)
	cfg, err := listener.New()
	require.NoError(t, err)
	_, err = cfg.ListenGroup(context.Background(), "tcp", l.Addr().String(), 2)
	require.Error(t, err)
	var op *net.OpError
	assert.ErrorAs(t, err, &op)
}

func TestDrainHandsBackQueuedConnsWithTheirOptions(t *testing.T) {
	l := listen(t, listener.ConnSockopt(sockopt.NoDelay(false)),
		listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 33 * time.Second, Interval: 4 * time.Second, Count: 2}))
	for range 5 {
		c, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer c.Close()
	}
	waitFor(t, "5 queued connections", func() bool {
		n, err := l.QueueLen()
		require.NoError(t, err)
		return n == 5
	})
	conns, err := l.Drain()
	require.NoError(t, err)
	require.Len(t, conns, 5)
	for _, c := range conns {
		readBack(t, c, sockopt.NoDelay(false), sockopt.KeepAlive(true), sockopt.KeepAliveIdle(33*time.Second),
			sockopt.KeepAliveInterval(4*time.Second), sockopt.KeepAliveCount(2))
		c.Close()
	}
	_, err = l.Accept()
	assert.ErrorIs(t, err, net.ErrClosed, "a drained listener is closed")
}

func TestDrainWakesAnAcceptBlockedInAnotherGoroutine(t *testing.T) {
	l := listen(t)
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	conns, err := l.Drain()
	require.NoError(t, err)
	assert.Empty(t, conns)
	assert.ErrorIs(t, <-done, net.ErrClosed)
}

func TestMigrateRequestsReadsTheNamespaceSysctl(t *testing.T) {
	want, err := netnstest.Sysctl("net.ipv4.tcp_migrate_req")
	if err != nil {
		t.Skipf("no tcp_migrate_req here: %v", err)
	}
	got, err := listener.MigrateRequests()
	require.NoError(t, err)
	assert.Equal(t, want == "1", got)
}

// listenGroup opens a group of n on a loopback port, closed at cleanup.
func listenGroup(t *testing.T, n int) *listener.Group {
	t.Helper()
	cfg, err := listener.New()
	require.NoError(t, err)
	g, err := cfg.ListenGroup(context.Background(), "tcp", "127.0.0.1:0", n)
	require.NoError(t, err)
	t.Cleanup(func() { g.Close() })
	return g
}

// fillGroup dials n conns to a group of two with nobody accepting, and
// waits until all are queued. It returns the clients and how many the
// kernel queued on each listener.
func fillGroup(t *testing.T, g *listener.Group, n int) ([]net.Conn, [2]int) {
	t.Helper()
	ls := g.Listeners()
	clients := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", g.Addr().String())
		require.NoError(t, err)
		clients = append(clients, c)
		t.Cleanup(func() { c.Close() })
	}
	var q [2]int
	waitFor(t, "every connection queued", func() bool {
		for i := range q {
			var err error
			q[i], err = ls[i].QueueLen()
			require.NoError(t, err)
		}
		return q[0]+q[1] == n
	})
	require.Positive(t, q[0], "the hash put no connection on listener 0")
	require.Positive(t, q[1], "the hash put no connection on listener 1")
	return clients, q
}

// serveAndCount writes one byte on every server conn, then reads one from
// every client: a byte means served, ECONNRESET means reset.
func serveAndCount(t *testing.T, server []*net.TCPConn, clients []net.Conn) (served, reset int) {
	t.Helper()
	for _, c := range server {
		_, err := c.Write([]byte{'k'})
		require.NoError(t, err)
		defer c.Close()
	}
	for _, c := range clients {
		require.NoError(t, c.SetReadDeadline(deadline()))
		_, err := c.Read(make([]byte, 1))
		switch {
		case err == nil:
			served++
		case errors.Is(err, errReset):
			reset++
		default:
			t.Fatalf("client read: neither served nor reset: %v", err)
		}
	}
	return served, reset
}

func TestClosingOneListenerOfAGroupResetsItsQueueUnlessMigrateReqIsOne(t *testing.T) {
	const n = 200
	for _, migrate := range []string{"0", "1"} {
		t.Run("tcp_migrate_req="+migrate, func(t *testing.T) {
			if !netnstest.Enter(t, map[string]string{"net.ipv4.tcp_migrate_req": migrate}) {
				return
			}
			on, err := listener.MigrateRequests()
			require.NoError(t, err)
			assert.Equal(t, migrate == "1", on)

			g := listenGroup(t, 2)
			clients, q := fillGroup(t, g, n)

			ls := g.Listeners()
			require.NoError(t, ls[0].Close())
			conns, err := ls[1].Drain()
			require.NoError(t, err)
			served, reset := serveAndCount(t, conns, clients)
			t.Logf("tcp_migrate_req=%s: %d queued on the closed listener, %d served, %d reset", migrate, q[0], served, reset)
			if migrate == "1" {
				assert.Equal(t, n, served, "every queued conn moved to the other listener")
				assert.Zero(t, reset)
			} else {
				assert.Equal(t, q[0], reset, "the conns queued on the closed listener were reset")
				assert.Equal(t, q[1], served)
			}
		})
	}
}

func TestDrainRetiresAGroupListenerWithoutResetsEvenWithMigrateReqZero(t *testing.T) {
	if !netnstest.Enter(t, map[string]string{"net.ipv4.tcp_migrate_req": "0"}) {
		return
	}
	const n = 200
	g := listenGroup(t, 2)
	clients, q := fillGroup(t, g, n)
	ls := g.Listeners()
	first, err := ls[0].Drain()
	require.NoError(t, err)
	assert.Len(t, first, q[0])
	rest, err := ls[1].Drain()
	require.NoError(t, err)
	served, reset := serveAndCount(t, append(first, rest...), clients)
	assert.Equal(t, n, served)
	assert.Zero(t, reset, "no queued connection was reset")
}
