package pool_test

import (
	"context"
	"errors"
	"fmt"
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

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// res is a test resource that knows how often it was closed.
type res struct {
	id     int
	closed atomic.Int32
}

// factory dials res values and records them.
type factory struct {
	mu     sync.Mutex
	all    []*res
	fail   atomic.Pointer[error] // when set, dials fail with it
	gate   chan struct{}         // when not nil, dials wait for it (or ctx)
	dialed atomic.Int32
}

func (f *factory) dial(ctx context.Context) (*res, error) {
	f.dialed.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if e := f.fail.Load(); e != nil {
		return nil, *e
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &res{id: len(f.all)}
	f.all = append(f.all, r)
	return r, nil
}

func (f *factory) close(r *res) error {
	r.closed.Add(1)
	return nil
}

func (f *factory) setFail(err error) {
	if err == nil {
		f.fail.Store(nil)
		return
	}
	f.fail.Store(&err)
}

func (f *factory) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.all)
}

// closedOnce checks every dialed resource was closed exactly once.
func (f *factory) closedOnce(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.all {
		assert.Equal(t, int32(1), r.closed.Load(), "resource %d closed %d times", r.id, r.closed.Load())
	}
}

func newPool(t testing.TB, f *factory, opts ...pool.Option) *pool.Pool[*res] {
	t.Helper()
	p, err := pool.New(f.dial, f.close, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, p.Shutdown(ctx), "closing the pool")
		assert.NoError(t, p.CheckInvariants())
	})
	return p
}

// eventually waits for cond with a generous deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond) // poll interval, not a wait for the condition
	}
}

func TestGetReusesTheMostRecentlyReleasedResource(t *testing.T) {
	// One P: the order holds per P (each has its own slot in front of the
	// stack), and a goroutine can move between Ps at any time.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(4))
	ctx := context.Background()
	a, err := p.Get(ctx)
	require.NoError(t, err)
	b, err := p.Get(ctx)
	require.NoError(t, err)
	a.Release()
	b.Release()
	c, err := p.Get(ctx)
	require.NoError(t, err)
	assert.Same(t, b.Value(), c.Value(), "the last released resource comes first")
	c.Release()
	s := p.Stats()
	assert.Equal(t, uint64(3), s.Gets)
	assert.Equal(t, uint64(1), s.Hits)
	assert.Equal(t, uint64(2), s.Misses)
	assert.Equal(t, uint64(2), s.Dials)
	assert.Equal(t, 2, s.Idle)
	assert.Equal(t, 0, s.InUse)
}

func TestWaitersAreServedInArrivalOrder(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(1))
	ctx := context.Background()
	held, err := p.Get(ctx)
	require.NoError(t, err)

	const n = 5
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.Get(ctx)
			if !assert.NoError(t, err) {
				return
			}
			order <- i
			r.Release()
		}()
		eventually(t, "the waiter queued", func() bool { return p.Stats().Waiting == i+1 })
	}
	held.Release()
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		assert.Equal(t, want, got, "waiters served in FIFO order")
		want++
	}
	assert.Equal(t, 1, f.count(), "one resource served everyone")
	assert.Equal(t, uint64(n+1), p.Stats().Waits, "the first Get waited for the dial, the rest for a release")
}

func TestAGetWithAnAlreadyCancelledContextFailsWithoutTakingAResource(t *testing.T) {
	f := &factory{}
	p := newPool(t, f)
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	r.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Get(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	s := p.Stats()
	assert.Equal(t, 1, s.Idle, "the idle resource stays")
	assert.Equal(t, uint64(1), s.Timeouts)
}

func TestADialStartedForACallerWhoGaveUpServesTheNextWaiter(t *testing.T) {
	f := &factory{gate: make(chan struct{})}
	p := newPool(t, f, pool.MaxSize(1))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Get(ctx)
		errc <- err
	}()
	eventually(t, "the dial started", func() bool { return f.dialed.Load() == 1 })
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)

	got := make(chan *res, 1)
	go func() {
		r, err := p.Get(context.Background())
		if assert.NoError(t, err) {
			got <- r.Value()
			r.Release()
		}
		close(got)
	}()
	eventually(t, "the second caller waits", func() bool { return p.Stats().Waiting == 1 })
	close(f.gate)
	v := <-got
	require.NotNil(t, v)
	assert.Equal(t, 0, v.id, "the first caller's dial served the second")
	assert.Equal(t, uint64(1), p.Stats().Dials, "no second dial")
}

func TestADialOutlivingItsCallerGoesToTheIdleSet(t *testing.T) {
	f := &factory{gate: make(chan struct{})}
	p := newPool(t, f, pool.MaxSize(2))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := p.Get(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(f.gate)
	eventually(t, "the dial lands in the idle set", func() bool { return p.Stats().Idle == 1 })
	assert.Equal(t, uint64(1), p.Stats().Timeouts)
}

var errRefused = syscall.ECONNREFUSED

func TestDialFailuresPauseDialingAndAProbeResumesIt(t *testing.T) {
	clock := newFakeClock()
	f := &factory{}
	f.setFail(errRefused)
	p := newPool(t, f, pool.MaxSize(4), pool.DialBackoff(time.Second, 4*time.Second), pool.Clock(clock.Now))
	ctx := context.Background()

	_, err := p.Get(ctx)
	require.ErrorIs(t, err, errRefused, "the first failure is the dial's own error")
	var be *pool.BackoffError
	assert.False(t, errors.As(err, &be), "the first failure is not a pause")

	_, err = p.Get(ctx)
	require.ErrorAs(t, err, &be, "dialing is paused")
	assert.ErrorIs(t, err, pool.ErrBackoff)
	assert.ErrorIs(t, err, errRefused, "the pause names the last dial error")
	assert.Equal(t, 1, be.Failures)
	assert.Equal(t, int32(1), f.dialed.Load(), "no dial while paused")

	clock.Advance(2 * time.Second) // past the first pause (1s ±25%)
	_, err = p.Get(ctx)
	require.ErrorIs(t, err, errRefused, "the probe dials and fails")
	assert.Equal(t, int32(2), f.dialed.Load())
	_, err = p.Get(ctx)
	require.ErrorAs(t, err, &be)
	assert.Equal(t, 2, be.Failures)
	assert.Greater(t, be.Retry, time.Second, "the second pause is longer")

	f.setFail(nil) // the server is back
	clock.Advance(3 * time.Second)
	r, err := p.Get(ctx)
	require.NoError(t, err, "the probe succeeds")
	// Dialing is normal again: several dials at once.
	r2, err := p.Get(ctx)
	require.NoError(t, err)
	r3, err := p.Get(ctx)
	require.NoError(t, err)
	r.Release()
	r2.Release()
	r3.Release()
	assert.Equal(t, uint64(2), p.Stats().DialErrors)
}

func TestWhilePausedAGetWaitsForAResourceInUse(t *testing.T) {
	clock := newFakeClock()
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(2), pool.Clock(clock.Now))
	ctx := context.Background()
	held, err := p.Get(ctx)
	require.NoError(t, err)
	f.setFail(errRefused)
	_, err = p.Get(ctx)
	require.ErrorIs(t, err, errRefused)

	got := make(chan error, 1)
	go func() {
		r, err := p.Get(ctx)
		if err == nil {
			r.Release()
		}
		got <- err
	}()
	eventually(t, "the Get waits", func() bool { return p.Stats().Waiting == 1 })
	held.Release()
	assert.NoError(t, <-got, "the released resource served the waiter")
}

func TestMaxIdleTimeClosesResourcesIdleTooLong(t *testing.T) {
	clock := newFakeClock()
	f := &factory{}
	p := newPool(t, f, pool.MaxIdleTime(time.Minute), pool.Clock(clock.Now))
	ctx := context.Background()
	r, err := p.Get(ctx)
	require.NoError(t, err)
	first := r.Value()
	r.Release()
	clock.Advance(30 * time.Second)
	r, err = p.Get(ctx)
	require.NoError(t, err)
	assert.Same(t, first, r.Value(), "idle less than the limit: reused")
	r.Release()
	clock.Advance(2 * time.Minute)
	eventually(t, "the background goroutine retires it", func() bool { return p.Stats().Closed.Idle == 1 })
	eventually(t, "its close function runs", func() bool { return first.closed.Load() == 1 })
	r, err = p.Get(ctx)
	require.NoError(t, err)
	assert.NotSame(t, first, r.Value())
	r.Release()
}

func TestMaxLifetimeRetiresAResourceWhenReleased(t *testing.T) {
	clock := newFakeClock()
	f := &factory{}
	p := newPool(t, f, pool.MaxLifetime(time.Hour), pool.LifetimeJitter(-1), pool.Clock(clock.Now))
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	clock.Advance(2 * time.Hour)
	r.Release()
	s := p.Stats()
	assert.Equal(t, uint64(1), s.Closed.Lifetime)
	assert.Equal(t, 0, s.Idle)
	f.closedOnce(t)
}

func TestLifetimeJitterSpreadsRetirement(t *testing.T) {
	clock := newFakeClock()
	f := &factory{}
	const n = 40
	p := newPool(t, f, pool.MaxSize(n), pool.MaxLifetime(100*time.Second), pool.LifetimeJitter(50*time.Second),
		pool.Clock(clock.Now))
	ctx := context.Background()
	var rs []pool.Resource[*res]
	for range n {
		r, err := p.Get(ctx)
		require.NoError(t, err)
		rs = append(rs, r)
	}
	clock.Advance(75 * time.Second) // halfway through the jitter window
	for _, r := range rs {
		r.Release()
	}
	retired := p.Stats().Closed.Lifetime
	assert.Greater(t, retired, uint64(0), "some lifetimes were shortened past 75s")
	assert.Less(t, retired, uint64(n), "not all at once")
}

func TestHealthCheckRunsOnlyPastTheIdleThreshold(t *testing.T) {
	clock := newFakeClock()
	f := &factory{}
	var checks atomic.Int32
	var healthy atomic.Bool
	healthy.Store(true)
	check := func(_ context.Context, r *res) error {
		checks.Add(1)
		if healthy.Load() {
			return nil
		}
		return errors.New("unhealthy")
	}
	p := newPool(t, f, pool.HealthCheck(time.Second, check), pool.Clock(clock.Now))
	ctx := context.Background()
	r, err := p.Get(ctx)
	require.NoError(t, err)
	r.Release()
	r, err = p.Get(ctx)
	require.NoError(t, err)
	r.Release()
	assert.Equal(t, int32(0), checks.Load(), "no check before the threshold")
	clock.Advance(2 * time.Second)
	healthy.Store(false)
	r, err = p.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int32(1), checks.Load())
	assert.Equal(t, 1, r.Value().id, "the unhealthy resource was replaced by a new dial")
	r.Release()
	eventually(t, "the unhealthy one is closed", func() bool { return f.all[0].closed.Load() == 1 })
	assert.Equal(t, uint64(1), p.Stats().Closed.Health)
}

func TestReleasingTwicePanics(t *testing.T) {
	f := &factory{}
	p := newPool(t, f)
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	r.Release()
	assert.PanicsWithValue(t, "pool: Release or Discard of a Resource that is not checked out (released twice?)", r.Release)
	assert.Panics(t, func() { _ = r.Discard() }, "Discard after Release")
}

func TestAStaleCopyCannotReleaseAResourceCheckedOutAgain(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(1))
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	stale := r
	r.Release()
	again, err := p.Get(context.Background())
	require.NoError(t, err)
	require.Same(t, r.Value(), again.Value(), "the same resource is out again")
	assert.Panics(t, stale.Release, "the stale copy is caught")
	again.Release()
}

func TestDiscardClosesTheResourceAndFreesItsPlace(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(1))
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	require.NoError(t, r.Discard())
	assert.Equal(t, int32(1), r.Value().closed.Load(), "closed before Discard returned")
	r2, err := p.Get(context.Background())
	require.NoError(t, err)
	assert.NotSame(t, r.Value(), r2.Value())
	r2.Release()
	assert.Equal(t, uint64(1), p.Stats().Closed.Discarded)
}

func TestMaxIdleClosesTheExcess(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(3), pool.MaxIdle(1))
	ctx := context.Background()
	a, _ := p.Get(ctx)
	b, _ := p.Get(ctx)
	a.Release()
	b.Release()
	s := p.Stats()
	assert.Equal(t, 1, s.Idle)
	assert.Equal(t, uint64(1), s.Closed.Excess)
}

func TestMinIdleKeepsResourcesWarm(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(4), pool.MinIdle(2))
	eventually(t, "two resources are warm", func() bool { return p.Stats().Idle == 2 })
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	eventually(t, "the background refills", func() bool { return p.Stats().Idle == 2 })
	r.Release()
	assert.Equal(t, 3, p.Stats().Idle, "a released resource is kept")
}

func TestTryGetNeverWaits(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(1))
	_, err := p.TryGet(context.Background())
	assert.ErrorIs(t, err, pool.ErrUnavailable)
	eventually(t, "TryGet's background dial lands", func() bool { return p.Stats().Idle == 1 })
	r, err := p.TryGet(context.Background())
	require.NoError(t, err)
	_, err = p.TryGet(context.Background())
	assert.ErrorIs(t, err, pool.ErrUnavailable, "the pool is full")
	r.Release()
}

func TestResetRetiresResourcesDialedBeforeIt(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(3))
	ctx := context.Background()
	out, err := p.Get(ctx)
	require.NoError(t, err)
	idle, err := p.Get(ctx)
	require.NoError(t, err)
	idle.Release()
	p.Reset()
	eventually(t, "the idle one is closed", func() bool { return idle.Value().closed.Load() == 1 })
	out.Release()
	assert.Equal(t, int32(1), out.Value().closed.Load(), "the one out is closed on release")
	r, err := p.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, r.Value().id, "a fresh dial")
	r.Release()
	assert.Equal(t, uint64(2), p.Stats().Closed.Reset)
}

func TestShutdownIsIdempotentAndFailsWaiters(t *testing.T) {
	f := &factory{}
	p, err := pool.New(f.dial, f.close, pool.MaxSize(1), pool.MinIdle(1), pool.MaxIdleTime(time.Minute))
	require.NoError(t, err)
	ctx := context.Background()
	held, err := p.Get(ctx)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Get(ctx)
		errc <- err
	}()
	eventually(t, "the waiter queued", func() bool { return p.Stats().Waiting == 1 })

	closed := make(chan error, 2)
	go func() { closed <- p.Shutdown(ctx) }()
	go func() { closed <- p.Shutdown(ctx) }()
	assert.ErrorIs(t, <-errc, pool.ErrClosed, "the waiter is failed")
	_, err = p.Get(ctx)
	assert.ErrorIs(t, err, pool.ErrClosed)
	held.Release() // Shutdown waits for this
	assert.NoError(t, <-closed)
	assert.NoError(t, <-closed)
	assert.NoError(t, p.Shutdown(ctx), "a third Shutdown")
	f.closedOnce(t)
	assert.Equal(t, uint64(1), p.Stats().Closed.PoolClosed)
}

func TestShutdownIsBoundedByItsContextWhenACloseFunctionHangs(t *testing.T) {
	unblock := make(chan struct{})
	var closes atomic.Int32
	p, err := pool.New(func(context.Context) (int, error) { return 1, nil },
		func(int) error { closes.Add(1); <-unblock; return nil })
	require.NoError(t, err)
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	r.Release()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = p.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "Shutdown gives up at its deadline")
	close(unblock)
	assert.NoError(t, p.Shutdown(context.Background()), "and finishes once the close returns")
	assert.Equal(t, int32(1), closes.Load())
}

func TestShutdownIsBoundedByItsContextWhileAResourceIsOut(t *testing.T) {
	f := &factory{}
	p, err := pool.New(f.dial, f.close)
	require.NoError(t, err)
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, p.Shutdown(ctx), context.DeadlineExceeded)
	r.Release()
	assert.NoError(t, p.Shutdown(context.Background()))
	f.closedOnce(t)
}

func TestAHangingDialDoesNotHoldUpACallerWithADeadlineOrClose(t *testing.T) {
	f := &factory{gate: make(chan struct{})} // never opened: the dial hangs until its ctx ends
	p, err := pool.New(f.dial, f.close)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = p.Get(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 1, p.Stats().Dialing, "the dial goes on")
	assert.NoError(t, p.Shutdown(context.Background()), "Close cancels the dial")
}

func TestDialTimeoutEndsAHangingDial(t *testing.T) {
	f := &factory{gate: make(chan struct{})}
	p := newPool(t, f, pool.DialTimeout(20*time.Millisecond), pool.DialBackoff(-1, 0))
	_, err := p.Get(context.Background())
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, uint64(1), p.Stats().DialErrors)
}

func TestEveryRefusedOptionIsAnOptionErrorPrintedAsItWasWritten(t *testing.T) {
	f := &factory{}
	for _, tc := range []struct {
		opts      []pool.Option
		refused   string // the OptionError's Option, printed; "" for none
		conflicts []string
		msg       string
	}{
		{[]pool.Option{pool.MaxSize(0)}, "pool.MaxSize(0)", nil, "pool.MaxSize(0): must be at least 1"},
		{[]pool.Option{pool.MinIdle(-1)}, "pool.MinIdle(-1)", nil, "pool.MinIdle(-1): must not be negative"},
		{[]pool.Option{pool.MaxIdle(0)}, "pool.MaxIdle(0)", nil, "pool.MaxIdle(0): must be at least 1"},
		{[]pool.Option{pool.MaxConcurrentDials(0)}, "pool.MaxConcurrentDials(0)", nil, "pool.MaxConcurrentDials(0): must be at least 1"},
		{[]pool.Option{pool.MaxSize(2), pool.MinIdle(3)}, "pool.MinIdle(3)", []string{"pool.MaxSize(2)"},
			"pool.MinIdle(3): must be at most MaxSize (conflicts with pool.MaxSize(2))"},
		{[]pool.Option{pool.MaxSize(2), pool.MaxIdle(3)}, "pool.MaxIdle(3)", []string{"pool.MaxSize(2)"},
			"pool.MaxIdle(3): must be at most MaxSize (conflicts with pool.MaxSize(2))"},
		{[]pool.Option{pool.MaxSize(4), pool.MaxIdle(1), pool.MinIdle(2)}, "pool.MinIdle(2)", []string{"pool.MaxIdle(1)"},
			"pool.MinIdle(2): must be at most MaxIdle (conflicts with pool.MaxIdle(1))"},
		{[]pool.Option{pool.MaxSize(4), pool.MaxConcurrentDials(5)}, "pool.MaxConcurrentDials(5)", []string{"pool.MaxSize(4)"},
			"pool.MaxConcurrentDials(5): must be at most MaxSize (conflicts with pool.MaxSize(4))"},
		{[]pool.Option{pool.MaxLifetime(time.Second), pool.LifetimeJitter(time.Second)}, "pool.LifetimeJitter(1s)",
			[]string{"pool.MaxLifetime(1s)"}, "pool.LifetimeJitter(1s): must be less than MaxLifetime (conflicts with pool.MaxLifetime(1s))"},
		{[]pool.Option{pool.LifetimeJitter(time.Second)}, "pool.LifetimeJitter(1s)", nil, "pool.LifetimeJitter(1s): needs a MaxLifetime"},
		{[]pool.Option{pool.DialBackoff(time.Second, time.Millisecond)}, "pool.DialBackoff(1s, 1ms)", nil,
			"pool.DialBackoff(1s, 1ms): min is more than max"},
		{[]pool.Option{pool.DialBackoff(time.Second, -1)}, "pool.DialBackoff(1s, -1ns)", nil,
			"pool.DialBackoff(1s, -1ns): a negative max is an error; a negative min turns backoff off"},
		{[]pool.Option{pool.Clock(nil)}, "pool.Clock(nil)", nil, "pool.Clock(nil): nil func"},
		{[]pool.Option{pool.HealthCheck[*res](-time.Second, func(context.Context, *res) error { return nil })},
			"pool.HealthCheck[*pool_test.res](-1s, func)", nil,
			"pool.HealthCheck[*pool_test.res](-1s, func): a negative threshold is an error; 0 (the default) or EveryCheckout checks on every checkout"},
		{[]pool.Option{pool.HealthCheck[string](0, func(context.Context, string) error { return nil })},
			"pool.HealthCheck[string](0s, func)", nil, "pool.HealthCheck[string](0s, func): checks another type than the pool's *pool_test.res"},
		{[]pool.Option{nil}, "", nil, "pool: nil option"},
	} {
		_, err := pool.New(f.dial, f.close, tc.opts...)
		var oe *pool.OptionError
		if !assert.ErrorAs(t, err, &oe, "%v", tc.opts) {
			continue
		}
		assert.Equal(t, tc.msg, err.Error())
		if tc.refused == "" {
			assert.Nil(t, oe.Option)
		} else if assert.NotNil(t, oe.Option) {
			assert.Equal(t, tc.refused, oe.Option.String())
		}
		var conflicts []string
		for _, o := range oe.Conflicts {
			conflicts = append(conflicts, o.String())
		}
		assert.Equal(t, tc.conflicts, conflicts, "%v", tc.opts)
	}
	if huge := int(^uint(0) >> 1); int64(huge) > 1<<32-2 { // 64-bit int: the idle stack names slots in 32 bits
		_, err := pool.New(f.dial, f.close, pool.MaxSize(huge))
		var oe *pool.OptionError
		if assert.ErrorAs(t, err, &oe) {
			assert.Equal(t, fmt.Sprintf("pool.MaxSize(%d): must be at most 4294967294", huge), err.Error())
		}
	}
	_, err := pool.New[int](nil, func(int) error { return nil })
	assert.EqualError(t, err, "pool: nil dial function", "not an option: the package prefix")
	_, err = pool.New(func(context.Context) (int, error) { return 0, nil }, nil)
	assert.EqualError(t, err, "pool: nil close function")
}

func TestAnOptionAgainstADefaultSaysWhatTheDefaultIs(t *testing.T) {
	f := &factory{}
	_, err := pool.New(f.dial, f.close, pool.MinIdle(100_000))
	var oe *pool.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Empty(t, oe.Conflicts, "MaxSize was not given")
	assert.Contains(t, err.Error(), "pool.MinIdle(100000): must be at most MaxSize, which is ")
}

func TestDialBackoffTakesZeroForTheDefault(t *testing.T) {
	f := &factory{}
	for _, o := range []pool.Option{pool.DialBackoff(0, 0), pool.DialBackoff(0, time.Second),
		pool.DialBackoff(0, time.Millisecond), pool.DialBackoff(time.Minute, 0)} {
		p, err := pool.New(f.dial, f.close, o)
		if assert.NoError(t, err, "%v", o) {
			assert.NoError(t, p.Close())
		}
	}
}

func TestAWaiterQueuedDuringAPauseIsServedByTheProbeWhenThePauseEnds(t *testing.T) {
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(2), pool.DialBackoff(10*time.Millisecond, 10*time.Millisecond))
	ctx := context.Background()
	held, err := p.Get(ctx)
	require.NoError(t, err)
	defer held.Release()
	f.setFail(errRefused)
	_, err = p.Get(ctx)
	require.ErrorIs(t, err, errRefused)
	f.setFail(nil) // back, but dialing is paused

	got := make(chan error, 1)
	go func() {
		r, err := p.Get(ctx) // waits: a resource is in use
		if err == nil {
			r.Release()
		}
		got <- err
	}()
	select {
	case err := <-got:
		assert.NoError(t, err, "the probe dial at the end of the pause served the waiter")
	case <-time.After(20 * time.Second):
		t.Fatal("the waiter was never served")
	}
	assert.Equal(t, uint64(2), p.Stats().Dials-p.Stats().DialErrors)
}

func TestMaxConcurrentDialsLimitsDialsInFlight(t *testing.T) {
	f := &factory{}
	var inFlight, most atomic.Int32
	release := make(chan struct{})
	dial := func(ctx context.Context) (*res, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return f.dial(ctx)
	}
	p, err := pool.New(dial, f.close, pool.MaxSize(4), pool.MaxConcurrentDials(1))
	require.NoError(t, err)
	const callers = 3
	errc := make(chan error, callers)
	for range callers {
		go func() {
			r, err := p.Get(context.Background())
			if err == nil {
				defer r.Release()
			}
			errc <- err
		}()
	}
	eventually(t, "all callers wait", func() bool { return p.Stats().Waiting == callers })
	assert.Equal(t, 1, p.Stats().Dialing, "one dial at a time")
	close(release)
	for range callers {
		assert.NoError(t, <-errc)
	}
	assert.Equal(t, int32(1), most.Load(), "never more than one dial in flight")
	assert.NoError(t, p.Shutdown(context.Background()))
	f.closedOnce(t)
}

func TestAHealthCheckOnEveryCheckoutRunsOnAHandOffToo(t *testing.T) {
	f := &factory{}
	var bad atomic.Pointer[res]
	var checks atomic.Int32
	check := func(_ context.Context, r *res) error {
		checks.Add(1)
		if r == bad.Load() {
			return errors.New("unhealthy")
		}
		return nil
	}
	p := newPool(t, f, pool.MaxSize(1), pool.HealthCheck(pool.EveryCheckout, check))
	ctx := context.Background()
	held, err := p.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int32(1), checks.Load(), "a fresh dial is checked too")

	got := make(chan pool.Resource[*res], 1)
	go func() {
		r, err := p.Get(ctx)
		if assert.NoError(t, err) {
			got <- r
		}
	}()
	eventually(t, "the second Get waits", func() bool { return p.Stats().Waiting == 1 })
	bad.Store(held.Value())
	held.Release()
	r := <-got
	assert.NotSame(t, held.Value(), r.Value(), "the resource that failed its check was not handed over")
	r.Release()
	assert.Equal(t, uint64(1), p.Stats().Closed.Health)
	assert.Equal(t, int32(3), checks.Load(), "the fresh dial, the hand-off, the replacement")
}
