package latency

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/nettune/nettune/internal/opterr"
)

// Option configures a Histogram or a Recorder. Options print themselves
// as the call that made them ("latency.Scale(8)", for logs and error
// messages) and validate their own values: a bad one makes [New] or
// [NewRecorder] return an [*OptionError]. When two options set the same
// thing ([Scale] and [RelativeError] both set the scale), the last wins.
type Option interface {
	apply(*config) error
	String() string
}

// OptionError is the error of [New] or [NewRecorder] refusing an option.
type OptionError struct {
	Option    Option   // the option refused (nil when the set as a whole is refused)
	Conflicts []Option // the options it cannot be combined with, if that is why
	Err       error    // what is wrong
}

// Error is the option as written and what is wrong with it, such as
// "latency.Scale(9): scale must be between 0 and 8", followed, if that is
// why, by " (conflicts with <options>)".
func (e *OptionError) Error() string {
	return opterr.Message("latency", e.Option, e.Option == nil, e.Conflicts, e.Err)
}

// Unwrap returns Err.
func (e *OptionError) Unwrap() error { return e.Err }

// refuse returns the OptionError refusing o for the reason format says.
func refuse(o Option, format string, args ...any) error {
	return &OptionError{Option: o, Err: fmt.Errorf(format, args...)}
}

type config struct {
	scale  int
	shards int
}

func defaultConfig() config {
	n := 1 << bits.Len(uint(4*runtime.GOMAXPROCS(0)-1))
	return config{scale: DefaultScale, shards: min(n, maxShards)}
}

const maxShards = 64

type scaleOption int

// Scale sets the resolution: 2^s buckets per doubling, for s from
// [MinScale] to [MaxScale], the schema of a Prometheus native histogram and
// the scale of an OpenTelemetry exponential histogram. Quantiles are then
// within [ErrorAtScale](s) of the exact value.
func Scale(s int) Option { return scaleOption(s) }

func (o scaleOption) String() string { return fmt.Sprintf("latency.Scale(%d)", int(o)) }
func (o scaleOption) apply(c *config) error {
	if o < MinScale || o > MaxScale {
		return refuse(o, "scale must be between %d and %d", MinScale, MaxScale)
	}
	c.scale = int(o)
	return nil
}

type relErrOption float64

// RelativeError picks the coarsest scale whose quantile error is at most e:
// 0.01 gives scale 6 (0.54%), 0.002 scale 8 (0.135%). The finest error on
// offer is [ErrorAtScale]([MaxScale]); asking for less is an error.
func RelativeError(e float64) Option { return relErrOption(e) }

func (o relErrOption) String() string { return fmt.Sprintf("latency.RelativeError(%g)", float64(o)) }
func (o relErrOption) apply(c *config) error {
	e := float64(o)
	if math.IsNaN(e) || e <= 0 || e >= 1 {
		return refuse(o, "relative error must be in (0, 1)")
	}
	for s := MinScale; s <= MaxScale; s++ {
		if ErrorAtScale(s) <= e {
			c.scale = s
			return nil
		}
	}
	return refuse(o, "finest relative error on offer is %.5f (scale %d)", ErrorAtScale(MaxScale), MaxScale)
}

type shardsOption int

// Shards sets how many independent counter sets writers on the atomic path
// spread over (picked by stack address), a power of two from 1 to 64. The
// default is 4×GOMAXPROCS rounded up to a power of two (at most 64).
// The atomic path serves a [Recorder], RecordN, RecordCorrected, Merge and
// every Record in builds without the pinned path (-race, compilers other
// than gc, -tags nettune_atomic); there, Record in a gc build uses one
// shard per P instead (GOMAXPROCS at New). Shards are allocated when first
// written, so unused ones cost 8 bytes each.
func Shards(n int) Option { return shardsOption(n) }

func (o shardsOption) String() string { return fmt.Sprintf("latency.Shards(%d)", int(o)) }
func (o shardsOption) apply(c *config) error {
	if o < 1 || o > maxShards || o&(o-1) != 0 {
		return refuse(o, "shards must be a power of two from 1 to %d", maxShards)
	}
	c.shards = int(o)
	return nil
}

// Histogram records non-negative durations or integers into base-2
// exponential buckets with a bounded relative error, and keeps the exact
// count, sum, minimum and maximum.
//
// A Histogram is safe for concurrent use: Record never blocks and never
// allocates once the shard and octave it writes to exist (the first value
// in an octave allocates its 2^scale counters). Record is the fast path;
// reading (Snapshot) runs alongside writers without stopping them, so a
// snapshot of a live histogram is consistent per counter but not
// instantaneous. Use a [Recorder], the exact-interval path, when each value
// must land in exactly one interval.
//
// The zero value is ready to use: it records like a Histogram from New()
// (at [DefaultScale], with the default shards), set up on first use. Its
// Record takes a detour to reach that set-up (about 9 ns per value instead
// of 6 here), so New remains the choice for a histogram on a hot path.
type Histogram struct {
	scale int
	// table is nil only in a zero Histogram, which keeps its values in
	// lazy (see self); New's histograms never change these fields, so
	// every path reads them without synchronisation.
	table *scaleTable
	mask  uintptr
	// shards take the atomic path, picked by stack address (see shard).
	shards []atomic.Pointer[shard]
	// pinned holds one shard per P (GOMAXPROCS at New) for the pinned
	// path; nil where that path is not built or for a Recorder's histograms.
	pinned []atomic.Pointer[shard]
	// bulk counts the values taken in bulk (see MaxBulkCount), on a cache
	// line of its own: RecordN writes it, Record never touches it.
	bulk *budget
	// lazy is the histogram a zero Histogram keeps its values in.
	lazy lazy[Histogram]
}

// self returns the histogram that holds h's values: h itself when New
// made it, or, for a zero Histogram, the one made for it on first use.
func (h *Histogram) self() *Histogram {
	if h.table != nil {
		return h
	}
	return h.lazy.get(newDefaultHistogram)
}

func newDefaultHistogram() *Histogram { return newHistogram(defaultConfig()) }

// lazy holds what a zero value (of Histogram or Recorder) keeps its state
// in, made with the defaults on first use.
type lazy[T any] struct{ p atomic.Pointer[T] }

// get returns the value, making it the first time (a caller that loses the
// race to store its own drops it). It is not inlined, so that the self
// methods that call it are.
//
//go:noinline
func (l *lazy[T]) get(make func() *T) *T {
	if v := l.p.Load(); v != nil {
		return v
	}
	l.p.CompareAndSwap(nil, make())
	return l.p.Load()
}

// MaxBulkCount bounds the values a [Histogram], or one interval of a
// [Recorder], takes in bulk: [Histogram.RecordN] with n > 1,
// [Histogram.RecordCorrected] and [Recorder.RecordCorrected] when they add
// synthetic samples (the value and its samples), and [Histogram.Merge] (the
// snapshot's Count plus Invalid). A call that would take the total of those
// past MaxBulkCount records nothing and returns an error wrapping
// [ErrCountLimit]. Values recorded one at a time are not counted against
// it: 2^62 of them would take 146 years at one per nanosecond. Together
// this keeps every count of a histogram below 2^64, so that counts never
// wrap (never go backwards) and every snapshot encodes to bytes that
// decode.
const MaxBulkCount = 1 << 62

// ErrCountLimit is wrapped by the error of a call that would take a count
// past what it can hold: a bulk add past [MaxBulkCount], or a
// [Snapshot.Merge] or [Snapshot.Add] whose Count or Invalid would exceed
// 2^64-1. Such a call changes nothing.
var ErrCountLimit = errors.New("latency: count limit")

// budget counts values taken in bulk, alone on its cache line.
type budget struct {
	n atomic.Uint64
	_ [56]byte
}

// take counts n more values, or reports false, counting nothing, when
// that would take the total past MaxBulkCount.
func (b *budget) take(n uint64) bool {
	for {
		old := b.n.Load()
		if n > MaxBulkCount-old {
			return false
		}
		if b.n.CompareAndSwap(old, old+n) {
			return true
		}
	}
}

// give returns n values taken earlier.
func (b *budget) give(n uint64) { b.n.Add(-n) }

func bulkLimitError(call string, n uint64) error {
	return fmt.Errorf("%w: %s: %d more values would take those recorded in bulk past MaxBulkCount (2^62)", ErrCountLimit, call, n)
}

// New returns an empty Histogram. Without options it records at
// [DefaultScale] (quantiles within 0.55%) from 0 to [MaxValue] nanoseconds,
// and never fails: the only errors are [*OptionError]s for bad options.
// The first histogram of a process at a given scale computes that scale's
// bucket boundaries (under 1 ms at the default scale, once).
func New(opts ...Option) (*Histogram, error) {
	c, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	return newHistogram(c), nil
}

// buildConfig applies opts over the defaults.
func buildConfig(opts []Option) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return c, &OptionError{Err: errors.New("nil Option")}
		}
		if err := o.apply(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

func newHistogram(c config) *Histogram {
	h := &Histogram{
		scale:  c.scale,
		table:  tableAt(c.scale),
		mask:   uintptr(c.shards - 1),
		shards: make([]atomic.Pointer[shard], c.shards),
		bulk:   new(budget),
	}
	if pinnedPath {
		h.pinned = make([]atomic.Pointer[shard], runtime.GOMAXPROCS(0))
	}
	return h
}

// newAtomicHistogram returns a histogram whose every write takes the atomic
// path, as a Recorder needs.
func newAtomicHistogram(c config) *Histogram {
	h := newHistogram(c)
	h.pinned = nil
	return h
}

// Scale reports the scale the histogram records at (see [Scale]).
func (h *Histogram) Scale() int { return h.self().scale }

// RelativeError reports the bound on the relative error of every quantile.
func (h *Histogram) RelativeError() float64 { return ErrorAtScale(h.self().scale) }

// shardIndex picks a shard from the current goroutine's stack address:
// goroutines have distinct stacks, so concurrent writers mostly land on
// distinct shards, at the cost of a shift and a mask.
func shardIndex(mask uintptr) uintptr {
	var x byte
	a := uintptr(unsafe.Pointer(&x)) >> 11
	// Stacks are aligned to their power-of-two size, so two goroutines'
	// addresses may differ only in a high bit: fold high bits down.
	return (a ^ a>>3 ^ a>>6 ^ a>>9) & mask
}

func (h *Histogram) shard(k uintptr) *shard {
	if sh := h.shards[k].Load(); sh != nil {
		return sh
	}
	h.shards[k].CompareAndSwap(nil, newShard())
	return h.shards[k].Load()
}

// Record records a duration. Negative durations are counted by Invalid and
// kept out of every statistic. Safe for concurrent use; 0 allocations once
// the octave it lands in exists. This is the fast path: in builds with the
// gc compiler (without -race or the nettune_atomic tag) it pins the
// goroutine to its P and adds to that P's own counters with plain writes,
// no locked instruction (see record_pinned.go).
func (h *Histogram) Record(d time.Duration) { h.record(int64(d)) }

// RecordValue records a non-negative integer, such as a byte count or a
// queue depth; negative values are counted by Invalid. Like Record: the
// value is bucketed as a number of nanoseconds, so quantiles keep their
// relative error, but the exports (in seconds) show it divided by 1e9.
func (h *Histogram) RecordValue(v int64) { h.record(v) }

// recordShared records v on the atomic path.
func (h *Histogram) recordShared(v int64) {
	h = h.self()
	h.recordAtomic(h.shard(shardIndex(h.mask)), v)
}

// RecordN records the value v n times, as n calls to RecordValue would,
// with a few atomic adds. With n > 1 the values count against
// [MaxBulkCount]: when they would take the histogram past it, RecordN
// records nothing and returns an error wrapping [ErrCountLimit]. It
// returns nil otherwise.
func (h *Histogram) RecordN(v int64, n uint64) error {
	h = h.self()
	if n == 0 {
		return nil
	}
	if n > 1 && !h.bulk.take(n) {
		return bulkLimitError(fmt.Sprintf("RecordN(%d, %d)", v, n), n)
	}
	h.recordNAtomic(h.shard(shardIndex(h.mask)), v, n)
	return nil
}

// RecordCorrected records d and, when d exceeds expectedInterval > 0, the
// samples a closed-loop measurement stalled by d never took: d-interval,
// d-2·interval, … down to the last one at or above interval (the correction
// HdrHistogram's RecordCorrectedValue makes for coordinated omission). The
// synthetic samples are added bucket by bucket, so a long stall costs one
// counter update per bucket it spans, not one per missed sample.
//
// When it adds synthetic samples, d and the samples count against
// [MaxBulkCount]: past it, RecordCorrected records nothing and returns an
// error wrapping [ErrCountLimit] (only a meaningless interval gets there:
// d/expectedInterval above 2^62 needs an interval below 2 ns). It returns
// nil otherwise.
func (h *Histogram) RecordCorrected(d, expectedInterval time.Duration) error {
	h = h.self()
	sh := h.shard(shardIndex(h.mask))
	v, iv := int64(d), int64(expectedInterval)
	if v < 0 || iv <= 0 || v-iv < iv {
		h.recordAtomic(sh, v)
		return nil
	}
	extra := uint64((v - iv) / iv)
	if !h.bulk.take(1 + extra) {
		return bulkLimitError(fmt.Sprintf("RecordCorrected(%v, %v)", d, expectedInterval), 1+extra)
	}
	h.recordAtomic(sh, v)
	h.recordArithmetic(sh, v-iv, iv, extra)
	return nil
}
