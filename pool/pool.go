package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Get and TryGet on a closed pool, and to callers
// waiting in Get when the pool is closed.
var ErrClosed = errors.New("pool: closed")

// ErrUnavailable is returned by TryGet when no idle resource is ready.
var ErrUnavailable = errors.New("pool: no idle resource")

// ErrBackoff is wrapped by every [*BackoffError].
var ErrBackoff = errors.New("pool: dialing paused after failures")

// BackoffError is returned by Get when the resource it needs would have to
// be dialed but dialing is paused after dial failures (see [DialBackoff]),
// and no resource in use or dial in flight can serve it instead. It wraps
// [ErrBackoff] and the last dial error, so errors.Is(err,
// syscall.ECONNREFUSED) works.
type BackoffError struct {
	Failures int           // dial failures in a row
	Retry    time.Duration // time left until the next dial may be tried
	Err      error         // the last dial error
}

// Error says how long dialing stays paused, after how many failures, and
// the last dial error.
func (e *BackoffError) Error() string {
	return fmt.Sprintf("pool: dialing paused for %v after %d failures in a row: %v", e.Retry, e.Failures, e.Err)
}

// Unwrap returns [ErrBackoff] and the last dial error.
func (e *BackoffError) Unwrap() []error { return []error{ErrBackoff, e.Err} }

// Pool is a pool of resources of type T, such as connections, made by a dial
// function and destroyed by a close function. A Pool is safe for concurrent
// use by multiple goroutines. Build one with [New].
//
// The idle set is a stack (the most recently released resource is taken
// first, so the rest can age out), with a slot per P in front of it that
// holds the last resource released on that P and is taken first there;
// Get and Release use both without a lock;
// callers that find it empty wait in a FIFO queue, behind a mutex, and are
// handed resources directly as they are released or dialed. A resource due
// for its [HealthCheck] is checked by the Get that receives it, whichever
// way it came.
//
// The zero Pool is not usable: its Get and TryGet return an error saying
// so, and its other methods do nothing.
type Pool[T any] struct {
	dial    func(context.Context) (T, *connState, error) // connState: pools of conns only
	closeFn func(T) error                                // nil for pools of conns, which close the conn
	cfg     config

	health   func(ctx context.Context, v T) error // the HealthCheck, or nil
	healthAt int64                                // its threshold, quiet nanoseconds; 0: every checkout
	liveAt   int64                                // the LivenessCheck's threshold; 0: every checkout; <0: off (always, for New)
	checkAt  int64                                // quiet nanoseconds from which a check runs; <0: no check

	plain bool // no option acts on checkout: no time limits, check or MinIdle
	clk   clock

	ctx    context.Context // cancelled by Close: dials and background work
	cancel context.CancelFunc
	kick   chan struct{} // wakes the background goroutine

	_        [64]byte // keeps the counters below off mu's cache line
	waitTime atomic.Int64
	timeouts atomic.Uint64 // Gets whose context ended while they waited
	early    atomic.Uint64 // Gets whose context had ended already
	_        [64]byte

	wfree sync.Pool // *waiter[T]

	// Read on every Get and Release without the mutex, written under it.
	// Between a change to the idle stack and one to these, each side
	// reads the other's (Go's atomics are sequentially consistent), so a
	// Release that pushes a resource as a Get queues, or as Close or
	// Reset run, is seen by one of them: see release.
	waiting atomic.Int64  // waiters.n
	closed  atomic.Bool   // Close was called
	gen     atomic.Uint64 // Reset generation
	_       [64]byte

	idle idleStack[T] // the idle set; its slots are assigned and freed under mu
	_    [64]byte

	mu      sync.Mutex // guards all fields below, and the writes of waiting, closed and gen
	waiters waitQueue[T]
	open    int // idle + in use + dialing
	dialing int
	closing int           // close functions running; open+closing ≤ cfg.maxSize
	workers int           // goroutines running: dials, the background goroutine
	free    []uint32      // idle stack slots free, below nslots
	nslots  uint32        // idle stack slots used so far
	done    chan struct{} // closed once closed and nothing is left running
	isDone  bool
	fails   int   // dial failures in a row
	pauseTo int64 // dialing paused until, in precise-clock nanoseconds
	lastErr error
	timer   *time.Timer // ends a dial pause
	st      counters
}

// counters are the Stats fields kept under mu.
type counters struct {
	gets, hits, misses, waits, dials, dialErrors uint64
	closed                                       ClosedStats
}

type resource[T any] struct {
	value T
	pool  *Pool[T]
	slot  uint32 // its slot in the idle stack, for as long as it is open
	gen   uint64 // Reset generation it was dialed in
	// state is bumped at every check-in (Release or Discard), so that a
	// stale handle is caught: a Resource holds the state of its checkout.
	state atomic.Uint64
	link  atomic.Uint64 // in the idle stack: see idleStack
	// Fields below belong to whoever holds the resource: the Get or
	// Release that has it (off the stack), or pool.mu.
	idleSince int64 // coarse nanoseconds: released at (MaxIdleTime)
	expires   int64 // coarse nanoseconds; 0: never
	// provenAt is when the resource was last known good, in coarse
	// nanoseconds: dialed, passed its check, released with Release, or
	// (pools of conns) a Read on the conn returned data. The check
	// thresholds count from it.
	provenAt int64
	// suspect: the conn was returned with a Write after its last Read, so
	// a reply may be waiting unread; the liveness check peeks at it on
	// its next checkout whatever its quiet time.
	suspect bool
	// conn is the pool's view of the connection, in pools of conns; nil
	// otherwise. It lives as long as the connection.
	conn *connState
}

// returnNote is what a release knows about how the resource was used.
type returnNote struct {
	vouched bool // Resource.Release of a Pool from New: the caller vouches it is good now
	suspect bool // a Write since the last Read (pools of conns)
}

// Resource is a resource checked out of a [Pool]: call exactly one of
// [Resource.Release] or [Resource.Discard] when done. It is a small value;
// copies refer to the same checkout. A Resource is not safe for concurrent
// use with itself (Release and Discard must not race). The zero Resource
// holds the zero T; releasing or discarding it panics.
type Resource[T any] struct {
	r   *resource[T]
	seq uint64
}

// Value returns the resource. It stays valid to use until Release or
// Discard.
func (h Resource[T]) Value() T {
	if h.r == nil {
		var zero T
		return zero
	}
	return h.r.value
}

// Release returns the resource to the pool: to the longest-waiting Get if
// there is one (which runs the [HealthCheck] first if it is due), else to
// the idle set, or it is closed when it has outlived MaxLifetime, the pool
// has been Reset or closed since it was dialed, or MaxIdle resources are
// idle already (the close function then runs before Release returns).
// Release vouches that the resource is good: the HealthCheck's idle
// threshold counts from it. A Release that puts the resource back idle,
// with no Get waiting, takes no lock.
//
// In a pool of connections ([NewConnPoolOf]) Release is the Close of a
// [*Conn]: it vouches for nothing (a Read that returned data does), and it
// closes the connection instead of pooling it when a Read or Write on it
// failed or is still running; it clears deadlines set on it.
//
// Releasing or discarding the same checkout twice is a programming error:
// Release panics with a message saying so, as it does on the zero Resource.
func (h Resource[T]) Release() {
	r := h.r
	if r == nil {
		panic(errZeroResource)
	}
	if r.conn != nil {
		_ = r.pool.returnConn(h) // a close error of a broken conn: nobody to tell
		return
	}
	r.pool.release(h, returnNote{vouched: true})
}

// Discard closes the resource instead of returning it, for one found broken.
// The close function runs before Discard returns, and its error is returned.
// Discarding the same checkout twice panics, like Release.
func (h Resource[T]) Discard() error {
	if h.r == nil {
		panic(errZeroResource)
	}
	return h.r.pool.discard(h)
}

const errZeroResource = "pool: Release or Discard of the zero Resource"

// ClosedStats counts resources closed by the pool, by reason.
type ClosedStats struct {
	Idle       uint64 // idle longer than MaxIdleTime
	Lifetime   uint64 // older than MaxLifetime
	Health     uint64 // failed the health or liveness check
	Discarded  uint64 // Discard
	Excess     uint64 // released while MaxIdle were idle
	Reset      uint64 // dialed before a Reset
	PoolClosed uint64 // closed by or after Close
}

// Stats is a snapshot of a pool's state and counters, taken in O(1).
// Gets and Releases that take no lock (see [Pool]) may run while it is
// taken, so its fields can disagree by the few operations in flight; once
// the pool is quiet they are exact.
type Stats struct {
	MaxSize int // the MaxSize limit
	InUse   int // checked out now (counting one being released or checked out this instant)
	Idle    int // idle now
	Dialing int // dials in flight now
	Waiting int // Gets waiting now

	Gets       uint64        // Get and TryGet calls
	Hits       uint64        // of those, served from the idle set at once
	Misses     uint64        // of those, that found no idle resource
	Waits      uint64        // Gets that waited and got a resource
	WaitTime   time.Duration // total time those waited (what RecordWaitTime records, summed)
	Timeouts   uint64        // Gets ended by their context (also before waiting)
	Dials      uint64        // dials started
	DialErrors uint64        // dials that failed
	Closed     ClosedStats   // resources closed, by reason
}

// New returns a pool of resources made by dial and destroyed by closeFn.
// dial gets a context that ends at DialTimeout or Close, carrying the values
// of the context of the Get that caused the dial (if any) but not its
// cancellation. closeFn's error is returned by Discard and otherwise
// dropped. It returns an [*OptionError] when an option is invalid.
//
// Unless no option needs it, New starts one background goroutine (for
// MinIdle, MaxIdleTime, MaxLifetime and the coarse clock): call Close or
// Shutdown to stop it.
func New[T any](dial func(ctx context.Context) (T, error), closeFn func(T) error, opts ...Option) (*Pool[T], error) {
	if dial == nil {
		return nil, errors.New("pool: nil dial function")
	}
	if closeFn == nil {
		return nil, errors.New("pool: nil close function")
	}
	cfg, err := buildConfig(false, opts)
	if err != nil {
		return nil, err
	}
	health, err := healthFor[T](&cfg)
	if err != nil {
		return nil, err
	}
	p := newPool(cfg, health)
	p.dial = func(ctx context.Context) (T, *connState, error) {
		v, err := dial(ctx)
		return v, nil, err
	}
	p.closeFn = closeFn
	p.start()
	return p, nil
}

// newPool builds a pool from a checked configuration; the caller sets
// dial (and closeFn, unless the pool holds conns) and then calls start.
func newPool[T any](cfg config, health func(context.Context, T) error) *Pool[T] {
	p := &Pool[T]{
		cfg:     cfg,
		health:  health,
		liveAt:  int64(cfg.liveness),
		checkAt: -1,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	p.waiters.pub = &p.waiting
	p.idle.init(cfg.maxSize, cfg.maxIdle)
	if health != nil {
		p.healthAt = int64(cfg.health.after())
		p.checkAt = p.healthAt
	}
	if p.liveAt >= 0 && (p.checkAt < 0 || p.liveAt < p.checkAt) {
		p.checkAt = p.liveAt
	}
	// Without a clock every threshold is 0: the check runs on every
	// checkout (see dueLocked).
	p.clk.init(cfg.clock, cfg.maxIdleTime > 0 || cfg.maxLifetime > 0 || p.liveAt > 0 || p.healthAt > 0)
	p.plain = !p.clk.timed && p.checkAt < 0 && cfg.minIdle == 0
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wfree.New = func() any { return &waiter[T]{ch: make(chan delivery[T], 1)} }
	return p
}

// start starts the background goroutine, if an option needs it.
func (p *Pool[T]) start() {
	if p.clk.timed || p.cfg.minIdle > 0 {
		p.workers++
		go p.background(p.tick())
	}
}

// tick is the background goroutine's period: an eighth of the shortest time
// limit, between 1ms and 1s.
func (p *Pool[T]) tick() time.Duration {
	d := time.Second
	limits := []time.Duration{p.cfg.maxIdleTime, p.cfg.maxLifetime - p.cfg.lifetimeJitter,
		time.Duration(p.liveAt), time.Duration(p.healthAt)}
	for _, l := range limits {
		if l > 0 && l/8 < d {
			d = l / 8
		}
	}
	return max(d, time.Millisecond)
}

// clock timestamps resources, in nanoseconds since the pool was built.
type clock struct {
	custom func() time.Time // the Clock option, or nil
	epoch  time.Time
	coarse atomic.Int64 // nanoseconds since epoch, advanced by the background goroutine
	timed  bool         // some option needs resource timestamps
}

func (c *clock) init(custom func() time.Time, timed bool) {
	c.custom, c.timed, c.epoch = custom, timed, time.Now()
	if custom != nil {
		c.epoch = custom() // so that resource times are never negative
	}
}

// now is the clock that timestamps resources: coarse unless a Clock was
// given, since reading the system clock costs more than the rest of a Get
// and Release together. Only called when c.timed.
func (c *clock) now() int64 {
	if c.custom != nil {
		return int64(c.custom().Sub(c.epoch))
	}
	return c.coarse.Load()
}

// precise reads the clock for the slow paths (waits, backoff).
func (c *clock) precise() int64 {
	if c.custom != nil {
		return int64(c.custom().Sub(c.epoch))
	}
	return int64(time.Since(c.epoch))
}

// advance moves the coarse clock to now; the background goroutine calls it.
func (c *clock) advance() { c.coarse.Store(int64(time.Since(c.epoch))) }

// errNotNew is what the zero Pool's Get and TryGet return.
var errNotNew = errors.New("pool: Pool used without New")

// Get returns an idle resource, or waits for one to be released or dialed
// until ctx ends. Callers wait in FIFO order. A resource due for its [HealthCheck] is checked first, however it reached
// Get; one that fails is closed, and Get goes on (keeping its place in the
// queue), or fails with the check's error wrapped if the resource came
// straight from its dial. When ctx ends first, Get returns ctx.Err()
// (unwrapped, and without allocating when ctx was already done); a dial
// it started goes on and serves the next caller. A dial error is returned
// wrapped; see also [BackoffError].
//
// A Get that finds a resource idle, with no Get waiting, takes no lock.
func (p *Pool[T]) Get(ctx context.Context) (Resource[T], error) {
	if err := ctx.Err(); err != nil {
		p.early.Add(1)
		return Resource[T]{}, err
	}
	if h, ok := p.getIdle(ctx); ok {
		return h, nil
	}
	p.mu.Lock()
	p.st.gets++
	if h, done, err := p.takeIdle(ctx); done {
		if err == nil && p.cfg.recorder != nil {
			p.cfg.recorder.Record(0)
		}
		return h, err
	}
	return p.wait(ctx)
}

// getIdle is the lock-free path of Get and TryGet: it checks out an idle
// resource that passes its checks, when no Get waits (they come first)
// and the pool is open.
func (p *Pool[T]) getIdle(ctx context.Context) (Resource[T], bool) {
	for p.waiting.Load() == 0 && !p.closed.Load() {
		r := p.idle.pop()
		if r == nil {
			break
		}
		if h, ok := p.claim(ctx, r); ok {
			p.idle.hits.Inc()
			if p.cfg.recorder != nil {
				p.cfg.recorder.Record(0)
			}
			return h, true
		}
	}
	return Resource[T]{}, false
}

// TryGet returns an idle resource or, without waiting, [ErrUnavailable]; in
// that case, if the pool has room and no spare dial is in flight, it starts
// one in the background whose result goes to the idle set (or a waiter).
// ctx is passed to the health check and to that dial. Like Get, a TryGet
// that finds a resource idle, with no Get waiting, takes no lock.
func (p *Pool[T]) TryGet(ctx context.Context) (Resource[T], error) {
	if h, ok := p.getIdle(ctx); ok {
		return h, nil
	}
	p.mu.Lock()
	p.st.gets++
	if h, done, err := p.takeIdle(ctx); done {
		if err == nil && p.cfg.recorder != nil {
			p.cfg.recorder.Record(0)
		}
		return h, err
	}
	if p.dialing <= p.waiters.n && p.canDialLocked(p.clk.precise()) {
		p.startDialLocked(ctx)
	}
	p.mu.Unlock()
	return Resource[T]{}, ErrUnavailable
}

// takeIdle, called with p.mu held, checks out an idle resource that passes
// its checks. When done it has unlocked p.mu and returns the resource or
// ErrClosed; otherwise (nothing idle) it returns with p.mu still held and
// the Get counted as a miss.
func (p *Pool[T]) takeIdle(ctx context.Context) (h Resource[T], done bool, err error) {
	for {
		if p.closed.Load() {
			p.mu.Unlock()
			return Resource[T]{}, true, ErrClosed
		}
		var r *resource[T]
		if p.waiters.n == 0 { // else r is the first waiter's: see release
			r = p.popIdleLocked()
		}
		if r == nil {
			if p.dial == nil { // the zero Pool
				p.mu.Unlock()
				return Resource[T]{}, true, errNotNew
			}
			p.st.misses++
			return Resource[T]{}, false, nil
		}
		p.st.hits++
		if h, ok := p.checkOut(ctx, r); ok {
			return h, true, nil
		}
		p.mu.Lock()
	}
}

// popIdleLocked takes the most recently released idle resource that is
// still fit for use (see unfit), retiring (in the background) the ones
// that are not.
func (p *Pool[T]) popIdleLocked() *resource[T] {
	for {
		r := p.idle.pop()
		if r == nil {
			return nil
		}
		reason := p.unfit(r)
		if reason == nil {
			return r
		}
		p.dropLocked(r, reason)
		go p.destroy(r)
	}
}

// unfit returns the counter of the reason r, idle, must be retired rather
// than handed out, or nil: the pool was closed or Reset since it was
// dialed, or r outlived MaxLifetime or MaxIdleTime. The counter is
// guarded by p.mu.
func (p *Pool[T]) unfit(r *resource[T]) *uint64 {
	switch {
	case p.closed.Load():
		return &p.st.closed.PoolClosed
	case r.gen != p.gen.Load():
		return &p.st.closed.Reset
	case p.clk.timed:
		return p.expired(r, p.clk.now())
	}
	return nil
}

// expired returns the counter (guarded by p.mu) of the reason r must be
// retired at now, or nil.
func (p *Pool[T]) expired(r *resource[T], now int64) *uint64 {
	if r.expires != 0 && now >= r.expires {
		return &p.st.closed.Lifetime
	}
	if p.cfg.maxIdleTime > 0 && now-r.idleSince >= int64(p.cfg.maxIdleTime) {
		return &p.st.closed.Idle
	}
	return nil
}

// claim checks out r, which Get has just popped from the idle stack
// without the mutex, and runs the check when due. If r is unfit (see
// unfit) or fails its check it retires r and returns false.
func (p *Pool[T]) claim(ctx context.Context, r *resource[T]) (Resource[T], bool) {
	if reason := p.unfit(r); reason != nil {
		p.mu.Lock()
		p.dropLocked(r, reason)
		p.serveLocked(ctx)
		p.mu.Unlock()
		go p.destroy(r)
		return Resource[T]{}, false
	}
	h := Resource[T]{r: r, seq: r.state.Load()}
	if p.plain {
		return h, true
	}
	if p.cfg.minIdle > 0 && p.idle.len() < p.cfg.minIdle {
		p.wake()
	}
	quiet, due := p.due(r)
	if !due || p.runCheck(ctx, r, quiet) == nil {
		return h, true
	}
	p.mu.Lock()
	p.dropLocked(r, &p.st.closed.Health)
	p.serveLocked(ctx)
	p.mu.Unlock()
	go p.destroy(r)
	return Resource[T]{}, false
}

// checkOut marks r (just taken from the idle set) in use, unlocks, and
// runs the check when due. On failure it retires r and returns false,
// with p.mu unlocked.
func (p *Pool[T]) checkOut(ctx context.Context, r *resource[T]) (Resource[T], bool) {
	h := Resource[T]{r: r, seq: r.state.Load()}
	refill := p.idle.len() < p.cfg.minIdle
	quiet, due := p.due(r)
	p.mu.Unlock()
	if refill {
		p.wake()
	}
	if !due || p.runCheck(ctx, r, quiet) == nil {
		return h, true
	}
	p.mu.Lock()
	p.st.hits--
	p.dropLocked(r, &p.st.closed.Health)
	p.serveLocked(ctx)
	p.mu.Unlock()
	go p.destroy(r)
	return Resource[T]{}, false
}

// due says whether r, which the caller holds, must pass the check before
// it is handed out, and how long nothing has proven it good (0 without a
// clock, when every threshold is 0 and so the check is always due).
func (p *Pool[T]) due(r *resource[T]) (quiet time.Duration, due bool) {
	if p.checkAt < 0 {
		return 0, false
	}
	if !p.clk.timed {
		return 0, true
	}
	quiet = time.Duration(max(0, p.clk.now()-r.provenAt))
	return quiet, r.suspect || int64(quiet) >= p.checkAt
}

// runCheck runs the check on r, which the caller alone holds (checked
// out), and records a pass: r is proven good now.
//
// The liveness check comes first, when due: a dead peer fails it without
// the health check's round trip.
func (p *Pool[T]) runCheck(ctx context.Context, r *resource[T], quiet time.Duration) error {
	if p.liveAt >= 0 && (r.suspect || int64(quiet) >= p.liveAt) {
		if err := r.conn.probe(); err != nil {
			return err
		}
	}
	if p.health != nil && int64(quiet) >= p.healthAt {
		if err := p.health(ctx, r.value); err != nil {
			return err
		}
	}
	r.suspect = false
	if p.clk.timed {
		r.provenAt = p.clk.now()
	}
	return nil
}

// dropLocked takes r, which the caller holds (off the idle stack, and
// checked in or never handed out), out of the pool's accounting to be
// closed for reason, and frees its slot; the caller then runs destroy.
func (p *Pool[T]) dropLocked(r *resource[T], reason *uint64) {
	*reason++
	p.open--
	p.closing++
	p.idle.slots[r.slot].Store(nil)
	p.free = append(p.free, r.slot)
}

// addLocked gives r, just dialed, a slot in the idle stack.
func (p *Pool[T]) addLocked(r *resource[T]) {
	if n := len(p.free); n > 0 {
		r.slot = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		r.slot = p.nslots
		p.nslots++
	}
	p.idle.slots[r.slot].Store(r)
}

// inUseLocked is how many resources are checked out, or on their way in
// or out of the idle stack.
func (p *Pool[T]) inUseLocked() int { return p.open - p.dialing - p.idle.len() }

// wait queues the caller (p.mu held) and waits for a hand-off. A resource
// handed over that is due for its check is checked here, by the receiving
// Get and off the mutex; if it fails, it is closed and the Get waits again
// at the head of the queue (or fails, if the resource came straight from
// its dial: see the fresh case below).
func (p *Pool[T]) wait(ctx context.Context) (Resource[T], error) {
	w := p.wfree.Get().(*waiter[T])
	start := p.clk.precise() // before anyone can see w in the queue
	p.waiters.push(w)
	p.serveLocked(ctx)
	p.mu.Unlock()
	var d delivery[T]
	for {
		done := ctx.Done()
		if done == nil {
			d = <-w.ch
		} else {
			select {
			case d = <-w.ch:
			case <-done:
				return p.abandon(ctx, w)
			}
		}
		if d.err != nil {
			p.wfree.Put(w)
			return Resource[T]{}, d.err
		}
		if !d.check {
			break
		}
		err := p.runCheck(ctx, d.r, d.quiet)
		if err == nil {
			break
		}
		p.mu.Lock()
		p.st.waits-- // counted by handLocked, but not handed out
		p.dropLocked(d.r, &p.st.closed.Health)
		switch {
		case d.fresh:
			// Dead on arrival: the server accepts and drops. Dialing
			// again for this Get could go on for ever.
			err = fmt.Errorf("pool: new resource failed its check: %w", err)
		case p.closed.Load():
			err = ErrClosed
		case ctx.Err() != nil:
			p.timeouts.Add(1)
			err = ctx.Err()
		default:
			err = nil
			p.waiters.pushFront(w)
		}
		p.serveLocked(ctx)
		p.mu.Unlock()
		go p.destroy(d.r)
		if err != nil {
			p.wfree.Put(w)
			return Resource[T]{}, err
		}
	}
	p.wfree.Put(w)
	waited := max(0, p.clk.precise()-start) // a test's Clock may go back
	p.waitTime.Add(waited)
	if p.cfg.recorder != nil {
		p.cfg.recorder.Record(time.Duration(waited))
	}
	return Resource[T]{r: d.r, seq: d.r.state.Load()}, nil
}

// abandon takes w out of the queue after its Get's context ended.
func (p *Pool[T]) abandon(ctx context.Context, w *waiter[T]) (Resource[T], error) {
	p.timeouts.Add(1)
	p.mu.Lock()
	if w.queued {
		p.waiters.remove(w)
		p.mu.Unlock()
		p.wfree.Put(w)
		return Resource[T]{}, ctx.Err()
	}
	p.mu.Unlock()
	// Served at the same time as ctx ended: pass the resource on.
	d := <-w.ch
	p.wfree.Put(w)
	if d.err == nil {
		p.mu.Lock()
		p.st.waits-- // counted by handLocked, but this Get fails
		p.mu.Unlock()
		// Unused: its proof and suspicion stay as they were.
		p.release(Resource[T]{r: d.r, seq: d.r.state.Load()}, returnNote{})
	}
	return Resource[T]{}, ctx.Err()
}

// serveLocked matches waiters with idle resources and starts the dials
// they need (with the values of ctx), or fails them when nothing can serve
// them while dialing is paused.
func (p *Pool[T]) serveLocked(ctx context.Context) {
	for p.waiters.n > 0 {
		r := p.popIdleLocked()
		if r == nil {
			break
		}
		p.handLocked(r, false)
	}
	if p.closed.Load() {
		return
	}
	var now int64
	clocked := false
	for p.waiters.n > p.dialing && p.open+p.closing < p.cfg.maxSize && p.dialing < p.cfg.maxDials {
		if !clocked {
			now, clocked = p.clk.precise(), true
		}
		if !p.canDialLocked(now) {
			if p.dialing == 0 && p.inUseLocked() == 0 && p.fails > 0 && now < p.pauseTo {
				err := &BackoffError{Failures: p.fails, Retry: time.Duration(p.pauseTo - now), Err: p.lastErr}
				for w := p.waiters.pop(); w != nil; w = p.waiters.pop() {
					w.ch <- delivery[T]{err: err}
				}
			}
			return
		}
		p.startDialLocked(ctx)
	}
}

// canDialLocked says whether a new dial may start now (room permitting):
// not while paused, and only one probe at a time after a pause.
func (p *Pool[T]) canDialLocked(now int64) bool {
	if p.closed.Load() || p.open+p.closing >= p.cfg.maxSize || p.dialing >= p.cfg.maxDials {
		return false
	}
	if p.fails == 0 || p.cfg.backoffMin < 0 {
		return true
	}
	return now >= p.pauseTo && p.dialing == 0
}

// handLocked gives r to the longest waiter, telling it whether r is due
// for its check; fresh says r comes straight from its dial.
func (p *Pool[T]) handLocked(r *resource[T], fresh bool) {
	w := p.waiters.pop()
	p.st.waits++
	d := delivery[T]{r: r, fresh: fresh}
	d.quiet, d.check = p.due(r)
	w.ch <- d
}

// startDialLocked starts a dial in a goroutine. Its context carries the
// values of ctx but ends only at DialTimeout or Close.
func (p *Pool[T]) startDialLocked(ctx context.Context) {
	p.open++
	p.dialing++
	p.workers++
	p.st.dials++
	go p.runDial(ctx, p.gen.Load())
}

func (p *Pool[T]) runDial(parent context.Context, gen uint64) {
	// The caller's values, but not its cancellation: the dial ends at
	// Close (or DialTimeout).
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(p.ctx, cancel)
	defer func() { stop(); cancel() }()
	if p.cfg.dialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.dialTimeout)
		defer cancel()
	}
	v, conn, err := p.dial(ctx)
	p.mu.Lock()
	p.dialing--
	p.workers--
	if err != nil {
		p.open--
		p.st.dialErrors++
		p.failLocked(err)
		p.maybeDoneLocked()
		p.mu.Unlock()
		return
	}
	p.fails = 0
	r := &resource[T]{value: v, pool: p, gen: gen, conn: conn}
	p.addLocked(r)
	if p.clk.timed {
		now := p.clk.now()
		r.idleSince = now
		r.provenAt = now
		if p.cfg.maxLifetime > 0 {
			life := p.cfg.maxLifetime
			if p.cfg.lifetimeJitter > 0 {
				life -= rand.N(p.cfg.lifetimeJitter)
			}
			r.expires = now + int64(life)
		}
	}
	_ = p.placeUnlock(r, true) // a close error: nobody to tell
}

// failLocked records a dial failure: the longest waiter gets the error,
// and dialing pauses.
func (p *Pool[T]) failLocked(err error) {
	p.fails++
	p.lastErr = err
	now := p.clk.precise()
	if p.cfg.backoffMin > 0 {
		d := p.cfg.backoffMax
		if shift := p.fails - 1; shift < 32 && p.cfg.backoffMin<<shift < d {
			d = p.cfg.backoffMin << shift
		}
		d = d*3/4 + rand.N(d/2+1)
		p.pauseTo = now + int64(d)
		if p.timer == nil && !p.closed.Load() {
			p.workers++ // the timer's function, until it has run
			p.timer = time.AfterFunc(d, p.endPause)
		}
	}
	if w := p.waiters.pop(); w != nil {
		w.ch <- delivery[T]{err: fmt.Errorf("pool: dial: %w", err)}
	}
	p.serveLocked(context.Background())
}

// endPause runs when a dial pause ends: it lets waiters and MinIdle dial
// again.
func (p *Pool[T]) endPause() {
	p.mu.Lock()
	p.timer = nil
	if !p.closed.Load() {
		if now := p.clk.precise(); now < p.pauseTo && p.fails > 0 {
			// A later failure extended the pause (or the clock is a test's).
			p.workers++
			p.timer = time.AfterFunc(time.Duration(p.pauseTo-now), p.endPause)
		}
		p.serveLocked(context.Background())
	}
	p.workers--
	p.maybeDoneLocked()
	p.mu.Unlock()
	p.wake()
}

func (p *Pool[T]) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// checkIn validates a handle being given back and marks its resource no
// longer checked out. The compare-and-swap makes a second Release or
// Discard of the same checkout fail, even one that races with the first.
func checkIn[T any](h Resource[T]) {
	if !h.r.state.CompareAndSwap(h.seq, h.seq+1) {
		panic("pool: Release or Discard of a Resource that is not checked out (released twice?)")
	}
}

// release takes back a checked-out resource; n says what its use proved.
//
// With no Get waiting, the pool open and not Reset since r was dialed, r
// within its lifetime and fewer than MaxIdle idle, r goes onto the idle
// stack without the mutex. Then release reads the waiter count, the
// closed flag and the generation again: a Get that queued, or a Close or
// Reset that emptied the idle stack, before the push could not have seen
// r, so release takes the mutex and serves the waiters or retires what
// is left idle itself. (A Get queues and then pops the stack under the
// mutex; Close and Reset store their flag, then empty the stack. Each
// writes before it reads, on both sides, and Go's atomics are
// sequentially consistent, so at least one side sees the other's write.)
func (p *Pool[T]) release(h Resource[T], n returnNote) {
	r := h.r
	checkIn(h)
	var now int64
	if p.clk.timed {
		now = p.clk.now()
		r.idleSince = now
		if n.vouched {
			r.provenAt = now
		} else if r.conn != nil {
			r.provenAt = max(r.provenAt, r.conn.readAt.Load())
		}
	}
	if n.suspect && p.liveAt >= 0 {
		r.suspect = true
	}
	if p.waiting.Load() == 0 && !p.closed.Load() && r.gen == p.gen.Load() && (r.expires == 0 || now < r.expires) {
		if faultYield {
			yield()
		}
		if p.idle.push(r) {
			if faultYield {
				yield()
			}
			if faultNoRecheck || p.waiting.Load() == 0 && !p.closed.Load() && p.gen.Load() == r.gen {
				return
			}
			p.mu.Lock()
			p.settleUnlock(r.gen)
			return
		}
	}
	p.mu.Lock()
	_ = p.placeUnlock(r, false) // Release returns nothing: the close error is dropped, as documented on New
}

// settleUnlock, called with p.mu held by a release whose push of a
// resource of generation gen may have gone unseen (see release), serves
// the waiters from the idle stack and retires what must not stay idle
// after a Close or Reset; it unlocks p.mu.
func (p *Pool[T]) settleUnlock(gen uint64) {
	var old []*resource[T]
	switch {
	case p.closed.Load():
		old = p.takeIdleLocked(&p.st.closed.PoolClosed)
	case gen != p.gen.Load():
		old = p.sweepLocked(p.clk.now())
	}
	served := p.waiters.n > 0
	p.serveLocked(context.Background())
	served = served && p.waiters.n == 0
	p.mu.Unlock()
	for _, r := range old {
		go p.destroy(r)
	}
	if served {
		runtime.Gosched() // see placeUnlock
	}
}

// placeUnlock puts r, just released or (fresh) dialed, where it belongs,
// and unlocks p.mu: to the longest waiter, to the idle set, or closed
// (before placeUnlock returns, whose error it is).
func (p *Pool[T]) placeUnlock(r *resource[T], fresh bool) error {
	var reason *uint64
	switch {
	case p.closed.Load():
		reason = &p.st.closed.PoolClosed
	case r.gen != p.gen.Load():
		reason = &p.st.closed.Reset
	case r.expires != 0 && p.clk.now() >= r.expires:
		reason = &p.st.closed.Lifetime
	case p.waiters.n > 0:
		p.handLocked(r, fresh)
		if fresh {
			p.serveLocked(context.Background()) // a dial has ended: others may start
		}
		p.mu.Unlock()
		// The waiter is runnable but queued behind this goroutine on its
		// P, where it would sit holding the resource unused for as long
		// as this goroutine keeps running (jackc/puddle#46). Yield to it.
		runtime.Gosched()
		return nil
	case p.idle.push(r): // under p.mu, no waiter can come unseen
		p.mu.Unlock()
		return nil
	default:
		reason = &p.st.closed.Excess
	}
	return p.closeUnlock(r, reason)
}

func (p *Pool[T]) discard(h Resource[T]) error {
	checkIn(h)
	p.mu.Lock()
	return p.closeUnlock(h.r, &p.st.closed.Discarded)
}

// closeUnlock takes r, which is neither idle nor in use, out of the pool
// for reason, lets a waiter have its place, unlocks p.mu and runs the
// close function.
func (p *Pool[T]) closeUnlock(r *resource[T], reason *uint64) error {
	p.dropLocked(r, reason)
	p.serveLocked(context.Background())
	p.mu.Unlock()
	return p.destroy(r)
}

// destroy runs the close function on r, which has already left the
// accounting but for p.closing.
func (p *Pool[T]) destroy(r *resource[T]) error {
	var err error
	if r.conn != nil {
		err = r.conn.close()
	} else {
		err = p.closeFn(r.value)
	}
	p.mu.Lock()
	p.closing--
	p.serveLocked(context.Background()) // the place is free now
	p.maybeDoneLocked()
	p.mu.Unlock()
	if p.cfg.minIdle > 0 {
		p.wake()
	}
	return err
}

func (p *Pool[T]) maybeDoneLocked() {
	if p.closed.Load() && !p.isDone && p.open == 0 && p.closing == 0 && p.workers == 0 {
		p.isDone = true
		close(p.done)
	}
}

// Reset retires every resource dialed (or being dialed) before it: idle
// ones are closed now, in the background; ones in use are closed when
// released. Use it when the resources are known to be stale, such as after
// a failover. Reset does not wait for the close functions.
func (p *Pool[T]) Reset() {
	p.mu.Lock()
	p.gen.Add(1)
	old := p.sweepLocked(p.clk.now())
	p.mu.Unlock()
	for _, r := range old {
		go p.destroy(r)
	}
	p.wake()
}

// takeIdleLocked empties the idle set for closing.
func (p *Pool[T]) takeIdleLocked(reason *uint64) []*resource[T] {
	old := p.idle.takeAll(nil)
	for _, r := range old {
		p.dropLocked(r, reason)
	}
	return old
}

// sweepLocked takes out of the idle set the resources that unfit says
// must not stay (at now, when the pool is timed), for closing, keeping
// the others in their order.
func (p *Pool[T]) sweepLocked(now int64) []*resource[T] {
	all := p.idle.takeAll(nil)
	keep := all[:0:0]
	var old []*resource[T]
	gen := p.gen.Load()
	for _, r := range all {
		var reason *uint64
		switch {
		case r.gen != gen:
			reason = &p.st.closed.Reset
		case p.clk.timed:
			reason = p.expired(r, now)
		}
		if reason != nil {
			p.dropLocked(r, reason)
			old = append(old, r)
		} else {
			keep = append(keep, r)
		}
	}
	for _, r := range p.idle.restore(keep) {
		p.dropLocked(r, &p.st.closed.Excess)
		old = append(old, r)
	}
	return old
}

// Close closes the pool now: Gets waiting and later fail with [ErrClosed],
// the background goroutine and dials in flight are stopped (their context
// is cancelled), idle resources are closed, and resources in use are
// closed when released. Close returns at once, without waiting for the
// close functions (their errors are dropped), and always returns nil.
// It may be called more than once, and concurrently. Use [Pool.Shutdown]
// to wait until everything is closed. Close on the zero Pool does
// nothing.
func (p *Pool[T]) Close() error {
	if p.cancel == nil {
		return nil // the zero Pool
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return nil
	}
	p.closed.Store(true)
	for w := p.waiters.pop(); w != nil; w = p.waiters.pop() {
		w.ch <- delivery[T]{err: ErrClosed}
	}
	if p.timer != nil {
		if p.timer.Stop() {
			p.workers-- // endPause will not run
		}
		p.timer = nil
	}
	p.cancel()
	for _, r := range p.takeIdleLocked(&p.st.closed.PoolClosed) {
		go p.destroy(r)
	}
	p.maybeDoneLocked()
	return nil
}

// Shutdown closes the pool as [Pool.Close] does, then waits, until ctx
// ends, for the resources in use to be released and for all of it to
// finish: every close function returned, every goroutine of the pool
// exited. If ctx ends first it returns an error wrapping ctx.Err() saying
// what is left, and the rest finishes in the background. Shutdown may be
// called more than once, and concurrently; every call waits the same way.
// It is [net/http.Server.Shutdown]'s counterpart.
func (p *Pool[T]) Shutdown(ctx context.Context) error {
	if p.cancel == nil {
		return nil // the zero Pool
	}
	_ = p.Close() // always nil
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isDone {
		return nil
	}
	return fmt.Errorf("pool: shutdown: %d in use, %d dialing, %d closing: %w", p.inUseLocked(), p.dialing, p.closing, ctx.Err())
}

// Stats returns a snapshot of the pool's state and counters.
func (p *Pool[T]) Stats() Stats {
	p.mu.Lock()
	idle := p.idle.len()
	s := Stats{
		MaxSize:    p.cfg.maxSize,
		InUse:      p.open - p.dialing - idle,
		Idle:       idle,
		Dialing:    p.dialing,
		Waiting:    p.waiters.n,
		Gets:       p.st.gets,
		Hits:       p.st.hits,
		Misses:     p.st.misses,
		Waits:      p.st.waits,
		Dials:      p.st.dials,
		DialErrors: p.st.dialErrors,
		Closed:     p.st.closed,
	}
	p.mu.Unlock()
	s.WaitTime = time.Duration(p.waitTime.Load())
	early, fast := p.early.Load(), uint64(0)
	if p.idle.hits != nil { // nil in the zero Pool
		fast = p.idle.hits.Load()
	}
	s.Gets += early + fast
	s.Hits += fast
	s.Timeouts = p.timeouts.Load() + early
	return s
}

// background advances the coarse clock, retires idle resources past their
// limits and keeps MinIdle resources ready.
func (p *Pool[T]) background(every time.Duration) {
	defer func() {
		p.mu.Lock()
		p.workers--
		p.maybeDoneLocked()
		p.mu.Unlock()
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	p.clk.advance()
	p.maintain()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			p.clk.advance()
		case <-p.kick:
		}
		p.maintain()
	}
}

// maintain retires expired idle resources and dials up to MinIdle.
func (p *Pool[T]) maintain() {
	p.mu.Lock()
	if p.closed.Load() {
		p.mu.Unlock()
		return
	}
	var old []*resource[T]
	if p.clk.timed {
		old = p.sweepLocked(p.clk.now())
	}
	if p.cfg.minIdle > 0 {
		now := p.clk.precise()
		for p.idle.len()+p.dialing-p.waiters.n < p.cfg.minIdle && p.canDialLocked(now) {
			p.startDialLocked(context.Background())
		}
	}
	p.mu.Unlock()
	for _, r := range old {
		go p.destroy(r)
	}
}

// waiter is a Get waiting for a hand-off.
type waiter[T any] struct {
	ch         chan delivery[T] // buffered 1; sent to with the pool's mu held
	prev, next *waiter[T]
	queued     bool
}

type delivery[T any] struct {
	r     *resource[T]
	err   error
	quiet time.Duration // how long nothing has proven r good
	check bool          // r is due for its check
	fresh bool          // r comes straight from its dial
}

// waitQueue is a FIFO list of waiters with O(1) removal.
type waitQueue[T any] struct {
	head, tail *waiter[T]
	n          int
	pub        *atomic.Int64 // where n is published for the lock-free paths
}

// push queues w last.
func (q *waitQueue[T]) push(w *waiter[T]) { q.insert(w, q.tail, nil) }

// pushFront queues w first: for a waiter that was served a resource that
// failed its check, and keeps its place.
func (q *waitQueue[T]) pushFront(w *waiter[T]) { q.insert(w, nil, q.head) }

// insert links w between prev and next, either of which is nil at an end
// of the queue.
func (q *waitQueue[T]) insert(w, prev, next *waiter[T]) {
	w.queued = true
	w.prev, w.next = prev, next
	if prev != nil {
		prev.next = w
	} else {
		q.head = w
	}
	if next != nil {
		next.prev = w
	} else {
		q.tail = w
	}
	q.n++
	q.pub.Store(int64(q.n))
}

func (q *waitQueue[T]) pop() *waiter[T] {
	w := q.head
	if w != nil {
		q.remove(w)
	}
	return w
}

func (q *waitQueue[T]) remove(w *waiter[T]) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
	q.n--
	q.pub.Store(int64(q.n))
}
