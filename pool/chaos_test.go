//go:build unix

package pool_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/pool"
)

// The class test for issue 9's first item: whatever path a conn takes to a
// Get (the idle set, a hand-off on release, a dial passed on to another
// waiter, a Get that gave up passing its conn on, TryGet, MinIdle), the
// pool never hands out a conn that the client could already tell was dead
// and that the liveness check was due to look at.
//
// Conns die in two ways. Known deaths: a worker holding a conn has the
// server reset it, close it or write unrequested bytes on it, waits until
// its own socket shows that, and returns the conn as if nothing happened;
// with EveryCheckout a dial can also return a conn that is dead on
// arrival. Any later Get returning one of those conns is counted. Noise:
// workers also have the server kill other conns at random moments; those
// may be in use, so the workers tolerate the failures, and they are not
// counted.
func TestUnderChaosNoConnKnownToBeDeadIsHandedOut(t *testing.T) {
	t.Run("threshold=EveryCheckout", func(t *testing.T) { chaos(t, pool.EveryCheckout) })
	t.Run("threshold=1s", func(t *testing.T) { chaos(t, time.Second) })
}

func chaos(t *testing.T, threshold time.Duration) {
	const (
		maxSize = 3
		workers = 12
		ops     = 120
	)
	s := startServer(t, "127.0.0.1:0", nil)
	var (
		known      sync.Map // net.Conn (client side) → struct{}: known dead
		nKnown     atomic.Int64
		handedDead atomic.Int64
		noiseErrs  atomic.Int64
		freshDead  atomic.Int64
	)
	clock := newFakeClock() // moved only by the workers, for a threshold above EveryCheckout
	opts := []pool.ConnOption{pool.MaxSize(maxSize), pool.MinIdle(1), pool.LivenessCheck(threshold),
		pool.DialBackoff(-1, 0)}
	if threshold > pool.EveryCheckout {
		opts = append(opts, pool.Clock(clock.Now))
	}

	var d net.Dialer
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		// A dial result is checked only with EveryCheckout: a dial
		// proves the conn alive.
		if err != nil || threshold > pool.EveryCheckout || rand.IntN(20) != 0 {
			return c, err
		}
		if !killAndWait(t, s, c, rand.IntN(3)) {
			return c, nil
		}
		known.Store(c, struct{}{})
		nKnown.Add(1)
		return c, nil
	}
	cp := newConnPool(t, dial, s.addr(), opts...)

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ops {
				var c *pool.Conn
				var err error
				switch n := rand.IntN(100); {
				case n < 10:
					c, err = cp.TryGet(context.Background())
				case n < 20:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(2000))*time.Microsecond)
					c, err = cp.Get(ctx)
					cancel()
				default:
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					c, err = cp.Get(ctx)
					cancel()
				}
				if err != nil {
					switch {
					case errors.Is(err, context.DeadlineExceeded), errors.Is(err, pool.ErrUnavailable):
					case errors.Is(err, pool.ErrPeerClosed), errors.Is(err, syscall.ECONNRESET),
						errors.Is(err, pool.ErrUnexpectedData):
						freshDead.Add(1) // a dial dead on arrival failed its Get
					default:
						t.Errorf("unexpected Get error: %v", err)
						return
					}
					continue
				}
				raw := c.NetConn()
				if _, dead := known.Load(raw); dead {
					handedDead.Add(1)
				}
				switch n := rand.IntN(100); {
				case n < 15:
					if killAndWait(t, s, raw, rand.IntN(3)) {
						known.Store(raw, struct{}{})
						nKnown.Add(1)
						// Held past the threshold since its last Read.
						clock.Advance(2 * threshold)
					}
				case n < 18:
					killRandom(s, rand.IntN(3))
					fallthrough
				default:
					if rand.IntN(4) == 0 {
						runtime.Gosched()
					}
					if err := roundTrip(c); err != nil {
						noiseErrs.Add(1)
						c.MarkUnusable()
					}
				}
				if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
					t.Errorf("Close: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, cp.Underlying().CheckInvariants())
	st := cp.Stats()
	t.Logf("%d conns known dead, %d handed out dead, %d dead on arrival failed their Get, %d noise errors; %+v",
		nKnown.Load(), handedDead.Load(), freshDead.Load(), noiseErrs.Load(), st)
	assert.Zero(t, handedDead.Load(), "conns handed out that the client knew were dead")
	assert.Greater(t, nKnown.Load(), int64(workers), "the test killed conns")
	assert.Greater(t, st.Closed.Health, uint64(0), "the liveness check found them")
}

// killAndWait has the server end the conn whose client side is c (how: 0
// reset, 1 close, 2 unrequested bytes) and waits until the client's
// socket shows it. It reports whether it could.
func killAndWait(t *testing.T, s *server, c net.Conn, how int) bool {
	local := c.LocalAddr().String()
	var srv *net.TCPConn
	if !waitFor(func() bool { srv = s.byRemote(local); return srv != nil }) {
		t.Errorf("the server never accepted %s", local)
		return false
	}
	kill(srv, how)
	if !waitFor(func() bool { return pool.Probe(c) != nil }) {
		t.Errorf("the client never saw its conn %s die", local)
		return false
	}
	return true
}

// killRandom has the server end one of its conns, whichever.
func killRandom(s *server, how int) {
	s.mu.Lock()
	var srv *net.TCPConn
	if len(s.raw) > 0 {
		srv = s.raw[rand.IntN(len(s.raw))]
	}
	s.mu.Unlock()
	if srv != nil {
		kill(srv, how)
	}
}

func kill(srv *net.TCPConn, how int) {
	switch how {
	case 0:
		_ = srv.SetLinger(0)
		_ = srv.Close()
	case 1:
		_ = srv.CloseWrite()
	default:
		_, _ = srv.Write([]byte("unrequested\n"))
	}
}

// byRemote returns the server's side of the conn from addr, or nil: the
// latest accepted, since on loopback the kernel reuses a port in
// TIME_WAIT at once (net.ipv4.tcp_tw_reuse=2, the default), and s.raw
// keeps the conns closed before. (Searching from the front found such an
// old conn: killing it left the live one alone, and a run of -count=20
// failed with "the client never saw its conn die".)
func (s *server) byRemote(addr string) *net.TCPConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.raw) - 1; i >= 0; i-- {
		if c := s.raw[i]; c.RemoteAddr().String() == addr {
			return c
		}
	}
	return nil
}

// waitFor is eventually for goroutines other than the test's: it reports
// whether cond held before a generous deadline.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Microsecond) // poll interval, not a wait for the condition
	}
	return true
}
