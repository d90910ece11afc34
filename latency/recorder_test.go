package latency

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIntervalsConserveEveryValueWhileWritersKeepRecording(t *testing.T) {
	r, err := NewRecorder()
	require.NoError(t, err)
	ref := mustNew(t)
	const writers = 6
	per := 30000
	if testing.Short() {
		per = 5000
	}
	var wg sync.WaitGroup
	var done, taken atomic.Int32
	for w := range writers {
		rng := rand.New(rand.NewPCG(uint64(w), 99))
		vs := latencyLike(rng, per)
		for i := range vs {
			if i%997 == 0 {
				vs[i] = -1 // invalid values are conserved too
			}
			ref.RecordValue(vs[i])
		}
		wg.Go(func() {
			defer done.Add(1)
			for i, v := range vs {
				if i%3000 == 0 {
					// Let the reader take an interval mid-stream, so
					// intervals always split this writer's values.
					for seen := taken.Load(); taken.Load() == seen; {
						runtime.Gosched()
					}
				}
				if i%501 == 0 {
					assert.NoError(t, r.RecordCorrected(time.Duration(v)*3, time.Duration(v))) // 3 values
					continue
				}
				r.RecordValue(v)
			}
		})
		// The corrected records above add v*3, v*2 and v instead of v:
		// mirror them in the reference.
		for i, v := range vs {
			if i%501 == 0 && v > 0 {
				ref.RecordValue(3 * v)
				ref.RecordValue(2 * v)
			}
		}
	}
	total := &Snapshot{}
	intervals := 0
	for done.Load() < writers {
		s := r.Interval()
		checkConsistent(t, s)
		total, err = total.Merge(s)
		require.NoError(t, err)
		intervals++
		taken.Add(1)
	}
	wg.Wait()
	s := r.Interval()
	checkConsistent(t, s)
	total, err = total.Merge(s)
	require.NoError(t, err)
	assert.Greater(t, intervals, per/3000, "the reader took intervals while writers ran")
	assert.Equal(t, ref.Snapshot(), total, "the intervals add up to every value recorded, each once")
	assert.Zero(t, r.Interval().Count(), "nothing is left over")
}

// checkConsistent asserts that a snapshot's min, max and sum agree with its
// buckets, using the decoder's validation.
func checkConsistent(t *testing.T, s *Snapshot) {
	t.Helper()
	b, err := s.MarshalBinary()
	require.NoError(t, err)
	var back Snapshot
	require.NoErrorf(t, back.UnmarshalBinary(b), "interval of %d values is self-consistent", s.Count())
}

func TestSnapshotsTakenDuringWritesAreConsistentAndNeverGoBack(t *testing.T) {
	h, ref := mustNew(t), mustNew(t)
	const writers, per = 4, 20000
	var wg sync.WaitGroup
	var done atomic.Int32
	for w := range writers {
		vs := latencyLike(rand.New(rand.NewPCG(uint64(w), 5)), per)
		for _, v := range vs {
			ref.RecordValue(v)
		}
		wg.Go(func() {
			defer done.Add(1)
			for _, v := range vs {
				h.RecordValue(v)
			}
		})
	}
	var prev uint64
	for done.Load() < writers {
		s := h.Snapshot()
		checkConsistent(t, s)
		assert.GreaterOrEqual(t, s.Count(), prev, "counts only grow")
		prev = s.Count()
		if s.Count() > 0 {
			p50, p99 := s.Quantile(0.5), s.Quantile(0.99)
			assert.True(t, s.Min() <= p50 && p50 <= p99 && p99 <= s.Max(), "min <= p50 <= p99 <= max")
		}
	}
	wg.Wait()
	assert.Equal(t, uint64(writers*per), h.Snapshot().Count())
	assert.Equal(t, ref.Snapshot(), h.Snapshot(), "once writers stop, every bucket, the sum, min and max are exact")
}
