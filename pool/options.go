package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/nettune/nettune/internal/opterr"
)

// Option configures a [Pool] or a pool of connections: [New],
// [NewConnPool] and [NewConnPoolOf] all take it. The implementations are
// the option functions of this package (MaxSize, MinIdle, MaxIdleTime, …);
// the set is closed. Each Option validates its own value when the pool is
// built: a bad value makes the constructor return an [*OptionError] naming
// the option and the value. When the same option is given twice, the last
// one wins.
type Option interface {
	ConnOption
	// anyPool marks the options that make sense for a pool of anything,
	// so that New does not compile with a ConnOption.
	anyPool()
}

// ConnOption configures a pool of connections ([NewConnPool],
// [NewConnPoolOf]). Every [Option] is a ConnOption; [LivenessCheck] is only
// a ConnOption, since it peeks at a socket, so that giving it to [New] is a
// compile-time error.
type ConnOption interface {
	apply(*config) error
	// String is the option as it was written, such as "pool.MaxSize(10)".
	String() string
}

// OptionError is the error of a constructor that refuses an option or a
// set of options.
type OptionError struct {
	Option    ConnOption   // the option refused (nil when the set as a whole is refused)
	Conflicts []ConnOption // the options it cannot be combined with, if that is why
	Err       error        // what is wrong; may wrap errors.ErrUnsupported
}

// Error is the option as written, what is wrong with it and, if that is
// why, the options it conflicts with: "pool.MinIdle(4): must be at most
// MaxSize (conflicts with pool.MaxSize(2))". Without an Option it starts
// with "pool: " instead.
func (e *OptionError) Error() string {
	return opterr.Message("pool", e.Option, e.Option == nil, e.Conflicts, e.Err)
}

// Unwrap returns Err.
func (e *OptionError) Unwrap() error { return e.Err }

// config is the frozen result of applying the options.
type config struct {
	maxSize        int
	minIdle        int
	maxIdle        int // 0: MaxSize
	maxDials       int // 0: MaxSize
	maxIdleTime    time.Duration
	maxLifetime    time.Duration
	lifetimeJitter time.Duration // <0: none; 0: default (a tenth of maxLifetime)
	dialTimeout    time.Duration // <0: none
	backoffMin     time.Duration // <0: no backoff
	backoffMax     time.Duration
	clock          func() time.Time
	recorder       Recorder // nil: none

	health    healthChecker // nil: none; checked against the pool's type
	healthOpt ConnOption    // the option that set health, for errors

	liveness    time.Duration // pools of conns only; <0: off; 0: every checkout
	livenessOpt ConnOption    // the LivenessCheck that asked for a check, for errors; nil: none, or the default

	// given records which count options were given, for cross-checks.
	given [numCounts]bool
}

// Defaults, documented on the options.
const (
	defaultDialTimeout = 30 * time.Second
	defaultBackoffMin  = 20 * time.Millisecond
	defaultBackoffMax  = 2 * time.Second
	defaultLiveness    = time.Second
)

func defaultConfig() config {
	return config{
		maxSize:     max(8, 4*runtime.GOMAXPROCS(0)),
		dialTimeout: defaultDialTimeout,
		backoffMin:  defaultBackoffMin,
		backoffMax:  defaultBackoffMax,
		liveness:    defaultLiveness,
	}
}

// buildConfig applies opts over the defaults and checks the result as a
// whole. conn says whether the pool holds connections (the liveness check
// applies).
func buildConfig[O ConnOption](conn bool, opts []O) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if any(o) == nil {
			return config{}, &OptionError{Err: errors.New("nil option")}
		}
		if err := o.apply(&c); err != nil {
			return config{}, &OptionError{Option: o, Err: err}
		}
	}
	if !conn {
		c.liveness = -1
	}
	if !c.given[cntMaxIdle] {
		c.maxIdle = c.maxSize
	}
	if !c.given[cntMaxDials] {
		c.maxDials = c.maxSize
	}
	if err := c.checkSizes(); err != nil {
		return config{}, err
	}
	if err := c.settleLifetime(); err != nil {
		return config{}, err
	}
	return c, nil
}

// checkSizes checks that MinIdle ≤ MaxIdle ≤ MaxSize and
// MaxConcurrentDials ≤ MaxSize.
func (c *config) checkSizes() error {
	size := bound{MaxSize(c.maxSize), "MaxSize", c.maxSize, c.given[cntMaxSize]}
	idle := bound{MaxIdle(c.maxIdle), "MaxIdle", c.maxIdle, c.given[cntMaxIdle]}
	switch {
	case c.minIdle > c.maxSize:
		return size.exceededBy(MinIdle(c.minIdle))
	case c.maxIdle > c.maxSize:
		return size.exceededBy(MaxIdle(c.maxIdle))
	case c.minIdle > c.maxIdle:
		return idle.exceededBy(MinIdle(c.minIdle))
	case c.maxDials > c.maxSize:
		return size.exceededBy(MaxConcurrentDials(c.maxDials))
	}
	return nil
}

// bound is a limit another option must stay within.
type bound struct {
	opt  ConnOption
	name string
	n    int
	set  bool // given, rather than a default
}

func (b bound) exceededBy(o ConnOption) error {
	if !b.set {
		return &OptionError{Option: o, Err: fmt.Errorf("must be at most %s, which is %d by default here", b.name, b.n)}
	}
	return &OptionError{Option: o, Conflicts: []ConnOption{b.opt}, Err: fmt.Errorf("must be at most %s", b.name)}
}

// settleLifetime checks LifetimeJitter against MaxLifetime and sets its
// default.
func (c *config) settleLifetime() error {
	if c.maxLifetime > 0 {
		if c.lifetimeJitter == 0 {
			c.lifetimeJitter = c.maxLifetime / 10
		}
		if c.lifetimeJitter >= c.maxLifetime {
			return &OptionError{Option: LifetimeJitter(c.lifetimeJitter), Conflicts: []ConnOption{MaxLifetime(c.maxLifetime)},
				Err: errors.New("must be less than MaxLifetime")}
		}
	} else if c.lifetimeJitter > 0 {
		return &OptionError{Option: LifetimeJitter(c.lifetimeJitter), Err: errors.New("needs a MaxLifetime")}
	}
	c.lifetimeJitter = max(c.lifetimeJitter, 0)
	return nil
}

// countOption is an option that takes a count: MaxSize, MinIdle, MaxIdle,
// MaxConcurrentDials.
type countOption struct {
	which countKind
	n     int
}

type countKind uint8

const (
	cntMaxSize countKind = iota
	cntMinIdle
	cntMaxIdle
	cntMaxDials
	numCounts
)

// countSpecs gives each count option its name, its least value and the
// field it sets.
var countSpecs = [numCounts]struct {
	name  string
	least int
	field func(*config) *int
}{
	cntMaxSize:  {"MaxSize", 1, func(c *config) *int { return &c.maxSize }},
	cntMinIdle:  {"MinIdle", 0, func(c *config) *int { return &c.minIdle }},
	cntMaxIdle:  {"MaxIdle", 1, func(c *config) *int { return &c.maxIdle }},
	cntMaxDials: {"MaxConcurrentDials", 1, func(c *config) *int { return &c.maxDials }},
}

func (o countOption) apply(c *config) error {
	spec := countSpecs[o.which]
	switch {
	case o.n >= spec.least:
	case spec.least == 0:
		return errors.New("must not be negative")
	default:
		return fmt.Errorf("must be at least %d", spec.least)
	}
	if o.which == cntMaxSize && int64(o.n) > maxSlots {
		return fmt.Errorf("must be at most %d", int64(maxSlots))
	}
	*spec.field(c) = o.n
	c.given[o.which] = true
	return nil
}
func (o countOption) String() string {
	return fmt.Sprintf("pool.%s(%d)", countSpecs[o.which].name, o.n)
}
func (countOption) anyPool() {}

// MaxSize is the most resources the pool holds at once: idle, in use,
// being dialed and being closed together; n must be at least 1 and at most
// 4294967294 (the pool keeps a slot, a pointer wide, for each). Without it
// the limit is 4×GOMAXPROCS, and never less than 8.
func MaxSize(n int) Option { return countOption{cntMaxSize, n} }

// MinIdle is how many idle resources a background goroutine keeps ready,
// dialing new ones when the count drops below n (never beyond MaxSize, and
// not while dialing is paused after failures). n must be 0 (the default: no
// warm resources) or more, and at most MaxIdle.
func MinIdle(n int) Option { return countOption{cntMinIdle, n} }

// MaxIdle is the most idle resources the pool keeps; a resource released
// while n are idle is closed. n must be at least 1 and at most MaxSize,
// which is the default.
func MaxIdle(n int) Option { return countOption{cntMaxIdle, n} }

// MaxConcurrentDials limits how many dials run at once, so that a burst of
// callers on a cold pool does not open MaxSize connections at the same
// instant. n must be at least 1 and at most MaxSize, which is the default.
func MaxConcurrentDials(n int) Option { return countOption{cntMaxDials, n} }

// durationOption is an option that takes a duration, where 0 means the
// default and a negative value turns the limit off: MaxIdleTime,
// MaxLifetime, LifetimeJitter, DialTimeout.
type durationOption struct {
	which durationKind
	d     time.Duration
}

type durationKind uint8

const (
	durMaxIdleTime durationKind = iota
	durMaxLifetime
	durLifetimeJitter
	durDialTimeout
	numDurations
)

// durationSpecs gives each duration option its name, what 0 and a
// negative value set, and the field it sets.
var durationSpecs = [numDurations]struct {
	name     string
	def, off time.Duration
	field    func(*config) *time.Duration
}{
	durMaxIdleTime: {"MaxIdleTime", 0, 0, func(c *config) *time.Duration { return &c.maxIdleTime }},
	durMaxLifetime: {"MaxLifetime", 0, 0, func(c *config) *time.Duration { return &c.maxLifetime }},
	// 0 stays 0, settled to a tenth of MaxLifetime by buildConfig.
	durLifetimeJitter: {"LifetimeJitter", 0, -1, func(c *config) *time.Duration { return &c.lifetimeJitter }},
	durDialTimeout:    {"DialTimeout", defaultDialTimeout, -1, func(c *config) *time.Duration { return &c.dialTimeout }},
}

func (o durationOption) apply(c *config) error {
	spec := durationSpecs[o.which]
	f := spec.field(c)
	switch {
	case o.d == 0:
		*f = spec.def
	case o.d < 0:
		*f = spec.off
	default:
		*f = o.d
	}
	return nil
}
func (o durationOption) String() string {
	return fmt.Sprintf("pool.%s(%v)", durationSpecs[o.which].name, o.d)
}
func (durationOption) anyPool() {}

// MaxIdleTime closes a resource that has stayed idle for d. It is checked
// when the resource is taken and by a background goroutine, against a
// coarse clock that the goroutine advances about every d/8 (at least every
// second, at most every millisecond). 0 means the default (no limit); a
// negative value turns it off, as 0 does.
func MaxIdleTime(d time.Duration) Option { return durationOption{durMaxIdleTime, d} }

// MaxLifetime retires a resource d after it was dialed, less a random jitter
// (see [LifetimeJitter]) so that resources dialed together are not all
// replaced together. A resource in use is retired when it is released.
// 0 means the default (no limit); a negative value turns it off, as 0
// does.
func MaxLifetime(d time.Duration) Option { return durationOption{durMaxLifetime, d} }

// LifetimeJitter is the most that [MaxLifetime] is shortened by, chosen
// uniformly per resource. It must be less than MaxLifetime, and needs it.
// 0 means the default (a tenth of MaxLifetime); a negative value turns it
// off.
func LifetimeJitter(d time.Duration) Option { return durationOption{durLifetimeJitter, d} }

// DialTimeout bounds one dial. Dials do not use the context of the Get that
// started them, since a caller that gives up does not waste the dial: its
// result goes to the next waiter or the idle set. 0 means the default
// (30s); a negative value turns it off (a dial then ends only at Close).
func DialTimeout(d time.Duration) Option { return durationOption{durDialTimeout, d} }

type backoffOption struct{ min, max time.Duration }

// DialBackoff pauses dialing after a dial fails: for min after the first
// failure, doubling with each further failure up to max, each pause varied
// by ±25%. While paused, a Get that would need a dial waits for a resource in
// use or a dial in flight, and fails at once with a [*BackoffError] when
// there is neither. When the pause ends, one dial goes out alone as a probe
// (half-open): success resumes normal dialing, failure starts a longer pause.
//
// For min and max, 0 means the default (20ms, or max if less; 2s, or min
// if more); a negative min turns backoff off (every Get that needs a dial
// dials), and a negative max is an error. min must not be more than max.
func DialBackoff(min, max time.Duration) Option { return backoffOption{min, max} }

func (o backoffOption) apply(c *config) error {
	if o.min < 0 {
		c.backoffMin, c.backoffMax = -1, -1
		return nil
	}
	lo, hi := o.min, o.max
	switch {
	case hi < 0:
		return errors.New("a negative max is an error; a negative min turns backoff off")
	case hi == 0:
		hi = max(lo, defaultBackoffMax)
	}
	if lo == 0 {
		lo = min(defaultBackoffMin, hi)
	}
	if lo > hi {
		return errors.New("min is more than max")
	}
	c.backoffMin, c.backoffMax = lo, hi
	return nil
}
func (o backoffOption) String() string {
	return fmt.Sprintf("pool.DialBackoff(%v, %v)", o.min, o.max)
}
func (backoffOption) anyPool() {}

// Recorder receives the times Gets waited (see [RecordWaitTime]). A
// latency histogram with a Record(time.Duration) method fits, as it fits
// dialer.RecordConnectTime. The pool calls Record from the goroutine of
// the Get, after releasing its lock, so a Recorder shared by pools, or by
// a pool used from several goroutines, must be safe for concurrent use.
type Recorder interface {
	Record(d time.Duration)
}

// RecordWaitTime makes the pool report to r how long each Get waited for
// its resource: one Record call per resource handed out, so that r's
// count is the number of successful Gets and TryGets (Stats.Hits +
// Stats.Waits) and its sum is Stats.WaitTime.
//
//   - A Get served at once from the idle set, and TryGet, which never
//     waits, record 0, without reading the clock. Every Get counts, as
//     pgx's AcquireDuration and HikariCP's acquire timer count every
//     acquire: r's quantiles are those of all Gets, and the Gets that
//     waited are the ones above 0. (The time such a Get spends on the
//     lock and, when due, on its check is not a wait for a resource.)
//   - A Get that waited records the time from joining the queue until
//     it holds a resource that passed its check (a dial, a hand-off by a
//     Release, checks that failed and the waits after them included), on
//     the pool's clock (see [Clock]).
//   - A Get that fails records nothing, so that a timeout never passes
//     for a slow success nor an error for a fast one: Stats.Timeouts
//     counts those ended by their context, Stats.DialErrors the dials
//     that failed.
//
// Without RecordWaitTime the hot path is unchanged; with it, a Get from
// the idle set costs one Record call more.
func RecordWaitTime(r Recorder) Option { return recorderOption{r} }

type recorderOption struct{ r Recorder }

func (o recorderOption) String() string { return fmt.Sprintf("pool.RecordWaitTime(%T)", o.r) }

func (o recorderOption) apply(c *config) error {
	if o.r == nil {
		return errors.New("nil Recorder")
	}
	c.recorder = o.r
	return nil
}
func (recorderOption) anyPool() {}

type clockOption struct{ now func() time.Time }

// Clock makes the pool read time from now instead of the system clock: for
// tests, which can then move time forward by hand. With a Clock the pool
// calls now on every check that needs the time (no coarse clock); the
// background goroutine still runs on real timers.
func Clock(now func() time.Time) Option { return clockOption{now} }

func (o clockOption) apply(c *config) error {
	if o.now == nil {
		return errors.New("nil func")
	}
	c.clock = o.now
	return nil
}
func (o clockOption) String() string {
	if o.now == nil {
		return "pool.Clock(nil)"
	}
	return "pool.Clock(func)"
}
func (clockOption) anyPool() {}

// healthChecker is a HealthCheck's function, of some type.
type healthChecker interface {
	// after is the idle threshold.
	after() time.Duration
}

// healthOption carries a func(context.Context, T) error for some T.
type healthOption[T any] struct {
	threshold time.Duration
	check     func(context.Context, T) error
}

// HealthCheck runs check on a resource before a Get hands it out, on
// every way it can reach the Get (from the idle set, handed over by a
// Release, handed over from a dial, through TryGet), when at least after
// has passed since the resource was last known good: dialed, released with
// [Resource.Release], or passed the check. For a pool of connections a
// release does not count as known good (the conn may have died while
// held): a Read that returned data on it does, as for [LivenessCheck].
//
// after is a threshold: 0 means the default ([EveryCheckout]: the check runs
// on every checkout, fresh dials included, since a check given with no
// threshold is a check asked for each time); a negative value is an error.
// A threshold above EveryCheckout is measured on the pool's coarse clock
// (see [LivenessCheck]).
//
// check runs in the Get that receives the resource, with that Get's
// context and without holding the pool's lock. A resource whose check
// fails is closed (counted in [ClosedStats].Health) and the Get goes on
// with the next idle resource, or waits again at the head of the queue;
// but when the resource came straight from its own dial, the Get fails
// with an error wrapping the check's, rather than dial for ever against a
// server that drops every new connection.
//
// T is inferred from check, and must be the type the pool hands out: T of
// [New], net.Conn for [NewConnPool], C for [NewConnPoolOf]; otherwise the
// constructor returns an [*OptionError]. (Go cannot check this at compile
// time without making every option generic.)
func HealthCheck[T any](after time.Duration, check func(ctx context.Context, v T) error) Option {
	return healthOption[T]{after, check}
}

func (o healthOption[T]) apply(c *config) error {
	if o.check == nil {
		return errors.New("nil check")
	}
	if o.threshold < 0 {
		return errors.New("a negative threshold is an error; 0 (the default) or EveryCheckout checks on every checkout")
	}
	c.health, c.healthOpt = o, o
	return nil
}
func (o healthOption[T]) after() time.Duration { return always(o.threshold) }
func (o healthOption[T]) String() string {
	return fmt.Sprintf("pool.HealthCheck[%s](%v, func)", typeName[T](), o.threshold)
}
func (healthOption[T]) anyPool() {}

// healthFor returns the HealthCheck's function if it checks a T; ok is
// false, with an error naming the option, if it checks another type.
func healthFor[T any](c *config) (check func(context.Context, T) error, err error) {
	if c.health == nil {
		return nil, nil
	}
	o, ok := c.health.(healthOption[T])
	if !ok {
		return nil, &OptionError{Option: c.healthOpt, Err: fmt.Errorf("checks another type than the pool's %s", typeName[T]())}
	}
	return o.check, nil
}

// typeName names T, even when T is an interface type.
func typeName[T any]() string { return fmt.Sprintf("%T", (*T)(nil))[1:] }

// EveryCheckout is the threshold of a [LivenessCheck] or a [HealthCheck]
// that checks on every checkout, hand-offs and fresh dials included:
// LivenessCheck(EveryCheckout), HealthCheck(EveryCheckout, check). It is
// one nanosecond, since a resource is always quiet for at least that long;
// the pool takes it (and any threshold up to it) to mean "always", whatever
// its clock says, so that a coarse clock that has not ticked since a
// resource was last proven good never lets it skip the check.
const EveryCheckout time.Duration = 1

// always maps a threshold of at most EveryCheckout to 0, which the pool
// compares with the quiet time: the check is then due even when the quiet
// time is measured as 0.
func always(d time.Duration) time.Duration {
	if d <= EveryCheckout {
		return 0
	}
	return d
}

type livenessOption time.Duration

// LivenessCheck is for pools of connections ([NewConnPool],
// [NewConnPoolOf]; it is a [ConnOption], which [New] does not take):
// before handing out a connection that has been quiet for at least d,
// peek at its socket without blocking and close it if the peer has closed
// or reset it, or (plain connections only) has sent bytes nobody asked
// for. Quiet is the time since the peer last proved alive: the dial, the
// last passed check, or the last Read on the connection that returned
// data, whichever is latest. Returning a conn to the pool proves nothing,
// since the peer may have closed it while it was held. The check applies
// on every way a connection reaches a Get: from the idle set, handed over
// by a Close or a dial to a Get that was waiting, through TryGet; it runs
// in the Get that receives the connection, off the pool's lock (see
// [HealthCheck] for what happens when it fails). Quiet time is measured on
// the pool's coarse clock, which can lag by one tick: d/8, but at least
// 1ms and at most 1s.
//
// d is a threshold: 0 means the default (1s where the platform supports
// the check, that is on unix; elsewhere off); a negative value turns it
// off. [EveryCheckout] checks on every checkout, hand-offs and fresh dials
// included, whatever the clock says, so that no connection is handed out
// whose death (end of stream, reset, or on a plain connection unrequested
// bytes) had reached the client's socket when the Get received it. Where
// the platform lacks the check, asking for it (a positive d) makes the
// constructor return an [*OptionError] wrapping [errors.ErrUnsupported]. A
// larger d saves the system call (about half a microsecond) on connections
// in steady use, at the price of handing out one that died less than d
// after it last proved alive.
//
// Whatever d is, a plain connection returned with a Write after its last
// Read (a reply may be on its way) is peeked at on its next checkout, and
// closed if bytes are waiting then. See the package documentation for
// what this cannot see, and for TLS.
func LivenessCheck(d time.Duration) ConnOption { return livenessOption(d) }

func (o livenessOption) apply(c *config) error {
	switch d := time.Duration(o); {
	case d == 0:
		c.liveness, c.livenessOpt = defaultLiveness, nil
	case d < 0:
		c.liveness, c.livenessOpt = -1, nil
	default:
		c.liveness, c.livenessOpt = always(d), o
	}
	return nil
}
func (o livenessOption) String() string {
	return fmt.Sprintf("pool.LivenessCheck(%v)", time.Duration(o))
}
