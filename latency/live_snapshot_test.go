package latency

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// atomicTwin returns a histogram with the default configuration whose
// every write takes the atomic path: the reference the pinned path must
// agree with.
func atomicTwin(t testing.TB) *Histogram {
	t.Helper()
	c, err := buildConfig(nil)
	require.NoError(t, err)
	return newAtomicHistogram(c)
}

func TestSnapshotsOfALiveHistogramNeverLoseCountsWhileOctavesAreAdded(t *testing.T) {
	h, ref := mustNew(t), atomicTwin(t)
	const writers, per = 4, 20000
	value := func(w, i int) int64 {
		// From octave 25, half the writers go up and half go down, one
		// octave more every per/25 values: the shards keep adding octaves
		// while the reader runs.
		e := 25 + i/(per/25)
		if w%2 == 1 {
			e = 25 - i/(per/25)
		}
		return 1<<e + int64(i%1000)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				h.RecordValue(value(w, i))
			}
		})
	}
	// The reader keeps up to 2000 snapshots taken while the writers run;
	// the checks run here, once the writers have stopped.
	var live []*Snapshot
	var reader sync.WaitGroup
	reader.Go(func() {
		for !done.Load() && len(live) < 2000 {
			live = append(live, h.Snapshot())
		}
	})
	wg.Wait()
	done.Store(true)
	reader.Wait()
	for w := range writers {
		for i := range per {
			ref.RecordValue(value(w, i))
		}
	}
	final := h.Snapshot()
	require.Equal(t, ref.Snapshot(), final, "once writers stop, the snapshot is exact")
	want := final.counts()
	var last uint64
	for k, s := range live {
		require.GreaterOrEqualf(t, s.Count(), last, "snapshot %d: the count went backwards", k)
		last = s.Count()
		for i, n := range s.counts() {
			require.LessOrEqualf(t, n, want[i], "snapshot %d: bucket %d holds more than was ever recorded there", k, i)
		}
		roundTrips(t, s)
	}
	t.Logf("%d snapshots taken while %d writers recorded", len(live), writers)
}
