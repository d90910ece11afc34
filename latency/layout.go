package latency

import (
	"math"
)

// Layout limits.
const (
	// MinScale and MaxScale bound the scale a Histogram records at. Scale 8
	// is the finest Prometheus native histograms accept (schema 8); scale 0
	// is one bucket per power of two.
	MinScale = 0
	MaxScale = 8

	// DefaultScale is the scale New uses without a Scale or RelativeError
	// option: a relative error of at most 0.55% on every quantile.
	DefaultScale = 6

	// MaxValue is the largest value kept in a bucket: 2^53-1 nanoseconds
	// (about 104 days), the largest integer a float64 holds exactly. Larger
	// values are counted by Overflow and still enter Count, Sum, Min and Max.
	MaxValue = 1<<53 - 1

	mantBits = 52
	mantMask = 1<<mantBits - 1
	// maxOctave is the octave of MaxValue: chunks 0..maxOctave+1 exist
	// because the top bucket of an octave spills to the next chunk.
	maxOctave = 52
	numChunks = maxOctave + 2
)

// scaleTable holds the lookups that map a float64 mantissa to its bucket
// within an octave at one scale. It is built once and never written again.
type scaleTable struct {
	// bound[k] is floor((2^(k/2^s) - 1) * 2^52): a mantissa m is above the
	// k-th boundary of its octave iff m > bound[k]. bound[2^s] is a sentinel.
	bound []uint64
	// cell[j] counts the boundaries strictly below the start of mantissa
	// cell j (cells are 2^52 / 2^(s+1) wide, narrower than the smallest gap
	// between boundaries, so a cell holds at most one boundary).
	cell []uint16
	// entry[j] packs, for mantissa cell j, what the hot path needs in one
	// load: the candidate count and the boundary that may raise it (see
	// Histogram.bucketOf).
	entry []cellEntry
}

type cellEntry struct {
	c     int64  // cell[j]
	bound uint64 // bound[c] (at most mantMask): a mantissa above it is in bucket c+1
}

var tables = func() (t [MaxScale + 1]scaleTable) {
	for s := MinScale; s <= MaxScale; s++ {
		n := 1 << s
		bound := make([]uint64, n+1)
		for k := range n {
			bound[k] = uint64(math.Floor((math.Exp2(float64(k)/float64(n)) - 1) * (1 << mantBits)))
		}
		bound[n] = math.MaxUint64
		cells := 1 << (s + 1)
		cell := make([]uint16, cells)
		width := uint64(1) << (mantBits - s - 1)
		k := 0
		for j := range cells {
			start := uint64(j) * width
			for k < n && bound[k] < start {
				k++
			}
			cell[j] = uint16(k)
		}
		entry := make([]cellEntry, cells)
		for j, c := range cell {
			// No mantissa exceeds mantMask: it stands in for the
			// sentinel so that bound-m is negative exactly when m > bound.
			entry[j] = cellEntry{c: int64(c), bound: min(bound[c], mantMask)}
		}
		t[s] = scaleTable{bound: bound, cell: cell, entry: entry}
	}
	return t
}()

// bucketIndex returns the bucket of v (1 <= v <= MaxValue) at scale s, in
// Prometheus numbering: bucket i holds the values in (base^(i-1), base^i]
// with base = 2^(2^-s). The OpenTelemetry index of the same bucket is i-1.
func bucketIndex(t *scaleTable, s uint, v int64) int {
	bits := math.Float64bits(float64(v))
	e := int(bits>>mantBits) - 1023
	m := bits & mantMask
	c := int(t.cell[m>>(mantBits-1-s)])
	if m > t.bound[c] {
		c++
	}
	return e<<s + c
}

// maxIndex is the highest bucket index a value <= MaxValue maps to at scale s.
func maxIndex(s int) int { return bucketIndex(&tables[s], uint(s), MaxValue) }

// upperBound is the real upper bound base^i of bucket i at scale s.
func upperBound(s, i int) float64 { return math.Exp2(float64(i) / float64(int(1)<<s)) }

// intRange returns the smallest and largest integers that map to bucket i at
// scale s (lo > hi when none does). It starts from the real bounds and
// corrects them with bucketIndex itself, so it agrees with Record exactly.
func intRange(s, i int) (lo, hi int64) {
	t, us := &tables[s], uint(s)
	lo = int64(math.Floor(upperBound(s, i-1))) + 1
	if lo < 1 {
		lo = 1
	}
	for lo > 1 && bucketIndex(t, us, lo-1) >= i {
		lo--
	}
	for lo <= MaxValue && bucketIndex(t, us, lo) < i {
		lo++
	}
	hi = int64(math.Floor(upperBound(s, i)))
	if hi > MaxValue {
		hi = MaxValue
	}
	for hi < MaxValue && bucketIndex(t, us, hi+1) <= i {
		hi++
	}
	for hi >= 1 && bucketIndex(t, us, hi) > i {
		hi--
	}
	return lo, hi
}

// ErrorAtScale is the relative error bound of quantiles at scale s:
// (base-1)/(base+1), reached by answering 2·lo·hi/(lo+hi) for a bucket
// (lo, hi]. Scale 6 gives 0.54%, scale 8 0.135%.
func ErrorAtScale(s int) float64 {
	b := math.Exp2(math.Exp2(-float64(s)))
	return (b - 1) / (b + 1)
}

// downIndex maps bucket i at some scale to its bucket d scales coarser.
func downIndex(i, d int) int { return (i-1)>>d + 1 }
