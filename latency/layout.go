package latency

import (
	"math"
	"math/big"
	"math/bits"
	"sync"
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
	// (about 104 days), the largest integer a float64 holds exactly.
	// Larger values are counted by Overflow and still enter Count, Sum,
	// Min and Max.
	MaxValue = 1<<53 - 1

	// maxOctave is the octave of MaxValue: chunks 0..maxOctave+1 exist
	// because the top bucket of an octave spills to the next chunk.
	maxOctave = 52
	numChunks = maxOctave + 2

	// unitNanos is the unit the bucket boundaries are powers of
	// 2^(2^-scale) of: the second, in nanoseconds.
	unitNanos = 1e9
)

// The layout. Bucket i at scale s holds the durations in
// (2^((i-1)/2^s), 2^(i/2^s)] seconds: bucket 0 ends at exactly one second,
// and a duration d (in nanoseconds) is in bucket ceil(2^s·log2(d/1e9)), the
// Prometheus and OpenTelemetry convention (the upper bound is inclusive).
//
// The boundaries are irrational numbers of nanoseconds (except at 2^k
// seconds), so Record never computes a logarithm: it splits d into its
// binary octave 2^e <= d < 2^(e+1) and its normalised mantissa
// m = d·2^(63-e) (the top bit set, the rest exact), and compares m with the
// boundaries, which fall at the same mantissas in every binary octave since
// a binary octave spans exactly 2^s buckets:
//
//	bound[k] = floor(2^63 · 1e9·2^((k-A)/2^s)),  k = 0 .. 2^s-1
//
// where A = floor(2^s·log2(1e9)) makes 1e9·2^((k-A)/2^s) fall in [1, 2).
// d is above boundary k iff m > bound[k]: both are integers and m is exact,
// so this is the exact comparison of d with the real boundary. A duration
// in octave e above c of the boundaries is in slot e·2^s + c (its place in
// a histogram's counters, always >= 0) and in bucket e·2^s + c - A.
//
// The bounds are computed once per scale, on first use, with math/big in
// interval arithmetic that is refined until it decides every floor (see
// floorTimesRoot), so they are exact, not rounded. That takes under 1 ms at
// the default scale and about 6 ms at scale 8 on the development machine,
// once per process.

// scaleTable holds the layout of one scale. It is built once and never
// written again.
type scaleTable struct {
	scale int
	// offset is A: bucket = slot - offset.
	offset int
	// bound[k] is the k-th boundary of every octave as a normalised
	// mantissa (see above); bound[2^s] is a sentinel no mantissa exceeds.
	bound []uint64
	// entry[m>>(62-s)] packs, for the mantissa cell holding m (cells are
	// 2^62/2^s wide, narrower than the smallest gap between boundaries, so
	// a cell holds at most one boundary), what the hot path needs in one
	// load: the boundaries below the cell and the one that may be in it.
	// Cells are indexed by the whole mantissa, whose top bit is always
	// set, so the lower half of entry is never read.
	entry []cellEntry
}

type cellEntry struct {
	c     int64  // boundaries strictly below the cell
	bound uint64 // bound[c]: a mantissa above it is above one more boundary
}

// tables holds each scale's layout, built on first use.
var tables [MaxScale + 1]struct {
	once sync.Once
	t    *scaleTable
}

// tableAt returns the layout of scale s.
func tableAt(s int) *scaleTable {
	e := &tables[s]
	e.once.Do(func() { e.t = newScaleTable(s) })
	return e.t
}

func newScaleTable(s int) *scaleTable {
	n := 1 << s
	// A = floor(n·log2(1e9)) = bitlen(1e9^n) - 1, exactly.
	u := new(big.Int).Exp(big.NewInt(unitNanos), big.NewInt(int64(n)), nil)
	a := u.BitLen() - 1
	bound := make([]uint64, n+1)
	for k := range n {
		// 1e9·2^((k-A)/n) = 1e9·2^q·2^(r/n) with k-A = q·n + r, 0 <= r < n,
		// so bound[k] = floor(1e9·2^(63+q) · 2^(r/n)), and 63+q >= 32.
		q := floorDiv(k-a, n)
		r := k - a - q*n
		base := new(big.Int).Lsh(big.NewInt(unitNanos), uint(63+q))
		bound[k] = floorTimesRoot(base, r, s)
	}
	bound[n] = math.MaxUint64
	entry := make([]cellEntry, 4*n)
	k := 0
	for j := 2 * n; j < 4*n; j++ {
		start := uint64(j) << (62 - s)
		for k < n && bound[k] < start {
			k++
		}
		entry[j] = cellEntry{c: int64(k), bound: bound[k]}
	}
	return &scaleTable{scale: s, offset: a, bound: bound, entry: entry}
}

func floorDiv(x, n int) int {
	q := x / n
	if x%n != 0 && x < 0 {
		q--
	}
	return q
}

// floorTimesRoot returns floor(base · 2^(r/2^s)) for 0 <= r < 2^s, where
// the result fits in 64 bits. For r = 0 it is base. Otherwise 2^(r/2^s) is
// irrational, so base·2^(r/2^s) is not an integer and an interval around
// it narrow enough holds a single integer floor: the interval [lo, hi] is
// proven to hold 2^(r/2^s) by raising both ends to the power 2^s with
// outward rounding (lo^(2^s) < 2^r < hi^(2^s)), its image under base is
// taken with outward rounding too, and the precision doubles until both
// ends have the same floor. Only correctly rounded multiplication is
// relied on; the square roots that find the interval need not be exact.
func floorTimesRoot(base *big.Int, r, s int) uint64 { return floorTimesRootFrom(base, r, s, 128) }

// floorTimesRootFrom is floorTimesRoot starting at precision prec (at
// least 16), which tests lower to exercise the refinement.
func floorTimesRootFrom(base *big.Int, r, s int, prec uint) uint64 {
	if r == 0 {
		return base.Uint64()
	}
	b := new(big.Float).SetInt(base)
	pow2r := new(big.Float).SetMantExp(big.NewFloat(1), r)
	for ; ; prec *= 2 {
		c := new(big.Float).SetPrec(prec + 64).Set(pow2r)
		for range s {
			c.Sqrt(c)
		}
		// Widen by 2^-(prec-8) relative on each side.
		eps := new(big.Float).SetPrec(prec+64).SetMantExp(big.NewFloat(1), -int(prec-8))
		one := new(big.Float).SetPrec(prec + 64).SetInt64(1)
		lo := new(big.Float).SetPrec(prec+64).SetMode(big.ToNegativeInf).Sub(one, eps)
		lo.Mul(lo, c)
		hi := new(big.Float).SetPrec(prec+64).SetMode(big.ToPositiveInf).Add(one, eps)
		hi.Mul(hi, c)
		if powCmp(lo, s, big.ToPositiveInf, pow2r) >= 0 || powCmp(hi, s, big.ToNegativeInf, pow2r) <= 0 {
			continue // the interval was not proven to hold the root
		}
		fl := new(big.Float).SetPrec(prec+128).SetMode(big.ToNegativeInf).Mul(b, lo)
		fh := new(big.Float).SetPrec(prec+128).SetMode(big.ToPositiveInf).Mul(b, hi)
		il, _ := fl.Int(nil) // truncation is the floor: both are positive
		ih, _ := fh.Int(nil)
		if il.Cmp(ih) == 0 && il.IsUint64() {
			return il.Uint64()
		}
	}
}

// powCmp compares x^(2^s), each squaring rounded in mode, with y.
func powCmp(x *big.Float, s int, mode big.RoundingMode, y *big.Float) int {
	p := new(big.Float).SetPrec(x.Prec()).SetMode(mode).Set(x)
	for range s {
		p.Mul(p, p)
	}
	return p.Cmp(y)
}

// slotOf returns the slot of v >= 1 (any uint64): e·2^s + c for v in
// binary octave e above c of the octave's boundaries.
func (t *scaleTable) slotOf(v uint64) int {
	l := bits.Len64(v)
	m := v << (64 - l)
	x := &t.entry[m>>(62-t.scale)]
	c := int(x.c)
	if m > x.bound {
		c++
	}
	return (l-1)<<t.scale + c
}

// bucketIndex returns the bucket of v nanoseconds (1 <= v <= math.MaxInt64)
// at scale s, in Prometheus numbering: bucket i holds (2^((i-1)/2^s),
// 2^(i/2^s)] seconds. The OpenTelemetry index of the same bucket is i-1.
func bucketIndex(s int, v int64) int {
	t := tableAt(s)
	return t.slotOf(uint64(v)) - t.offset
}

// minIndex and maxIndex are the buckets of 1 ns and of MaxValue at scale s.
func minIndex(s int) int { return bucketIndex(s, 1) }
func maxIndex(s int) int { return bucketIndex(s, MaxValue) }

// threshold returns the smallest v >= 1 whose slot is at least u.
func (t *scaleTable) threshold(u int) int64 {
	s := t.scale
	if u <= 0 {
		return 1
	}
	e, c := u>>s, u&(1<<s-1)
	if c > 0 { // above boundary c-1 of octave e: m = v·2^(63-e) > bound
		return int64(t.bound[c-1]>>(63-e)) + 1
	}
	// c = 0: above the last boundary of octave e-1
	return int64(t.bound[1<<s-1]>>(64-e)) + 1
}

// intRange returns the smallest and largest integers of [1, MaxValue] in
// bucket i at scale s (lo > hi when none is): exactly the values Record
// puts there.
func intRange(s, i int) (lo, hi int64) {
	t := tableAt(s)
	u := i + t.offset
	if u < 0 {
		return 1, 0
	}
	if u > maxIndex(s)+t.offset {
		return MaxValue + 1, MaxValue
	}
	return t.threshold(u), min(t.threshold(u+1)-1, MaxValue)
}

// ErrorAtScale is the relative error bound of quantiles at scale s:
// (base-1)/(base+1), reached by answering 2·lo·hi/(lo+hi) for a bucket
// (lo, hi]. Scale 6 gives 0.54%, scale 8 0.135%.
func ErrorAtScale(s int) float64 {
	b := math.Exp2(math.Exp2(-float64(s)))
	return (b - 1) / (b + 1)
}

// downIndex maps bucket i at some scale to its bucket d scales coarser:
// ceil(i/2^d), since coarse bucket I covers fine buckets (I-1)·2^d+1 to
// I·2^d.
func downIndex(i, d int) int { return (i-1)>>d + 1 }
