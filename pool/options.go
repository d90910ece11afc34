package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Option configures a [Pool] or a [ConnPool]. The implementations are the
// option functions of this package (MaxSize, MinIdle, MaxIdleTime, …); the
// set is closed. Each Option validates its own value when the pool is built:
// a bad value makes [New] or [NewConnPool] return an error naming the option
// and the value. When the same option is given twice, the last one wins.
type Option interface {
	apply(*config) error
	// String is the option as it was written, such as "pool.MaxSize(10)".
	String() string
}

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

	health      any // func(context.Context, T) error, checked against T in New
	healthAfter time.Duration

	liveness    time.Duration // ConnPool only; <0: off
	livenessSet bool

	// set records which options were given, for cross-checks.
	maxSizeSet, maxIdleSet, maxDialsSet bool
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
// whole. conn says whether the caller is NewConnPool.
func buildConfig(conn bool, opts []Option) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return config{}, errors.New("pool: nil Option")
		}
		if err := o.apply(&c); err != nil {
			return config{}, err
		}
		if _, ok := o.(livenessOption); ok && !conn {
			return config{}, fmt.Errorf("pool: %v applies to NewConnPool only", o)
		}
	}
	if !conn {
		c.liveness = -1
	}
	if !c.maxIdleSet {
		c.maxIdle = c.maxSize
	}
	if !c.maxDialsSet {
		c.maxDials = c.maxSize
	}
	if c.minIdle > c.maxSize {
		return config{}, fmt.Errorf("pool: MinIdle(%d) is more than MaxSize(%d)", c.minIdle, c.maxSize)
	}
	if c.maxIdle > c.maxSize {
		return config{}, fmt.Errorf("pool: MaxIdle(%d) is more than MaxSize(%d)", c.maxIdle, c.maxSize)
	}
	if c.minIdle > c.maxIdle {
		return config{}, fmt.Errorf("pool: MinIdle(%d) is more than MaxIdle(%d)", c.minIdle, c.maxIdle)
	}
	if c.maxDials > c.maxSize {
		return config{}, fmt.Errorf("pool: MaxConcurrentDials(%d) is more than MaxSize(%d)", c.maxDials, c.maxSize)
	}
	if c.maxLifetime > 0 {
		if c.lifetimeJitter == 0 {
			c.lifetimeJitter = c.maxLifetime / 10
		}
		if c.lifetimeJitter >= c.maxLifetime {
			return config{}, fmt.Errorf("pool: LifetimeJitter(%v) is not less than MaxLifetime(%v)", c.lifetimeJitter, c.maxLifetime)
		}
	} else if c.lifetimeJitter > 0 {
		return config{}, fmt.Errorf("pool: LifetimeJitter(%v) needs MaxLifetime", c.lifetimeJitter)
	}
	if c.lifetimeJitter < 0 {
		c.lifetimeJitter = 0
	}
	return c, nil
}

type maxSizeOption int

// MaxSize is the most resources the pool holds at once: idle, in use,
// being dialed and being closed together; n must be at least 1. Without it the limit is
// 4×GOMAXPROCS, and never less than 8.
func MaxSize(n int) Option { return maxSizeOption(n) }

func (o maxSizeOption) apply(c *config) error {
	if o < 1 {
		return fmt.Errorf("pool: %v: must be at least 1", o)
	}
	c.maxSize, c.maxSizeSet = int(o), true
	return nil
}
func (o maxSizeOption) String() string { return fmt.Sprintf("pool.MaxSize(%d)", int(o)) }

type minIdleOption int

// MinIdle is how many idle resources a background goroutine keeps ready,
// dialing new ones when the count drops below n (never beyond MaxSize, and
// not while dialing is paused after failures). n must be 0 (the default: no
// warm resources) or more, and at most MaxIdle.
func MinIdle(n int) Option { return minIdleOption(n) }

func (o minIdleOption) apply(c *config) error {
	if o < 0 {
		return fmt.Errorf("pool: %v: must not be negative", o)
	}
	c.minIdle = int(o)
	return nil
}
func (o minIdleOption) String() string { return fmt.Sprintf("pool.MinIdle(%d)", int(o)) }

type maxIdleOption int

// MaxIdle is the most idle resources the pool keeps; a resource released
// while n are idle is closed. n must be at least 1 and at most MaxSize,
// which is the default.
func MaxIdle(n int) Option { return maxIdleOption(n) }

func (o maxIdleOption) apply(c *config) error {
	if o < 1 {
		return fmt.Errorf("pool: %v: must be at least 1", o)
	}
	c.maxIdle, c.maxIdleSet = int(o), true
	return nil
}
func (o maxIdleOption) String() string { return fmt.Sprintf("pool.MaxIdle(%d)", int(o)) }

type maxDialsOption int

// MaxConcurrentDials limits how many dials run at once, so that a burst of
// callers on a cold pool does not open MaxSize connections at the same
// instant. n must be at least 1 and at most MaxSize, which is the default.
func MaxConcurrentDials(n int) Option { return maxDialsOption(n) }

func (o maxDialsOption) apply(c *config) error {
	if o < 1 {
		return fmt.Errorf("pool: %v: must be at least 1", o)
	}
	c.maxDials, c.maxDialsSet = int(o), true
	return nil
}
func (o maxDialsOption) String() string { return fmt.Sprintf("pool.MaxConcurrentDials(%d)", int(o)) }

type maxIdleTimeOption time.Duration

// MaxIdleTime closes a resource that has stayed idle for d. It is checked
// when the resource is taken and by a background goroutine, against a coarse
// clock that the goroutine advances about every d/8 (at least every second,
// at most every millisecond). Zero or negative: no limit (the default).
func MaxIdleTime(d time.Duration) Option { return maxIdleTimeOption(d) }

func (o maxIdleTimeOption) apply(c *config) error {
	c.maxIdleTime = max(0, time.Duration(o))
	return nil
}
func (o maxIdleTimeOption) String() string {
	return fmt.Sprintf("pool.MaxIdleTime(%v)", time.Duration(o))
}

type maxLifetimeOption time.Duration

// MaxLifetime retires a resource d after it was dialed, less a random jitter
// (see [LifetimeJitter]) so that resources dialed together are not all
// replaced together. A resource in use is retired when it is released.
// Zero or negative: no limit (the default).
func MaxLifetime(d time.Duration) Option { return maxLifetimeOption(d) }

func (o maxLifetimeOption) apply(c *config) error {
	c.maxLifetime = max(0, time.Duration(o))
	return nil
}
func (o maxLifetimeOption) String() string {
	return fmt.Sprintf("pool.MaxLifetime(%v)", time.Duration(o))
}

type lifetimeJitterOption time.Duration

// LifetimeJitter is the most that [MaxLifetime] is shortened by, chosen
// uniformly per resource. It must be less than MaxLifetime. Zero: a tenth of
// MaxLifetime (the default); negative: no jitter.
func LifetimeJitter(d time.Duration) Option { return lifetimeJitterOption(d) }

func (o lifetimeJitterOption) apply(c *config) error {
	c.lifetimeJitter = time.Duration(o)
	if o < 0 {
		c.lifetimeJitter = -1
	}
	return nil
}
func (o lifetimeJitterOption) String() string {
	return fmt.Sprintf("pool.LifetimeJitter(%v)", time.Duration(o))
}

type dialTimeoutOption time.Duration

// DialTimeout bounds one dial. Dials do not use the context of the Get that
// started them, since a caller that gives up does not waste the dial: its
// result goes to the next waiter or the idle set. Zero: 30s (the default);
// negative: no limit but Close.
func DialTimeout(d time.Duration) Option { return dialTimeoutOption(d) }

func (o dialTimeoutOption) apply(c *config) error {
	switch {
	case o == 0:
		c.dialTimeout = defaultDialTimeout
	case o < 0:
		c.dialTimeout = -1
	default:
		c.dialTimeout = time.Duration(o)
	}
	return nil
}
func (o dialTimeoutOption) String() string {
	return fmt.Sprintf("pool.DialTimeout(%v)", time.Duration(o))
}

type backoffOption struct{ min, max time.Duration }

// DialBackoff pauses dialing after a dial fails: for min after the first
// failure, doubling with each further failure up to max, each pause varied
// by ±25%. While paused, a Get that would need a dial waits for a resource in
// use or a dial in flight, and fails at once with a [*BackoffError] when
// there is neither. When the pause ends, one dial goes out alone as a probe
// (half-open): success resumes normal dialing, failure starts a longer pause.
// Defaults: 20ms and 2s. A negative min turns backoff off (every Get that
// needs a dial dials); otherwise both must be positive and min ≤ max.
func DialBackoff(min, max time.Duration) Option { return backoffOption{min, max} }

func (o backoffOption) apply(c *config) error {
	if o.min < 0 {
		c.backoffMin, c.backoffMax = -1, -1
		return nil
	}
	if o.min == 0 || o.max <= 0 || o.min > o.max {
		return fmt.Errorf("pool: %v: need 0 < min ≤ max, or a negative min for no backoff", o)
	}
	c.backoffMin, c.backoffMax = o.min, o.max
	return nil
}
func (o backoffOption) String() string {
	return fmt.Sprintf("pool.DialBackoff(%v, %v)", o.min, o.max)
}

type clockOption struct{ now func() time.Time }

// Clock makes the pool read time from now instead of the system clock: for
// tests, which can then move time forward by hand. With a Clock the pool
// calls now on every check that needs the time (no coarse clock); the
// background goroutine still runs on real timers.
func Clock(now func() time.Time) Option { return clockOption{now} }

func (o clockOption) apply(c *config) error {
	if o.now == nil {
		return errors.New("pool: pool.Clock(nil): nil func")
	}
	c.clock = o.now
	return nil
}
func (o clockOption) String() string { return "pool.Clock(func)" }

// healthOption carries a func(context.Context, T) error for some T.
type healthOption[T any] struct {
	after time.Duration
	check func(context.Context, T) error
}

// HealthCheck runs check on a resource before a Get hands it out, on
// every way it can reach the Get (from the idle set, handed over by a
// Release, handed over from a dial, through TryGet), when at least after
// has passed since the resource was last known good: dialed, released with
// [Resource.Release], or passed the check. after is 0 to check on every
// checkout, fresh dials included. For a [ConnPool] a Close does not count
// as known good (the conn may have died while held): a Read that returned
// data on its [*Conn] does, as for [LivenessCheck].
//
// check runs in the Get that receives the resource, with that Get's
// context and without holding the pool's lock. A resource whose check
// fails is closed (counted in [ClosedStats].Health) and the Get goes on
// with the next idle resource, or waits again at the head of the queue;
// but when the resource came straight from its own dial, the Get fails
// with an error wrapping the check's, rather than dial for ever against a
// server that drops every new connection. T must be the pool's type, or
// [New] returns an error.
func HealthCheck[T any](after time.Duration, check func(ctx context.Context, v T) error) Option {
	return healthOption[T]{after, check}
}

func (o healthOption[T]) apply(c *config) error {
	if o.check == nil {
		return fmt.Errorf("pool: %v: nil check", o)
	}
	if o.after < 0 {
		return fmt.Errorf("pool: %v: negative idle threshold", o)
	}
	c.health, c.healthAfter = o.check, o.after
	return nil
}
func (o healthOption[T]) String() string {
	var zero T
	return fmt.Sprintf("pool.HealthCheck[%T](%v, func)", zero, o.after)
}

type livenessOption time.Duration

// LivenessCheck is for [NewConnPool] only: before handing out a
// connection that has been quiet for at least d, peek at its socket
// without blocking and close it if the peer has closed or reset it, or
// (plain connections only) has sent bytes nobody asked for. Quiet is the
// time since the peer last proved alive: the dial, the last passed check,
// or the last Read on its [*Conn] that returned data, whichever is latest.
// Returning a conn with Close proves nothing, since the peer may have
// closed it while it was held. The check applies on every way a
// connection reaches a Get: from the idle set, handed over by a Close or
// a dial to a Get that was waiting, through TryGet; it runs in the Get
// that receives the connection, off the pool's lock (see [HealthCheck]
// for what happens when it fails). Quiet time is measured on the pool's
// coarse clock, which can lag by one tick: d/8, but at least 1ms and at
// most 1s.
//
// d = 0 checks on every checkout, hand-offs and fresh dials included: no
// connection is handed out whose death (end of stream, reset, or on a
// plain connection unrequested bytes) had reached the client's socket when
// the Get received it. A
// larger d saves the system call (about half a microsecond) on
// connections in steady use, at the price of handing out one that died
// less than d after it last proved alive.
//
// Whatever d is, a plain connection whose *Conn was closed with a Write
// after its last Read (a reply may be on its way) is peeked at on its next
// checkout, and closed if bytes are waiting then. See the package
// documentation for what this cannot see, and for TLS.
//
// Negative: off. Default: on, with d = 1s, where the platform supports it
// (unix); elsewhere asking for it makes NewConnPool fail with an error
// wrapping [errors.ErrUnsupported].
func LivenessCheck(d time.Duration) Option { return livenessOption(d) }

func (o livenessOption) apply(c *config) error {
	c.liveness, c.livenessSet = time.Duration(o), true
	if o < 0 {
		c.liveness = -1
	}
	return nil
}
func (o livenessOption) String() string {
	return fmt.Sprintf("pool.LivenessCheck(%v)", time.Duration(o))
}
