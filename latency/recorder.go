package latency

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Recorder records into a histogram in intervals: Interval hands back what
// was recorded since the previous call and starts a new interval, while
// writers keep recording without blocking. Every value lands in exactly one
// interval, with its count, sum, minimum and maximum together (the job of
// HdrHistogram's Recorder).
//
// Writers register in the current phase with one atomic add on a sharded
// epoch counter; Interval flips the phase and waits only for writers that
// registered in the old phase and have not yet finished, which takes
// nanoseconds. A Recorder is safe for concurrent use.
//
// The zero value is ready to use: it records like a Recorder from
// NewRecorder() (at [DefaultScale]), set up on first use.
type Recorder struct {
	hist [2]*Histogram
	// epochs is nil only in a zero Recorder, which keeps its values in lazy
	// (see self).
	epochs []epoch // per shard: phase in the top bit, registrations below
	// bulk counts the values RecordCorrected took in bulk that an Interval
	// has not yet handed out (see MaxBulkCount); retired[p] those of them
	// registered in phase p, which Interval gives back once it hands out
	// that phase's interval. So no interval, and no shard's registrations,
	// reach 2^63: the phase bit stays the phase.
	bulk    budget
	retired [2]atomic.Uint64
	mu      sync.Mutex // guards phase; serializes Interval
	phase   uint64
	// lazy is the Recorder a zero Recorder keeps its values in.
	lazy lazy[Recorder]
}

type epoch struct {
	atomic.Uint64
	_ [56]byte
}

const phaseBit = 1 << 63

// NewRecorder returns a Recorder whose intervals are histograms configured
// by opts (see [New]).
func NewRecorder(opts ...Option) (*Recorder, error) {
	c, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	return newRecorder(c), nil
}

func newRecorder(c config) *Recorder {
	return &Recorder{
		hist:   [2]*Histogram{newAtomicHistogram(c), newAtomicHistogram(c)},
		epochs: make([]epoch, c.shards),
	}
}

// self returns the Recorder that holds r's values: r itself when
// NewRecorder made it, or, for a zero Recorder, the one made for it on
// first use.
func (r *Recorder) self() *Recorder {
	if r.epochs != nil {
		return r
	}
	return r.lazy.get(newDefaultRecorder)
}

func newDefaultRecorder() *Recorder { return newRecorder(defaultConfig()) }

// Scale reports the scale of the intervals.
func (r *Recorder) Scale() int { return r.self().hist[0].scale }

// Record records a duration into the current interval (see
// [Histogram.Record]). Safe for concurrent use; 0 allocations.
func (r *Recorder) Record(d time.Duration) { r.RecordValue(int64(d)) }

// RecordValue records a non-negative integer into the current interval.
func (r *Recorder) RecordValue(v int64) {
	r = r.self()
	k := shardIndex(r.hist[0].mask)
	h := r.hist[r.epochs[k].Add(1)>>63]
	h.recordAtomic(h.shard(k), v)
}

// RecordCorrected records d with the coordinated-omission correction of
// [Histogram.RecordCorrected], all in the same interval. When it adds
// synthetic samples, d and the samples count against [MaxBulkCount] for
// that interval: past it, RecordCorrected records nothing and returns an
// error wrapping [ErrCountLimit]. It returns nil otherwise.
func (r *Recorder) RecordCorrected(d, expectedInterval time.Duration) error {
	r = r.self()
	k := shardIndex(r.hist[0].mask)
	v, iv := int64(d), int64(expectedInterval)
	var extra uint64
	if v >= 0 && iv > 0 && v-iv >= iv {
		extra = uint64((v - iv) / iv)
		if !r.bulk.take(1 + extra) {
			return bulkLimitError(fmt.Sprintf("RecordCorrected(%v, %v)", d, expectedInterval), 1+extra)
		}
	}
	p := r.epochs[k].Add(1+extra) >> 63
	if extra > 0 {
		// Before the counts land: Interval reads retired[p] once all of
		// phase p's registrations have.
		r.retired[p].Add(1 + extra)
	}
	h := r.hist[p]
	sh := h.shard(k)
	h.recordAtomic(sh, v)
	if extra > 0 {
		h.recordArithmetic(sh, v-iv, iv, extra)
	}
	return nil
}

// Interval returns the values recorded since the previous call (or since
// NewRecorder) and starts a new interval. Concurrent writers are never
// blocked; each of their values is in exactly one interval.
func (r *Recorder) Interval() *Snapshot {
	r = r.self()
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.phase
	r.phase ^= 1
	var registered uint64
	for k := range r.epochs {
		e := r.epochs[k].Swap(r.phase << 63)
		registered += e &^ phaseBit
	}
	h := r.hist[old]
	// Each write's last step adds its count to a counter: wait until all
	// the old phase's registrations have landed.
	for h.committed() != registered {
		runtime.Gosched()
	}
	s := h.Snapshot()
	h.reset()
	r.bulk.give(r.retired[old].Swap(0))
	return s
}

// committed sums every count of the histogram, invalid values included.
func (h *Histogram) committed() uint64 {
	var n uint64
	for k := range h.shards {
		sh := h.shards[k].Load()
		if sh == nil {
			continue
		}
		n += atomic.LoadUint64(&sh.zero) + atomic.LoadUint64(&sh.overflow) + atomic.LoadUint64(&sh.invalid)
		w := sh.wraps.Load()
		for ci := range numChunks {
			if c := sh.chunk(uint(ci)); c != nil {
				for j := range 1 << h.scale {
					n += bucketCount(w, c, ci<<h.scale+j, j)
				}
			}
		}
	}
	return n
}

// reset zeroes a histogram no writer is using, keeping its allocations.
func (h *Histogram) reset() {
	for k := range h.shards {
		if sh := h.shards[k].Load(); sh != nil {
			sh.reset(h.scale)
		}
	}
}
