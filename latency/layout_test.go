package latency

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exactBucket decides, in integers only, whether d nanoseconds belongs in
// bucket i at scale s, that is whether 2^((i-1)/n) < d/1e9 <= 2^(i/n)
// with n = 2^s, by raising everything to the power n:
// 1e9^n·2^(i-1) < d^n <= 1e9^n·2^i. It shares nothing with the layout
// code: it is the reference the layout is checked against.
type exactBucket struct {
	n  int64
	un *big.Int // 1e9^n
}

func newExactBucket(s int) *exactBucket {
	n := int64(1) << s
	return &exactBucket{n: n, un: new(big.Int).Exp(big.NewInt(1e9), big.NewInt(n), nil)}
}

// holds reports whether bucket i holds d.
func (e *exactBucket) holds(d int64, i int) bool {
	dn := new(big.Int).Exp(big.NewInt(d), big.NewInt(e.n), nil)
	cmp := func(j int) int { // the sign of d^n - 1e9^n·2^j
		if j >= 0 {
			return dn.Cmp(new(big.Int).Lsh(e.un, uint(j)))
		}
		return new(big.Int).Lsh(dn, uint(-j)).Cmp(e.un)
	}
	return cmp(i-1) > 0 && cmp(i) <= 0
}

// slotBucket is the bucket of a histogram's slot at scale s.
func slotBucket(s, slot int) int { return slot - tableAt(s).offset }

func TestEveryThresholdIsExactInIntegerNanoseconds(t *testing.T) {
	for s := MinScale; s <= MaxScale; s++ {
		if testing.Short() && s > 6 {
			break
		}
		ref := newExactBucket(s)
		h := mustNew(t, Scale(s))
		check := func(d int64) {
			k, j := h.octaveOf(d)
			got := slotBucket(s, int(k)<<s+j) // what Record chose
			require.Truef(t, ref.holds(d, got), "scale %d: Record put %d ns in bucket %d, which does not hold it", s, d, got)
			require.Equalf(t, got, bucketIndex(s, d), "scale %d value %d", s, d)
			require.Equalf(t, got, slotBucket(s, h.bucketOf(d)), "scale %d value %d", s, d)
		}
		prevHi := int64(0)
		for i := minIndex(s); i <= maxIndex(s); i++ {
			lo, hi := intRange(s, i)
			if lo > hi {
				continue // a bucket narrower than a nanosecond, between two integers
			}
			require.Equalf(t, prevHi+1, lo, "scale %d bucket %d must start right after the previous non-empty bucket", s, i)
			prevHi = hi
			for _, d := range []int64{lo - 1, lo, lo + 1, hi - 1, hi, hi + 1} {
				if d >= 1 && d <= MaxValue {
					check(d)
				}
			}
		}
		require.Equal(t, int64(MaxValue), prevHi, "scale %d: the buckets cover 1 to MaxValue", s)
		rng := rand.New(rand.NewPCG(uint64(s), 17))
		for range 2000 {
			check(1 + rng.Int64N(MaxValue))
		}
		for e := range 53 {
			check(int64(1) << e)
		}
		for k := -9; k <= 23; k++ { // 2^k seconds, where a boundary is an integer
			if d := int64(math.Ldexp(1e9, k)); float64(d) == math.Ldexp(1e9, k) {
				check(d - 1)
				check(d)
				check(d + 1)
			}
		}
	}
}

func TestOneSecondClosesBucketZero(t *testing.T) {
	for s := MinScale; s <= MaxScale; s++ {
		assert.Equal(t, 0, bucketIndex(s, int64(time.Second)), "scale %d: 1s is the upper bound of bucket 0, inclusive", s)
		assert.Equal(t, 1, bucketIndex(s, int64(time.Second)+1), "scale %d", s)
		assert.Equal(t, 1<<s, bucketIndex(s, int64(2*time.Second)), "scale %d: 2s closes bucket 2^s", s)
		assert.Equal(t, -(1 << s), bucketIndex(s, int64(time.Second/2)), "scale %d: 0.5s closes bucket -2^s", s)
	}
}

func TestTheBoundsAreTheSameFromAnyStartingPrecision(t *testing.T) {
	// floorTimesRoot refines its interval until it decides the floor;
	// started at a precision far too low, it must refine to the same bounds.
	for _, s := range []int{1, 3, 6} {
		tb := tableAt(s)
		n := 1 << s
		for k := range n {
			q := floorDiv(k-tb.offset, n)
			r := k - tb.offset - q*n
			base := new(big.Int).Lsh(big.NewInt(unitNanos), uint(63+q))
			require.Equalf(t, tb.bound[k], floorTimesRootFrom(base, r, s, 16), "scale %d bound %d", s, k)
		}
	}
}

func TestErrorAtScaleMatchesTheDocumentedFigures(t *testing.T) {
	assert.InDelta(t, 0.0054, ErrorAtScale(6), 0.0001, "scale 6")
	assert.InDelta(t, 0.00135, ErrorAtScale(8), 0.00001, "scale 8")
	assert.Less(t, ErrorAtScale(6), 0.01, "the default must be within 1%%")
	assert.Greater(t, ErrorAtScale(5), 0.01, "scale 5 is not within 1%%, so 6 is the coarsest default")
}

func TestDownIndexMatchesRecordingAtTheCoarserScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		v := 1 + rng.Int64N(1<<40)
		s := 1 + rng.IntN(MaxScale)
		d := 1 + rng.IntN(s)
		fine := bucketIndex(s, v)
		coarse := bucketIndex(s-d, v)
		require.Equalf(t, coarse, downIndex(fine, d), "v=%d s=%d d=%d", v, s, d)
	}
}

func TestTheHotPathStaysInsideTheCounters(t *testing.T) {
	for s := MinScale; s <= MaxScale; s++ {
		h := mustNew(t, Scale(s))
		for _, v := range []int64{1, 2, 3, MaxValue - 1, MaxValue} {
			k, j := h.octaveOf(v)
			require.Lessf(t, k, uint(numChunks), "scale %d value %d", s, v)
			require.Lessf(t, j, 1<<s, "scale %d value %d", s, v)
		}
		assert.Equal(t, 0, h.bucketOf(1), "scale %d: 1ns is in the first slot", s)
	}
}
