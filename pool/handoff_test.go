//go:build unix

package pool_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/pool"
)

// heldWhileAnotherWaits sets up the race of issue 9: a pool of one conn,
// held by the test (after one round trip) while a second Get waits for it.
// It returns the held conn, the server's side of it, and the waiting Get's
// result. afterDial, if not nil, runs between the dial and the round trip.
func heldWhileAnotherWaits(t *testing.T, cp *pool.ConnPool, s *server, afterDial func()) (*pool.Conn, *net.TCPConn, <-chan getResult) {
	t.Helper()
	held, err := cp.Get(context.Background())
	require.NoError(t, err)
	if afterDial != nil {
		afterDial()
	}
	require.NoError(t, roundTrip(held))
	eventually(t, "the server accepted", func() bool { return s.accepted() == 1 })
	_, raw := s.conn(0)

	got := make(chan getResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := cp.Get(ctx)
		got <- getResult{c, err}
	}()
	eventually(t, "the second Get waits", func() bool { return cp.Stats().Waiting == 1 })
	return held, raw, got
}

type getResult struct {
	c   *pool.Conn
	err error
}

// expectNotHandedOver releases held, which the client can already tell is
// dead, and checks that the waiting Get gets a working conn instead.
func expectNotHandedOver(t *testing.T, cp *pool.ConnPool, held *pool.Conn, got <-chan getResult) {
	t.Helper()
	dead := held.NetConn()
	require.NoError(t, held.Close(), "no Read or Write failed: the pool takes it back")
	r := <-got
	require.NoError(t, r.err)
	assert.NotSame(t, dead, r.c.NetConn(), "the dead conn was handed to the waiting Get")
	assert.NoError(t, roundTrip(r.c), "the conn handed over works, with no stale bytes")
	require.NoError(t, r.c.Close())
	s := cp.Stats()
	assert.Equal(t, uint64(1), s.Closed.Health, "the dead conn failed the liveness check: %+v", s)
	assert.Equal(t, uint64(2), s.Waits, "the second Get waited (for the release, then for a dial): %+v", s)
}

func TestAConnResetWhileHeldIsNotHandedToAWaitingGet(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1), pool.LivenessCheck(pool.EveryCheckout))
	held, raw, got := heldWhileAnotherWaits(t, cp, s, nil)

	require.NoError(t, raw.SetLinger(0))
	require.NoError(t, raw.Close()) // RST
	eventually(t, "the client sees the reset", func() bool { return pool.Probe(held.NetConn()) != nil })
	expectNotHandedOver(t, cp, held, got)
}

func TestAConnClosedByThePeerWhileHeldIsNotHandedToAWaitingGet(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1), pool.LivenessCheck(pool.EveryCheckout))
	held, raw, got := heldWhileAnotherWaits(t, cp, s, nil)

	require.NoError(t, raw.CloseWrite()) // FIN
	eventually(t, "the client sees the FIN", func() bool { return pool.Probe(held.NetConn()) != nil })
	expectNotHandedOver(t, cp, held, got)
}

func TestAConnSentUnsolicitedBytesWhileHeldIsNotHandedToAWaitingGet(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1), pool.LivenessCheck(pool.EveryCheckout))
	held, raw, got := heldWhileAnotherWaits(t, cp, s, nil)

	_, err := raw.Write([]byte("ping\n")) // what the next request would read as its answer
	require.NoError(t, err)
	eventually(t, "the bytes arrive", func() bool { return pool.PendingBytes(held.NetConn()) > 0 })
	expectNotHandedOver(t, cp, held, got)
}

// The threshold counts from when the conn last proved alive (its dial, a
// Read that returned data, a passed check), not from its release: a conn
// held quiet past the threshold is checked when it is handed over.
func TestAConnHeldQuietPastTheThresholdIsCheckedWhenHandedOver(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	clock := newFakeClock()
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1), pool.LivenessCheck(time.Second), pool.Clock(clock.Now))
	held, raw, got := heldWhileAnotherWaits(t, cp, s, nil)

	require.NoError(t, raw.SetLinger(0))
	require.NoError(t, raw.Close())
	eventually(t, "the client sees the reset", func() bool { return pool.Probe(held.NetConn()) != nil })
	clock.Advance(2 * time.Second) // held, with no Read, for longer than the threshold
	expectNotHandedOver(t, cp, held, got)
}

// The other side of the same rule, and what keeps the hand-off fast: a
// conn that proved alive within the threshold is handed over without a
// system call, so a death the pool has not looked for goes unseen.
func TestAConnThatReadWithinTheThresholdIsHandedOverUnchecked(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	clock := newFakeClock()
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1), pool.LivenessCheck(time.Second), pool.Clock(clock.Now))
	// Dialed long ago, but its round trip proves it alive now.
	held, raw, got := heldWhileAnotherWaits(t, cp, s, func() { clock.Advance(2 * time.Second) })

	require.NoError(t, raw.CloseWrite())
	eventually(t, "the client sees the FIN", func() bool { return pool.Probe(held.NetConn()) != nil })
	require.NoError(t, held.Close())
	r := <-got
	require.NoError(t, r.err)
	assert.Same(t, held.NetConn(), r.c.NetConn(), "handed over unchecked")
	r.c.MarkUnusable()
	require.NoError(t, r.c.Close())
	assert.Zero(t, cp.Stats().Closed.Health)
}

// A dial that fails its liveness check is a failed Get, not a retry: a
// server that closes every conn it accepts must not keep a Get dialing.
func TestAFreshConnThatFailsTheCheckFailsTheGet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	// The dial returns only once the client can tell the conn is dead.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		s, err := ln.Accept()
		if err != nil {
			c.Close()
			return nil, err
		}
		s.Close()
		for pool.Probe(c) == nil {
			if ctx.Err() != nil {
				c.Close()
				return nil, ctx.Err()
			}
			time.Sleep(time.Millisecond) // poll interval, bounded by ctx
		}
		return c, nil
	}
	cp := newConnPool(t, dial, ln.Addr().String(), pool.MaxSize(1), pool.LivenessCheck(pool.EveryCheckout),
		pool.DialTimeout(20*time.Second))
	c, err := cp.Get(context.Background())
	if !assert.ErrorIs(t, err, pool.ErrPeerClosed, "the dead conn failed the Get") {
		c.MarkUnusable()
		_ = c.Close()
	}
	assert.Equal(t, uint64(1), cp.Stats().Closed.Health)
}

// Item 2 of issue 9: the README's quick start wrote a request and returned
// the conn without reading the reply; the next user read that reply as its
// own answer.
func TestAConnReturnedWithItsReplyUnreadIsNotHandedOut(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	clock := newFakeClock()
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1), pool.LivenessCheck(time.Second), pool.Clock(clock.Now))
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	_, err = c.Write([]byte("PING\n"))
	require.NoError(t, err)
	raw := c.NetConn()
	require.NoError(t, c.Close()) // the reply is not read
	eventually(t, "the reply arrives", func() bool { return pool.PendingBytes(raw) > 0 })

	c, err = cp.Get(context.Background())
	require.NoError(t, err)
	assert.NotSame(t, raw, c.NetConn(), "the conn with an unread reply was handed out")
	assert.NoError(t, roundTrip(c), "the next request reads its own answer")
	require.NoError(t, c.Close())
	assert.Equal(t, uint64(1), cp.Stats().Closed.Health)
}

// The suspicion costs a peek, not the conn: a conn returned after a Write
// that has no reply (or whose reply is still on its way) is kept.
func TestAConnReturnedAfterAWriteWithNothingToReadIsKept(t *testing.T) {
	s := startServerWith(t, "127.0.0.1:0", nil, true) // never answers
	clock := newFakeClock()
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1), pool.LivenessCheck(time.Second), pool.Clock(clock.Now))
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	_, err = c.Write([]byte("fire and forget\n"))
	require.NoError(t, err)
	raw := c.NetConn()
	require.NoError(t, c.Close())

	c, err = cp.Get(context.Background())
	require.NoError(t, err)
	assert.Same(t, raw, c.NetConn(), "nothing was waiting: kept")
	require.NoError(t, c.Close())
	assert.Zero(t, cp.Stats().Closed.Health)
}

// The waiting Get keeps its place: when the conn handed to it is dead, it
// is served before Gets that queued after it.
func TestAGetHandedADeadConnKeepsItsPlaceInTheQueue(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1), pool.LivenessCheck(pool.EveryCheckout))
	held, raw, first := heldWhileAnotherWaits(t, cp, s, nil)
	second := make(chan getResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := cp.Get(ctx)
		second <- getResult{c, err}
	}()
	eventually(t, "the third Get waits too", func() bool { return cp.Stats().Waiting == 2 })

	require.NoError(t, raw.SetLinger(0))
	require.NoError(t, raw.Close())
	eventually(t, "the client sees the reset", func() bool { return pool.Probe(held.NetConn()) != nil })
	require.NoError(t, held.Close())
	r := <-first
	require.NoError(t, r.err, "the first waiter is served first")
	assert.NoError(t, roundTrip(r.c))
	select {
	case r2 := <-second:
		t.Fatalf("the later waiter was served first: %v", r2.err)
	default:
	}
	require.NoError(t, r.c.Close())
	r2 := <-second
	require.NoError(t, r2.err)
	require.NoError(t, r2.c.Close())
}
