package latency

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"sort"
	"sync/atomic"
	"time"
)

// Snapshot is a copy of a histogram's contents: the non-empty buckets plus
// the exact count, sum, minimum and maximum. Its methods answer quantiles
// in O(log buckets) without allocating. Every method returns in time, and
// writes output, bounded by the number of buckets (at most 53·2^scale+1;
// for WritePercentileDistribution, plus 65 lines per tick), whatever the
// counts: a snapshot decoded from untrusted bytes included.
// Every snapshot encodes to bytes that decode to it. Only [Snapshot.Add]
// (and UnmarshalBinary) change a Snapshot; all other methods only read, and
// are safe for concurrent use. The zero value is an empty snapshot at scale 0.
//
// An empty snapshot (Count 0) has no resolution to lose: in [Snapshot.Merge]
// and [Snapshot.Add] it takes the other operand's scale, whatever its own.
type Snapshot struct {
	scale int
	// Bucket offset+k has count cum[k]-cum[k-1] (cum[-1] being the zero
	// count): a dense running total, so a quantile is a binary search and a
	// merge one add per bucket. The first and last buckets are non-empty;
	// cum is nil when no bucket is.
	offset   int
	cum      []uint64
	zero     uint64
	overflow uint64
	invalid  uint64
	sumHi    uint64
	sumLo    uint64
	min, max int64 // min > max when empty
}

// Snapshot copies the histogram's current contents. Writers are never
// stopped, so on a live histogram the snapshot is a view that is
// consistent per counter but not instantaneous: a value recorded while it
// runs may or may not be in it, and its minimum, maximum or sum may show
// before or after its count; the snapshot then reports the minimum and
// maximum of the buckets it saw, and a sum between count×min and
// count×max, so that it is always self-consistent (it encodes and decodes).
// Once writers have stopped, a Snapshot is exact. A [Recorder] gives exact
// intervals while writers run.
func (h *Histogram) Snapshot() *Snapshot {
	h = h.self()
	s := &Snapshot{scale: h.scale, min: math.MaxInt64, max: -1}
	live := make([]*shard, 0, len(h.shards)+len(h.pinned))
	for _, set := range [2][]atomic.Pointer[shard]{h.pinned, h.shards} {
		for k := range set {
			if sh := set[k].Load(); sh != nil {
				live = append(live, sh)
			}
		}
	}
	// Buckets first: on the atomic path, a value whose count is seen here
	// had its sum, minimum and maximum written before, so they are seen
	// below.
	var buf [1 << MaxScale]uint64
	octave := buf[:1<<h.scale]
	// Size the running totals once: from the lowest to the highest octave
	// any shard has allocated.
	loC, hiC := numChunks, -1
	for ci := range numChunks {
		for _, sh := range live {
			if sh.chunk(uint(ci)) != nil {
				loC, hiC = min(loC, ci), max(hiC, ci)
				break
			}
		}
	}
	var dense []uint64 // counts of the buckets from s.offset on
	if hiC >= 0 {
		dense = make([]uint64, 0, (hiC-loC+1)<<h.scale)
	}
	for ci := range numChunks {
		clear(octave)
		seen := false
		for _, sh := range live {
			if c := sh.chunk(uint(ci)); c != nil {
				seen = true
				w := sh.wraps.Load()
				for j := range octave {
					octave[j] += bucketCount(w, c, ci<<h.scale+j, j)
				}
			}
		}
		if !seen {
			continue
		}
		for j, n := range octave {
			if n != 0 {
				i := ci<<h.scale + j
				if len(dense) == 0 {
					s.offset = i
				}
				for len(dense) < i-s.offset {
					dense = append(dense, 0)
				}
				dense = append(dense, n)
			}
		}
	}
	for _, sh := range live {
		s.zero += atomic.LoadUint64(&sh.zero)
		s.overflow += atomic.LoadUint64(&sh.overflow)
		s.invalid += atomic.LoadUint64(&sh.invalid)
		var c uint64
		s.sumLo, c = bits.Add64(s.sumLo, atomic.LoadUint64(&sh.sumLo), 0)
		s.sumHi += atomic.LoadUint64(&sh.sumHi) + c
		s.min = min(s.min, atomic.LoadInt64(&sh.min))
		s.max = max(s.max, atomic.LoadInt64(&sh.max))
	}
	if len(dense) == 0 {
		dense = nil // allocated octaves, but no count in them
	}
	run := s.zero
	for k, n := range dense {
		run += n
		dense[k] = run
	}
	s.cum = dense
	if dense != nil {
		s.offset -= h.table.offset // from slots to buckets
	}
	s.settle()
	return s
}

// settle makes a snapshot of a live histogram self-consistent: writers
// set a value's minimum, maximum and sum before its count, but a reader
// reads the counts first, and plain writes on the pinned path may reach
// another CPU out of order (not on amd64, but on arm64). So the minimum
// and maximum are brought into the lowest and highest occupied places and
// the sum into count×min..count×max, which is what UnmarshalBinary
// accepts. Once writers have stopped, every value is already in place and
// nothing changes here.
func (s *Snapshot) settle() {
	n := s.Count()
	if n == 0 {
		s.min, s.max = math.MaxInt64, -1
		s.sumHi, s.sumLo = 0, 0
		return
	}
	switch {
	case s.zero > 0:
		s.min = 0
	case len(s.cum) > 0:
		lo, hi := intRange(s.scale, s.offset)
		if s.min < lo || s.min > hi {
			s.min = lo
		}
	default: // only overflow
		s.min = max(s.min, MaxValue+1)
	}
	switch {
	case s.overflow > 0:
		s.max = max(s.max, MaxValue+1)
	case len(s.cum) > 0:
		lo, hi := intRange(s.scale, s.offset+len(s.cum)-1)
		if s.max < lo || s.max > hi {
			s.max = hi
		}
	default: // only zeros
		s.max = 0
	}
	loHi, loLo, hiHi, hiLo := s.sumBounds(n)
	switch {
	case less128(s.sumHi, s.sumLo, loHi, loLo):
		s.sumHi, s.sumLo = loHi, loLo
	case less128(hiHi, hiLo, s.sumHi, s.sumLo):
		s.sumHi, s.sumLo = hiHi, hiLo
	}
}

// setBuckets sets offset and cum from ascending bucket indexes and their
// counts; s.zero must be set already.
func (s *Snapshot) setBuckets(index []int, counts []uint64) {
	if len(index) == 0 {
		s.offset, s.cum = 0, nil
		return
	}
	s.offset = index[0]
	s.cum = make([]uint64, index[len(index)-1]-index[0]+1)
	for j, i := range index {
		s.cum[i-s.offset] = counts[j]
	}
	run := s.zero
	for k, n := range s.cum {
		run += n
		s.cum[k] = run
	}
}

// empty reports whether no valid value is in s (Invalid may be non-zero).
func (s *Snapshot) empty() bool { return s.Count() == 0 }

// Scale reports the snapshot's scale.
func (s *Snapshot) Scale() int { return s.scale }

// RelativeError reports the bound on the relative error of every quantile.
func (s *Snapshot) RelativeError() float64 { return ErrorAtScale(s.scale) }

// Count reports how many valid values were recorded (Invalid excluded,
// Overflow included).
func (s *Snapshot) Count() uint64 { return s.bucketed() + s.overflow }

func (s *Snapshot) bucketed() uint64 {
	if len(s.cum) == 0 {
		return s.zero
	}
	return s.cum[len(s.cum)-1]
}

// ZeroCount reports how many values were exactly 0.
func (s *Snapshot) ZeroCount() uint64 { return s.zero }

// Overflow reports how many values exceeded [MaxValue]. They are part of
// Count, Sum, Min and Max; a quantile that falls among them reports Max.
func (s *Snapshot) Overflow() uint64 { return s.overflow }

// Invalid reports how many negative values were offered; they are in no
// other statistic.
func (s *Snapshot) Invalid() uint64 { return s.invalid }

// Min reports the smallest value recorded, or 0 when empty.
func (s *Snapshot) Min() time.Duration {
	if s.Count() == 0 {
		return 0
	}
	return time.Duration(s.min)
}

// Max reports the largest value recorded, or 0 when empty.
func (s *Snapshot) Max() time.Duration {
	if s.Count() == 0 {
		return 0
	}
	return time.Duration(s.max)
}

// Sum reports the exact sum of the values. The sum is kept in 128 bits;
// if it exceeds what a time.Duration holds (292 years), Sum reports
// math.MaxInt64 and ok false.
func (s *Snapshot) Sum() (sum time.Duration, ok bool) {
	if s.sumHi != 0 || s.sumLo > math.MaxInt64 {
		return math.MaxInt64, false
	}
	return time.Duration(s.sumLo), true
}

// SumFloat reports the sum as a float64 of nanoseconds, never saturating.
func (s *Snapshot) SumFloat() float64 { return float64(s.sumHi)*0x1p64 + float64(s.sumLo) }

// Mean reports the exact mean (rounded to a whole nanosecond), or 0 when empty.
func (s *Snapshot) Mean() time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	if s.sumHi < n { // the 128/64 division cannot overflow
		q, r := bits.Div64(s.sumHi, s.sumLo, n)
		if r >= n-r {
			q++
		}
		return time.Duration(q)
	}
	sum := new(big.Int).Lsh(new(big.Int).SetUint64(s.sumHi), 64)
	sum.Or(sum, new(big.Int).SetUint64(s.sumLo))
	return time.Duration(sum.Div(sum, new(big.Int).SetUint64(n)).Uint64())
}

// StdDev estimates the population standard deviation from the buckets
// (each value taken at its bucket's representative, so each deviation is
// off by at most the relative error) around the exact mean.
func (s *Snapshot) StdDev() time.Duration {
	n := s.Count()
	if n < 2 {
		return 0
	}
	mean := s.SumFloat() / float64(n)
	acc := float64(s.zero) * mean * mean
	s.Buckets(func(i int, n uint64) bool {
		d := s.representative(i) - mean
		acc += float64(n) * d * d
		return true
	})
	if s.overflow > 0 {
		d := float64(s.max) - mean
		acc += float64(s.overflow) * d * d
	}
	return time.Duration(math.Round(math.Sqrt(acc / float64(n))))
}

// representative is the value that stands for bucket i: 2·lo·hi/(lo+hi)
// over the integers the bucket holds, clamped to [min, max]. Every integer
// in the bucket is within the relative error of it.
func (s *Snapshot) representative(i int) float64 {
	lo, hi := intRange(s.scale, i)
	lo, hi = max(lo, s.min), min(hi, s.max)
	if lo >= hi {
		return float64(hi)
	}
	l, u := float64(lo), float64(hi)
	return 2 * l * u / (l + u)
}

// rank is the 1-based rank of quantile q (0 <= q <= 1) among n values:
// ceil(q·n), at least 1 and at most n. A count near 2^64 rounds to 2^64 as
// a float64, which does not convert back to a uint64: such a product is
// rank n.
func rank(q float64, n uint64) uint64 {
	r := math.Ceil(q * float64(n))
	if r >= float64(n) {
		return n
	}
	return max(uint64(r), 1)
}

// ValueAtQuantile reports the value at quantile q (0 <= q <= 1) as an
// integer: the value of rank ceil(q·Count) in sorted order (the product
// taken in float64, so rounded beyond 2^53 values), within RelativeError of
// it, plus at most half a unit from rounding to an integer. Quantile 0 is
// Min and 1 is Max, exactly, at any count. It reports 0 when empty and an
// error for q outside [0, 1].
func (s *Snapshot) ValueAtQuantile(q float64) (int64, error) {
	if !(q >= 0 && q <= 1) {
		return 0, fmt.Errorf("latency: quantile %v: must be between 0 and 1", q)
	}
	n := s.Count()
	if n == 0 {
		return 0, nil
	}
	if q == 0 {
		return s.min, nil
	}
	r := rank(q, n)
	if r == n {
		return s.max, nil
	}
	if r <= s.zero {
		return 0, nil
	}
	if r > s.bucketed() {
		return s.max, nil
	}
	j := sort.Search(len(s.cum), func(j int) bool { return s.cum[j] >= r })
	return int64(math.Round(s.representative(s.offset + j))), nil
}

// Quantile reports the duration at quantile q, a fraction from 0 to 1
// (0.99 for the 99th percentile, not HdrHistogram's 99). For q outside
// [0, 1] or NaN it returns -1, an impossible duration, so that the mistake
// shows as "-1ns" instead of a plausible value. Otherwise it is
// [Snapshot.ValueAtQuantile] as a duration: 0 when empty, Min at 0 and Max
// at 1.
func (s *Snapshot) Quantile(q float64) time.Duration {
	v, err := s.ValueAtQuantile(q)
	if err != nil {
		return -1
	}
	return time.Duration(v)
}

// Summary holds the usual latency percentiles of a snapshot.
type Summary struct {
	Count                    uint64
	Min, Mean, StdDev        time.Duration
	P50, P90, P95, P99, P999 time.Duration
	Max                      time.Duration
}

// Summary reports count, min, mean, standard deviation, p50, p90, p95,
// p99, p99.9 and max.
func (s *Snapshot) Summary() Summary {
	return Summary{
		Count: s.Count(), Min: s.Min(), Mean: s.Mean(), StdDev: s.StdDev(),
		P50: s.Quantile(0.5), P90: s.Quantile(0.9), P95: s.Quantile(0.95),
		P99: s.Quantile(0.99), P999: s.Quantile(0.999), Max: s.Max(),
	}
}

// CountAtOrBelow reports how many values are at or below d, for SLOs such
// as "99% under 10ms". It is exact when d is at or above Max, below Min, or
// on a bucket boundary; otherwise the bucket holding d counts only if all
// of it lies at or below d, so the answer is a lower bound within one
// bucket (values within RelativeError of d).
func (s *Snapshot) CountAtOrBelow(d time.Duration) uint64 {
	v := int64(d)
	switch {
	case s.Count() == 0 || v < s.min || v < 0:
		return 0
	case v >= s.max:
		return s.Count()
	case v > MaxValue:
		return s.bucketed()
	case v == 0:
		return s.zero
	}
	i := bucketIndex(s.scale, v)
	if _, hi := intRange(s.scale, i); hi > v {
		i-- // the bucket of v also holds values above v: leave it out
	}
	switch k := i - s.offset; {
	case k < 0:
		return s.zero
	case k >= len(s.cum):
		return s.bucketed()
	default:
		return s.cum[k]
	}
}

// Buckets calls yield for every non-empty bucket in ascending order with
// its Prometheus index i (it holds the durations in (base^(i-1), base^i]
// seconds, base = 2^(2^-Scale), so i is negative below one second) and its
// count. The zero count and Overflow are not buckets: see ZeroCount and
// Overflow.
func (s *Snapshot) Buckets(yield func(index int, count uint64) bool) {
	prev := s.zero
	for k, c := range s.cum {
		if c != prev && !yield(s.offset+k, c-prev) {
			return
		}
		prev = c
	}
}

func (s *Snapshot) counts() map[int]uint64 {
	m := make(map[int]uint64, len(s.cum))
	s.Buckets(func(i int, n uint64) bool { m[i] = n; return true })
	return m
}

// Downscale returns the snapshot at a coarser scale (or itself at the same
// scale): each coarse bucket is the sum of the fine buckets it covers, which
// is exactly what recording at that scale would have produced. An empty
// snapshot has no resolution to lose and takes any scale from [MinScale] to
// [MaxScale].
func (s *Snapshot) Downscale(scale int) (*Snapshot, error) {
	top := s.scale
	if s.empty() {
		top = MaxScale
	}
	if scale < MinScale || scale > top {
		return nil, fmt.Errorf("latency: downscale to %d: must be between %d and %d (the current scale, or MaxScale when empty)", scale, MinScale, top)
	}
	if scale == s.scale {
		return s, nil
	}
	if s.empty() {
		out := *s
		out.scale = scale
		return &out, nil
	}
	d := s.scale - scale
	var index []int
	var counts []uint64
	s.Buckets(func(i int, n uint64) bool {
		if i = downIndex(i, d); len(index) > 0 && index[len(index)-1] == i {
			counts[len(counts)-1] += n
		} else {
			index = append(index, i)
			counts = append(counts, n)
		}
		return true
	})
	out := *s
	out.scale = scale
	out.setBuckets(index, counts)
	return &out, nil
}

// Merge returns a snapshot holding the values of both s and o. When their
// scales differ the result has the coarser one (resolution is lowered,
// never invented), except that an empty snapshot (Count 0, such as the
// zero Snapshot at scale 0) takes the other's scale. When Count or Invalid
// would exceed 2^64-1 it returns an error wrapping [ErrCountLimit].
func (s *Snapshot) Merge(o *Snapshot) (*Snapshot, error) {
	scale := min(s.scale, o.scale)
	switch {
	case s.empty():
		scale = o.scale // an empty snapshot has no resolution to lose
	case o.empty():
		scale = s.scale
	}
	a, err := s.Downscale(scale)
	if err != nil {
		return nil, err
	}
	b, err := o.Downscale(scale)
	if err != nil {
		return nil, err
	}
	if err := checkMergeCounts(a, b); err != nil {
		return nil, err
	}
	out := &Snapshot{
		scale:    scale,
		zero:     a.zero + b.zero,
		overflow: a.overflow + b.overflow,
		invalid:  a.invalid + b.invalid,
		min:      math.MaxInt64,
		max:      -1,
	}
	for _, x := range []*Snapshot{a, b} {
		if x.Count() > 0 {
			out.min, out.max = min(out.min, x.min), max(out.max, x.max)
		}
	}
	var c uint64
	out.sumLo, c = bits.Add64(a.sumLo, b.sumLo, 0)
	out.sumHi = a.sumHi + b.sumHi + c
	// Index to index: each side's running total, extended past its ends
	// (its zero count before, its bucketed total after), added up.
	switch {
	case a.cum == nil && b.cum == nil:
	case a.cum == nil:
		out.offset, out.cum = b.offset, addConst(b.cum, a.zero)
	case b.cum == nil:
		out.offset, out.cum = a.offset, addConst(a.cum, b.zero)
	default:
		out.offset = min(a.offset, b.offset)
		end := max(a.offset+len(a.cum), b.offset+len(b.cum))
		out.cum = make([]uint64, end-out.offset)
		addExtended(out.cum, a, out.offset)
		addExtended(out.cum, b, out.offset)
	}
	return out, nil
}

// Add adds o's values to s in place: afterwards s holds what s.Merge(o)
// would have returned: at the coarser of the two scales, or at the
// other's when one is empty (so an empty accumulator, such as a zero
// Snapshot, takes the scale of the first snapshot added). When both have
// the same scale and o's buckets lie within the range of s's, it adds
// index to index into s's own storage without allocating (the accumulator
// case: one snapshot that many others are added to); otherwise it builds
// the merged buckets once. Add modifies
// s, so it must not run concurrently with any other use of s (the other
// methods of Snapshot only read). On error s is unchanged.
func (s *Snapshot) Add(o *Snapshot) error {
	if s.scale != o.scale || s.cum == nil || o.cum == nil ||
		o.offset < s.offset || o.offset+len(o.cum) > s.offset+len(s.cum) {
		m, err := s.Merge(o)
		if err != nil {
			return err
		}
		*s = *m
		return nil
	}
	if err := checkMergeCounts(s, o); err != nil {
		return err
	}
	// o's running total, extended past its ends (its zero count before,
	// its bucketed total after), added to s's.
	lo := o.offset - s.offset
	hi := lo + len(o.cum)
	dst := s.cum
	for k := range dst[:lo] {
		dst[k] += o.zero
	}
	mid := dst[lo:hi]
	for k, v := range o.cum[:len(mid)] {
		mid[k] += v
	}
	last := o.cum[len(o.cum)-1]
	for k := range dst[hi:] {
		dst[hi+k] += last
	}
	s.zero += o.zero
	s.overflow += o.overflow
	s.invalid += o.invalid
	var c uint64
	s.sumLo, c = bits.Add64(s.sumLo, o.sumLo, 0)
	s.sumHi += o.sumHi + c
	s.min, s.max = min(s.min, o.min), max(s.max, o.max)
	return nil
}

// checkMergeCounts reports an error wrapping ErrCountLimit when the Count
// or the Invalid of a and b together exceed 2^64-1.
func checkMergeCounts(a, b *Snapshot) error {
	if _, c := bits.Add64(a.Count(), b.Count(), 0); c != 0 {
		return fmt.Errorf("%w: merge: count %d + %d exceeds 2^64-1", ErrCountLimit, a.Count(), b.Count())
	}
	if _, c := bits.Add64(a.invalid, b.invalid, 0); c != 0 {
		return fmt.Errorf("%w: merge: invalid count %d + %d exceeds 2^64-1", ErrCountLimit, a.invalid, b.invalid)
	}
	return nil
}

func addConst(cum []uint64, c uint64) []uint64 {
	out := make([]uint64, len(cum))
	for k, v := range cum {
		out[k] = v + c
	}
	return out
}

// addExtended adds x's running total to dst, whose first bucket is offset.
func addExtended(dst []uint64, x *Snapshot, offset int) {
	lo := x.offset - offset
	hi := lo + len(x.cum)
	for k := range dst[:lo] {
		dst[k] += x.zero
	}
	for k, v := range x.cum {
		dst[lo+k] += v
	}
	last := x.cum[len(x.cum)-1]
	for k := range dst[hi:] {
		dst[hi+k] += last
	}
}

// Merge adds the contents of a snapshot (from this process or decoded from
// another machine) to the histogram. A finer snapshot is downscaled to the
// histogram's scale first; a coarser one is an error, since the histogram
// cannot hold it without inventing resolution. The snapshot's values
// (Count plus Invalid) count against [MaxBulkCount]: past it, Merge adds
// nothing and returns an error wrapping [ErrCountLimit]. Safe for
// concurrent use with writers.
func (h *Histogram) Merge(s *Snapshot) error {
	h = h.self()
	if s.scale < h.scale && !s.empty() {
		return fmt.Errorf("latency: merge: snapshot scale %d is coarser than the histogram's %d", s.scale, h.scale)
	}
	n, c := bits.Add64(s.Count(), s.invalid, 0)
	if c != 0 {
		return fmt.Errorf("%w: merge: count %d and invalid count %d exceed MaxBulkCount (2^62)", ErrCountLimit, s.Count(), s.invalid)
	}
	if n > 0 && !h.bulk.take(n) {
		return bulkLimitError("merge", n)
	}
	sh := h.shard(shardIndex(h.mask))
	if s.invalid > 0 {
		atomic.AddUint64(&sh.invalid, s.invalid)
	}
	if s.empty() {
		return nil
	}
	s, err := s.Downscale(h.scale)
	if err != nil {
		return err
	}
	casMin(&sh.min, s.min)
	casMax(&sh.max, s.max)
	sh.addSum(s.sumHi, s.sumLo)
	if s.zero > 0 {
		atomic.AddUint64(&sh.zero, s.zero)
	}
	if s.overflow > 0 {
		atomic.AddUint64(&sh.overflow, s.overflow)
	}
	s.Buckets(func(i int, n uint64) bool {
		h.addCount(sh, i+h.table.offset, n)
		return true
	})
	return nil
}
