package latency

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refIndex is the bucket of v computed the slow, obvious way: the smallest i
// with v <= 2^(i/2^s), searched around the logarithm.
func refIndex(s int, v int64) int {
	i := int(math.Ceil(math.Log2(float64(v)) * float64(int(1)<<s)))
	for i > 0 && float64(v) <= upperBound(s, i-1) {
		i--
	}
	for float64(v) > upperBound(s, i) {
		i++
	}
	return i
}

func TestBucketIndexAgreesWithTheLogarithmAtEveryScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for s := MinScale; s <= MaxScale; s++ {
		check := func(v int64) {
			got := bucketIndex(&tables[s], uint(s), v)
			want := refIndex(s, v)
			if got != want {
				// A boundary that float rounding puts within one part in
				// 2^50 of v may land either side; nothing else may differ.
				ub := upperBound(s, min(got, want))
				require.InDeltaf(t, ub, float64(v), ub*1e-14, "scale %d value %d: got bucket %d, want %d", s, v, got, want)
			}
		}
		for v := int64(1); v < 5000; v++ {
			check(v)
		}
		for e := 0; e <= 52; e++ {
			p := int64(1) << e
			check(p)
			if p > 1 {
				check(p - 1)
			}
			if p+1 <= MaxValue {
				check(p + 1)
			}
		}
		for range 20000 {
			check(1 + rng.Int64N(MaxValue))
		}
	}
}

func TestIntRangeIsExactlyTheValuesThatMapToTheBucket(t *testing.T) {
	for _, s := range []int{0, 3, 6, 8} {
		prevHi := int64(0)
		for i := 0; i <= 40<<s && prevHi < 1<<20; i++ {
			lo, hi := intRange(s, i)
			if lo > hi {
				continue
			}
			assert.Equalf(t, prevHi+1, lo, "scale %d bucket %d must start right after the previous non-empty bucket", s, i)
			assert.Equal(t, i, bucketIndex(&tables[s], uint(s), lo))
			assert.Equal(t, i, bucketIndex(&tables[s], uint(s), hi))
			prevHi = hi
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
		fine := bucketIndex(&tables[s], uint(s), v)
		coarse := bucketIndex(&tables[s-d], uint(s-d), v)
		require.Equalf(t, coarse, downIndex(fine, d), "v=%d s=%d d=%d", v, s, d)
	}
}

func TestTheHotPathBucketAgreesWithBucketIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for s := MinScale; s <= MaxScale; s++ {
		h := mustNew(t, Scale(s))
		check := func(v int64) {
			i := bucketIndex(&tables[s], uint(s), v)
			require.Equalf(t, i, h.bucketOf(v), "scale %d value %d", s, v)
			k, j := h.octaveOf(v)
			require.Equalf(t, i, int(k)<<s+j, "scale %d value %d", s, v)
			require.Lessf(t, k, uint(numChunks), "scale %d value %d", s, v)
		}
		for v := int64(1); v < 5000; v++ {
			check(v)
		}
		for e := range 53 {
			check(int64(1) << e)
			check(int64(1)<<e + 1)
			check(int64(1)<<(e+1) - 1)
		}
		for range 20000 {
			check(1 + rng.Int64N(MaxValue))
		}
	}
}
