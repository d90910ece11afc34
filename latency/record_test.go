package latency

import (
	"math"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allShards allocates every shard of h (pinned and atomic) and returns them.
func allShards(h *Histogram) []*shard {
	var out []*shard
	for _, set := range [2][]atomic.Pointer[shard]{h.pinned, h.shards} {
		for k := range set {
			set[k].CompareAndSwap(nil, newShard())
			out = append(out, set[k].Load())
		}
	}
	return out
}

func TestWrappingBucketCountersLoseNoCount(t *testing.T) {
	h := mustNew(t, Shards(2))
	v := int64(time.Millisecond)
	i := h.bucketOf(v)
	shards := allShards(h)
	const start = math.MaxUint32 - 10
	for _, sh := range shards {
		c := sh.chunkAtomic(i>>h.scale, h.scale)
		*counter(c, i&(1<<h.scale-1)) = start
	}
	const n = 100 // at least one counter wraps, whichever shards they hit
	for range n {
		h.Record(time.Duration(v))
	}
	require.NoError(t, h.RecordN(v, 3<<32+5)) // and a count wider than a counter
	want := uint64(len(shards))*start + n + 3<<32 + 5
	s := h.Snapshot()
	got := uint64(0)
	s.Buckets(func(j int, c uint64) bool {
		if j == slotBucket(h.scale, i) {
			got = c
		}
		return true
	})
	assert.Equal(t, want, got, "the bucket holds every count, across wraps of its 32-bit counters")
	wrapped := 0
	for _, sh := range shards {
		if w := sh.wraps.Load(); w != nil && (*w)[i] > 0 {
			wrapped++
		}
	}
	assert.NotZero(t, wrapped, "the wrap path ran")
}

func TestRecordTakesThePathTheBuildPromises(t *testing.T) {
	h := mustNew(t)
	h.Record(time.Millisecond)
	pinned := 0
	for k := range h.pinned {
		if h.pinned[k].Load() != nil {
			pinned++
		}
	}
	if pinnedPath {
		assert.Len(t, h.pinned, runtime.GOMAXPROCS(0), "one pinned shard per P")
		assert.Equal(t, 1, pinned, "the value went to its P's shard, with plain writes")
	} else {
		assert.Nil(t, h.pinned, "race, gccgo and nettune_atomic builds only use atomic adds")
	}
	r, err := NewRecorder()
	require.NoError(t, err)
	assert.Nil(t, r.hist[0].pinned, "a Recorder's intervals only use atomic adds, which its phase flip relies on")
}

func TestRaisingGOMAXPROCSAfterNewLosesNoCount(t *testing.T) {
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	h := mustNew(t)
	runtime.GOMAXPROCS(4) // Ps 1 to 3 have no pinned shard: their values take the atomic path
	recordFromWriters(t, h, 8, 20000)
}

func TestAPWithoutAPinnedShardFallsBackToTheAtomicPath(t *testing.T) {
	h := mustNew(t)
	h.pinned = h.pinned[:0] // as if every P had been added after New
	h.Record(time.Millisecond)
	h.Record(2 * time.Millisecond)
	s := h.Snapshot()
	assert.Equal(t, uint64(2), s.Count(), "both values are counted")
	assert.Equal(t, 2*time.Millisecond, s.Max())
	atomicShards := 0
	for k := range h.shards {
		if h.shards[k].Load() != nil {
			atomicShards++
		}
	}
	assert.NotZero(t, atomicShards, "the values went to the stack-address shards")
}
