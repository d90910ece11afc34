//go:build unix

package pool_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/pool"
)

// oneIdleConnClosedByThePeer returns a pool built with opts and a fake
// clock, holding one idle conn that the server has closed (FIN, seen by
// the client's socket), and that conn.
func oneIdleConnClosedByThePeer(t *testing.T, opts ...pool.ConnOption) (*pool.ConnPool, *fakeClock, net.Conn) {
	t.Helper()
	s := startServer(t, "127.0.0.1:0", nil)
	clock := newFakeClock()
	cp := newConnPool(t, nil, s.addr(), append(opts, pool.Clock(clock.Now))...)
	conns := warm(t, cp, 1)
	eventually(t, "the server accepted", func() bool { return s.accepted() == 1 })
	_, raw := s.conn(0)
	require.NoError(t, raw.CloseWrite())
	eventually(t, "the client sees the FIN", func() bool { return pool.Probe(conns[0]) != nil })
	return cp, clock, conns[0]
}

func TestALivenessThresholdOfZeroMeansTheDefaultOfOneSecond(t *testing.T) {
	cp, clock, dead := oneIdleConnClosedByThePeer(t, pool.MaxSize(1), pool.LivenessCheck(0))

	clock.Advance(time.Second - time.Millisecond)
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	assert.Same(t, dead, c.NetConn(), "quiet for less than the default threshold: handed out unchecked, dead as it is")
	assert.Equal(t, uint64(0), cp.Stats().Closed.Health)
	require.NoError(t, c.Close(), "back to the pool: a release proves nothing")

	expectReplaced(t, cp, clock, dead) // quiet for more than 1s: checked, found dead
}

func TestEveryCheckoutChecksAConnQuietForNoTimeAtAll(t *testing.T) {
	for name, opts := range map[string][]pool.ConnOption{
		"no other option": {pool.LivenessCheck(pool.EveryCheckout)},
		// MaxIdleTime makes the pool read the clock, which does not move:
		// the conn has been quiet for 0 by it.
		"the pool reads the clock": {pool.LivenessCheck(pool.EveryCheckout), pool.MaxIdleTime(time.Hour)},
		"and has a health check with a threshold": {pool.LivenessCheck(pool.EveryCheckout),
			pool.HealthCheck(time.Minute, func(context.Context, net.Conn) error { return nil })},
	} {
		t.Run(name, func(t *testing.T) {
			cp, _, dead := oneIdleConnClosedByThePeer(t, append(opts, pool.MaxSize(1))...)
			c, err := cp.Get(context.Background())
			require.NoError(t, err)
			assert.NotSame(t, dead, c.NetConn(), "the dead conn was checked within the same tick of the clock")
			assert.NoError(t, roundTrip(c))
			require.NoError(t, c.Close())
			assert.Equal(t, uint64(1), cp.Stats().Closed.Health)
		})
	}
}

func TestANegativeLivenessThresholdTurnsTheCheckOff(t *testing.T) {
	cp, clock, dead := oneIdleConnClosedByThePeer(t, pool.MaxSize(1), pool.LivenessCheck(-time.Nanosecond))
	clock.Advance(time.Hour)
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	assert.Same(t, dead, c.NetConn(), "never checked")
	c.MarkUnusable()
	require.NoError(t, c.Close())
	assert.Equal(t, uint64(0), cp.Stats().Closed.Health)
}

func TestAHealthCheckThresholdOfZeroOrEveryCheckoutChecksEveryCheckoutWithinOneTick(t *testing.T) {
	for _, after := range []time.Duration{0, pool.EveryCheckout} {
		t.Run(after.String(), func(t *testing.T) {
			clock := newFakeClock() // never moves: every resource is quiet for 0
			f := &factory{}
			var checks atomic.Int32
			check := func(context.Context, *res) error { checks.Add(1); return nil }
			p := newPool(t, f, pool.MaxSize(1), pool.MaxIdleTime(time.Hour), pool.HealthCheck(after, check), pool.Clock(clock.Now))
			for range 3 {
				r, err := p.Get(context.Background())
				require.NoError(t, err)
				r.Release()
			}
			assert.Equal(t, int32(3), checks.Load(), "the dial's checkout and both reuses")
		})
	}
}

func TestLivenessCheckOptionsPrintAsWritten(t *testing.T) {
	assert.Equal(t, "pool.LivenessCheck(0s)", pool.LivenessCheck(0).String())
	assert.Equal(t, "pool.LivenessCheck(1ns)", pool.LivenessCheck(pool.EveryCheckout).String())
	assert.Equal(t, "pool.LivenessCheck(-1s)", pool.LivenessCheck(-time.Second).String())
}
