package latency

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Option configures a Histogram or a Recorder. Options print themselves
// (for logs and error messages) and validate their own values.
type Option interface {
	apply(*config) error
	String() string
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

// Scale sets the resolution: 2^s buckets per power of two, for s from
// [MinScale] to [MaxScale], the schema of a Prometheus native histogram and
// the scale of an OpenTelemetry exponential histogram. Quantiles are then
// within [ErrorAtScale](s) of the exact value.
func Scale(s int) Option { return scaleOption(s) }

func (o scaleOption) String() string { return fmt.Sprintf("latency.Scale(%d)", int(o)) }
func (o scaleOption) apply(c *config) error {
	if o < MinScale || o > MaxScale {
		return fmt.Errorf("latency: %v: scale must be between %d and %d", o, MinScale, MaxScale)
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
		return fmt.Errorf("latency: %v: relative error must be in (0, 1)", o)
	}
	for s := MinScale; s <= MaxScale; s++ {
		if ErrorAtScale(s) <= e {
			c.scale = s
			return nil
		}
	}
	return fmt.Errorf("latency: %v: finest relative error on offer is %.5f (scale %d)", o, ErrorAtScale(MaxScale), MaxScale)
}

type shardsOption int

// Shards sets how many independent counter sets writers spread over, a
// power of two from 1 to 64. The default is 4×GOMAXPROCS rounded up to a
// power of two (at most 64). Shards are allocated when first written, so
// unused ones cost 8 bytes each.
func Shards(n int) Option { return shardsOption(n) }

func (o shardsOption) String() string { return fmt.Sprintf("latency.Shards(%d)", int(o)) }
func (o shardsOption) apply(c *config) error {
	if o < 1 || o > maxShards || o&(o-1) != 0 {
		return fmt.Errorf("latency: %v: shards must be a power of two from 1 to %d", o, maxShards)
	}
	c.shards = int(o)
	return nil
}

// shard is one independent set of counters. Writers pick a shard from the
// address of their stack, so goroutines on different CPUs rarely share one.
type shard struct {
	_ [64]byte // keeps these words off the cache lines of the object before
	// The buckets hold most of the sum (see chunk); sumLo and sumHi hold the
	// rest, 128 bits mod 2^128: values above MaxValue and merge adjustments.
	sumLo    atomic.Uint64
	sumHi    atomic.Uint64
	min      atomic.Int64  // math.MaxInt64 while empty; read by every record
	max      atomic.Int64  // -1 while empty; read by every record
	zero     atomic.Uint64 // values equal to 0
	overflow atomic.Uint64 // values above MaxValue
	invalid  atomic.Uint64 // negative values: counted, never in any statistic
	_        [8]byte
	chunks   [numChunks]atomic.Pointer[chunk]
	mu       sync.Mutex // serializes chunk allocation
	_        [64]byte
}

func newShard() *shard {
	sh := new(shard)
	sh.min.Store(math.MaxInt64)
	sh.max.Store(-1)
	return sh
}

// Histogram records non-negative durations or integers into base-2
// exponential buckets with a bounded relative error, and keeps the exact
// count, sum, minimum and maximum.
//
// A Histogram is safe for concurrent use: Record never blocks and never
// allocates once the shard and octave it writes to exist (the first value
// in an octave allocates it under a short lock). Reading (Snapshot)
// runs alongside writers without stopping them; use a [Recorder] when each
// value must land in exactly one interval.
type Histogram struct {
	scale  int
	table  *scaleTable
	mask   uintptr
	shards []atomic.Pointer[shard]
}

// New returns an empty Histogram. Without options it records at
// [DefaultScale] (quantiles within 0.55%) from 0 to [MaxValue] nanoseconds.
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
			return c, errors.New("latency: nil Option")
		}
		if err := o.apply(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

func newHistogram(c config) *Histogram {
	return &Histogram{
		scale:  c.scale,
		table:  &tables[c.scale],
		mask:   uintptr(c.shards - 1),
		shards: make([]atomic.Pointer[shard], c.shards),
	}
}

// Scale reports the scale the histogram records at (see [Scale]).
func (h *Histogram) Scale() int { return h.scale }

// RelativeError reports the bound on the relative error of every quantile.
func (h *Histogram) RelativeError() float64 { return ErrorAtScale(h.scale) }

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
// kept out of every statistic. Safe for concurrent use; 0 allocations.
func (h *Histogram) Record(d time.Duration) { h.recordIn(h.shard(shardIndex(h.mask)), int64(d)) }

// RecordValue records a non-negative integer, such as a byte count or a
// queue depth; negative values are counted by Invalid.
func (h *Histogram) RecordValue(v int64) { h.recordIn(h.shard(shardIndex(h.mask)), v) }

// RecordN records the value v n times, as n calls to RecordValue would.
func (h *Histogram) RecordN(v int64, n uint64) {
	if n == 0 {
		return
	}
	h.recordNIn(h.shard(shardIndex(h.mask)), v, n)
}

func casMin(p *atomic.Int64, v int64) {
	for old := p.Load(); v < old; old = p.Load() {
		if p.CompareAndSwap(old, v) {
			return
		}
	}
}

func casMax(p *atomic.Int64, v int64) {
	for old := p.Load(); v > old; old = p.Load() {
		if p.CompareAndSwap(old, v) {
			return
		}
	}
}

// RecordCorrected records d and, when d exceeds expectedInterval > 0, the
// samples a closed-loop measurement stalled by d never took: d-interval,
// d-2·interval, … down to the last one at or above interval (the correction
// HdrHistogram's RecordCorrectedValue makes for coordinated omission). The
// synthetic samples are added bucket by bucket, so a long stall costs one
// counter update per bucket it spans, not one per missed sample.
func (h *Histogram) RecordCorrected(d, expectedInterval time.Duration) {
	sh := h.shard(shardIndex(h.mask))
	v, iv := int64(d), int64(expectedInterval)
	if v < 0 || iv <= 0 || v-iv < iv {
		h.recordIn(sh, v)
		return
	}
	h.recordIn(sh, v)
	h.recordArithmetic(sh, v-iv, iv, uint64((v-iv)/iv))
}
