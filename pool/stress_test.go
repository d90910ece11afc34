package pool_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/pool"
)

// stressRes is a resource that catches double hand-outs and double closes.
type stressRes struct {
	held   atomic.Int32
	closed atomic.Int32
}

func TestRandomOperationsWithTinyDeadlinesKeepEveryInvariant(t *testing.T) {
	stress(t, false)
}

func TestClosingThePoolInTheMiddleOfRandomOperationsClosesEverythingOnce(t *testing.T) {
	stress(t, true)
}

// stress runs random operations on a small pool from several goroutines
// and checks the invariants; closeEarly closes the pool while they run.
func stress(t *testing.T, closeEarly bool) {
	const (
		maxSize = 4
		workers = 8
		ops     = 1500
	)
	var (
		mu        sync.Mutex
		all       []*stressRes
		live      atomic.Int32 // dialed and not yet closed
		violation atomic.Pointer[string]
	)
	fail := func(s string) { violation.CompareAndSwap(nil, &s) }
	errDial := errors.New("dial refused")
	dial := func(ctx context.Context) (*stressRes, error) {
		if rand.IntN(10) == 0 {
			return nil, errDial
		}
		if rand.IntN(4) == 0 {
			runtime.Gosched()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r := &stressRes{}
		if live.Add(1) > maxSize {
			fail("more than MaxSize resources open at once")
		}
		mu.Lock()
		all = append(all, r)
		mu.Unlock()
		return r, nil
	}
	closeFn := func(r *stressRes) error {
		if r.held.Load() != 0 {
			fail("closed while held")
		}
		if r.closed.Add(1) != 1 {
			fail("closed twice")
		}
		live.Add(-1)
		return nil
	}
	errUnhealthy := errors.New("unhealthy")
	check := func(context.Context, *stressRes) error {
		if rand.IntN(20) == 0 {
			return errUnhealthy
		}
		return nil
	}
	p, err := pool.New(dial, closeFn, pool.MaxSize(maxSize), pool.MinIdle(1), pool.MaxIdle(3),
		pool.MaxConcurrentDials(2), pool.MaxIdleTime(3*time.Millisecond), pool.MaxLifetime(8*time.Millisecond),
		pool.HealthCheck(pool.EveryCheckout, check), pool.DialBackoff(100*time.Microsecond, time.Millisecond))
	require.NoError(t, err)

	var calls, successes atomic.Uint64
	var wg sync.WaitGroup
	closeErr := make(chan error, 1)
	if closeEarly {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for calls.Load() < workers*ops/3 && violation.Load() == nil {
				runtime.Gosched()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			closeErr <- p.Shutdown(ctx)
		}()
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range ops {
				if violation.Load() != nil {
					return
				}
				var r pool.Resource[*stressRes]
				var err error
				calls.Add(1)
				switch n := rand.IntN(100); {
				case n < 2:
					p.Reset()
					calls.Add(^uint64(0))
					continue
				case n < 4:
					if err := p.CheckInvariantsNow(); err != nil {
						fail(err.Error())
					}
					calls.Add(^uint64(0))
					continue
				case n < 15:
					r, err = p.TryGet(context.Background())
				case n < 20:
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					r, err = p.Get(ctx)
				default:
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(500))*time.Microsecond)
					r, err = p.Get(ctx)
					cancel()
				}
				if err != nil {
					if closeEarly && errors.Is(err, pool.ErrClosed) {
						return
					}
					if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) &&
						!errors.Is(err, errDial) && !errors.Is(err, pool.ErrUnavailable) &&
						!errors.Is(err, errUnhealthy) { // a fresh resource failed its check
						fail("unexpected error: " + err.Error())
					}
					continue
				}
				successes.Add(1)
				v := r.Value()
				if !v.held.CompareAndSwap(0, 1) {
					fail("handed out while held by another caller")
				}
				if v.closed.Load() != 0 {
					fail("handed out after being closed")
				}
				if rand.IntN(3) == 0 {
					runtime.Gosched()
				}
				v.held.Store(0)
				if rand.IntN(8) == 0 {
					_ = r.Discard()
				} else {
					r.Release()
				}
			}
		}()
	}
	wg.Wait()
	if v := violation.Load(); v != nil {
		t.Fatal(*v)
	}
	require.NoError(t, p.CheckInvariants())
	if closeEarly {
		require.NoError(t, <-closeErr, "Close under load")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, p.Shutdown(ctx))
	if v := violation.Load(); v != nil {
		t.Fatal(*v)
	}
	assert.Equal(t, int32(0), live.Load(), "every resource dialed was closed")
	mu.Lock()
	for i, r := range all {
		assert.Equal(t, int32(1), r.closed.Load(), "resource %d closed exactly once", i)
	}
	n := len(all)
	mu.Unlock()

	s := p.Stats()
	c := s.Closed
	closed := c.Idle + c.Lifetime + c.Health + c.Discarded + c.Excess + c.Reset + c.PoolClosed
	assert.Equal(t, uint64(n), closed, "every resource closed is counted once, by reason: %+v", c)
	assert.Equal(t, s.Dials-s.DialErrors, uint64(n), "dials conserved: %+v", s)
	assert.Equal(t, calls.Load(), s.Gets, "every Get and TryGet counted")
	assert.LessOrEqual(t, s.Hits+s.Misses, s.Gets)
	assert.Equal(t, successes.Load(), s.Hits+s.Waits, "every resource handed out was a hit or a wait: %+v", s)
	assert.Zero(t, s.InUse+s.Idle+s.Dialing+s.Waiting, "nothing left: %+v", s)
	t.Logf("%d resources; stats %+v", n, s)
}
