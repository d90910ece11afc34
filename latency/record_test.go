package latency

import (
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBucketBaseIsAtOrBelowEveryValueOfItsBucket(t *testing.T) {
	for s := MinScale; s <= MaxScale; s++ {
		for i := 0; i <= maxIndex(s); i++ {
			lo, hi := intRange(s, i)
			if lo > hi {
				continue
			}
			base := bucketBase(&tables[s], s, i)
			require.LessOrEqualf(t, base, lo, "scale %d bucket %d", s, i)
			require.GreaterOrEqualf(t, base, lo/2, "scale %d bucket %d: the base is near the bucket", s, i)
		}
	}
}

func TestLargeOffsetsFlushIntoExtraCountersExactly(t *testing.T) {
	h := mustNew(t, Shards(1))
	i := bucketIndex(h.table, uint(h.scale), 1_500_000_000)
	_, hi := intRange(h.scale, i)
	base := bucketBase(h.table, h.scale, i)
	v := min(hi, base+maxFastOffset-1) // the largest offset the fast path takes
	require.Less(t, uint64(v-base), uint64(maxFastOffset))
	const n = 3*flushOffset/maxFastOffset + 17 // several offset flushes
	for range n {
		h.RecordValue(v)
	}
	h.RecordValue(hi) // and one on the slow path, if hi is past the fast range
	s := h.Snapshot()
	assert.Equal(t, uint64(n+1), s.Count())
	want := new(big.Int).Mul(big.NewInt(v), big.NewInt(n))
	want.Add(want, big.NewInt(hi))
	got := new(big.Int).Lsh(new(big.Int).SetUint64(s.sumHi), 64)
	got.Add(got, new(big.Int).SetUint64(s.sumLo))
	assert.Equal(t, want.String(), got.String(), "the sum survives the flushes")
	c := h.shards[0].Load().chunks[i>>h.scale].Load()
	require.NotNil(t, c.extra.Load(), "the flush path ran")
}

func TestHotBucketCountsFlushBeforeTheirFieldFills(t *testing.T) {
	if testing.Short() {
		t.Skip("records 2^23 values")
	}
	h := mustNew(t, Shards(1))
	const n = flushCount + 1000
	for range n {
		h.Record(time.Microsecond)
	}
	s := h.Snapshot()
	assert.Equal(t, uint64(n), s.Count())
	sum, ok := s.Sum()
	require.True(t, ok)
	assert.Equal(t, n*time.Microsecond, sum)
}
