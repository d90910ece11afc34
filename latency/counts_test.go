package latency

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Counts never wrap: a call that would take a count past what it can hold
// is refused (with an error wrapping ErrCountLimit, and records nothing),
// so a count never goes backwards and every snapshot encodes to bytes that
// decode. These tests call the bulk paths as statements, ignoring what
// they return, so that they read the same against any signature.

// countNeverGoesBack records with each step and checks, after each, that
// Count and Invalid did not decrease and the snapshot round-trips.
func countNeverGoesBack(t *testing.T, snap func() *Snapshot, steps ...func()) {
	t.Helper()
	var count, invalid uint64
	for i, step := range steps {
		step()
		s := snap()
		require.GreaterOrEqualf(t, s.Count(), count, "step %d: the count went backwards", i)
		require.GreaterOrEqualf(t, s.Invalid(), invalid, "step %d: the invalid count went backwards", i)
		roundTrips(t, s)
		count, invalid = s.Count(), s.Invalid()
	}
}

func TestHugeRecordNsNeverTakeTheCountBackwards(t *testing.T) {
	// Issue 9: RecordN(1000, 2^63) twice, then RecordN(5000, 10), gave 10.
	h := mustNew(t)
	countNeverGoesBack(t, h.Snapshot,
		func() { h.RecordN(1000, 1<<63) },
		func() { h.RecordN(1000, 1<<63) },
		func() { h.RecordN(5000, 10) },
		func() { h.RecordN(0, math.MaxUint64) },
		func() { h.RecordN(0, math.MaxUint64) },
		func() { h.RecordN(MaxValue+1, math.MaxUint64) },
		func() { h.RecordN(-1, math.MaxUint64) },
		func() { h.RecordN(-1, math.MaxUint64) },
	)
	assert.GreaterOrEqual(t, h.Snapshot().Count(), uint64(10), "the values that fit are in")
}

func TestEverySnapshotOfHugeRecordNsDecodes(t *testing.T) {
	// Issue 9: 64 × RecordN(v, 2^58) made a snapshot whose own encoding
	// failed to decode ("count overflows").
	h := mustNew(t)
	var steps []func()
	for i := range 64 {
		steps = append(steps, func() { h.RecordN(int64(1000+100*i), 1<<58) })
	}
	countNeverGoesBack(t, h.Snapshot, steps...)
	checkSnapshot(t, h.Snapshot())
}

func TestHugeCorrectionsAndMergesNeverTakeTheCountBackwards(t *testing.T) {
	h := mustNew(t)
	countNeverGoesBack(t, h.Snapshot,
		func() { h.RecordCorrected(math.MaxInt64, 1) }, // 2^63-1 values
		func() { h.RecordCorrected(math.MaxInt64, 1) },
		func() { h.RecordCorrected(math.MaxInt64, 2) },
	)
	big := mustNew(t)
	big.RecordN(int64(time.Millisecond), 1<<61)
	var s Snapshot
	require.NoError(t, s.UnmarshalBinary(encode(t, big.Snapshot())))
	acc := mustNew(t)
	steps := []func(){}
	for range 8 {
		steps = append(steps, func() { acc.Merge(&s) })
	}
	countNeverGoesBack(t, acc.Snapshot, steps...)
}

func TestARecorderIntervalReturnsAfterHugeCorrections(t *testing.T) {
	// Two corrections of 2^63-1 values each once carried into the phase
	// bit of the Recorder's registrations: the second landed in the other
	// interval and Interval waited forever for it.
	r, err := NewRecorder(Shards(1))
	require.NoError(t, err)
	r.RecordCorrected(math.MaxInt64, 1)
	r.RecordCorrected(math.MaxInt64, 1)
	r.Record(time.Millisecond)
	s := intervalWithin(t, r)
	assert.GreaterOrEqual(t, s.Count(), uint64(1))
	roundTrips(t, s)
	assert.Zero(t, intervalWithin(t, r).Count(), "every value was in the first interval")
}

// intervalWithin returns r.Interval(), failing the test if it does not
// return within readerDeadline.
func intervalWithin(t *testing.T, r *Recorder) *Snapshot {
	t.Helper()
	done := make(chan *Snapshot, 1)
	go func() { done <- r.Interval() }()
	select {
	case s := <-done:
		return s
	case <-time.After(readerDeadline):
		t.Fatalf("Interval did not return within %v", readerDeadline)
		return nil
	}
}

func TestBulkAddsPastMaxBulkCountAreRefusedAndChangeNothing(t *testing.T) {
	h := mustNew(t)
	require.NoError(t, h.RecordN(1000, MaxBulkCount-10))
	before := h.Snapshot()
	refused := map[string]error{
		"RecordN":         h.RecordN(2000, 11),
		"RecordN invalid": h.RecordN(-1, 11),
		"RecordN max":     h.RecordN(5, math.MaxUint64),
		"RecordCorrected": h.RecordCorrected(12, 1), // 12 and 10 synthetic samples
		"Merge":           h.Merge(before),
	}
	for name, err := range refused {
		assert.ErrorIsf(t, err, ErrCountLimit, "%s past MaxBulkCount", name)
	}
	assert.Equal(t, before, h.Snapshot(), "a refused call records nothing")
	require.NoError(t, h.RecordN(3000, 10), "up to MaxBulkCount exactly")
	require.NoError(t, h.RecordN(4000, 1), "one value is not a bulk add")
	require.NoError(t, h.RecordCorrected(5, 10), "nor is a correction without synthetic samples")
	h.Record(time.Millisecond)
	assert.Equal(t, uint64(MaxBulkCount+3), h.Snapshot().Count())

	var nearFull Snapshot
	require.NoError(t, nearFull.UnmarshalBinary(encode(t, h.Snapshot())))
	require.NoError(t, nearFull.Add(&nearFull), "2^63+6 values")
	_, err := nearFull.Merge(&nearFull)
	assert.ErrorIs(t, err, ErrCountLimit, "a snapshot merge past 2^64-1 too")
	assert.ErrorIs(t, nearFull.Add(&nearFull), ErrCountLimit)
	roundTrips(t, &nearFull)
}

func TestEachRecorderIntervalHasItsOwnBulkLimit(t *testing.T) {
	r, err := NewRecorder()
	require.NoError(t, err)
	for range 2 {
		// 2^61 values each: d = 2^61 ns and 2^61-1 samples 1 ns apart.
		require.NoError(t, r.RecordCorrected(1<<61, 1))
		require.NoError(t, r.RecordCorrected(1<<61, 1))
		require.ErrorIs(t, r.RecordCorrected(3, 1), ErrCountLimit, "the interval is full")
		require.NoError(t, r.RecordCorrected(3, 5), "a value without synthetic samples still goes in")
		s := intervalWithin(t, r)
		assert.Equal(t, uint64(MaxBulkCount+1), s.Count())
		roundTrips(t, s)
	}
}

// FuzzCountsNeverWrap records a fuzzed sequence of single values, huge
// RecordNs, corrections and merges of the histogram into itself, and checks
// each call against a model: a bulk call is refused exactly when it would
// take the values taken in bulk past MaxBulkCount, the counts are exactly
// what the accepted calls added, and every snapshot encodes to bytes that
// decode to it.
func FuzzCountsNeverWrap(f *testing.F) {
	f.Add(uint8(6), []byte{0, 0xe8, 63, 0, 0xe8, 63, 0, 0x88, 3}) // 2^63 twice, then 10
	f.Add(uint8(6), []byte{4, 1, 58, 4, 2, 58, 4, 3, 58, 4, 4, 58, 2, 0, 0, 2, 0, 0, 2, 0, 0, 2, 0, 0})
	f.Add(uint8(3), []byte{1, 0xff, 62, 5, 0xff, 62, 9, 1, 0x7f, 2, 0, 0, 3, 7, 0x47})
	f.Add(uint8(8), []byte{8, 200, 0x3f, 12, 1, 0x40, 3, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, scale uint8, ops []byte) {
		h := mustNew(t, Scale(int(scale%(MaxScale+1))), Shards(2))
		var bulk, count, invalid uint64 // the model
		for ; len(ops) >= 3; ops = ops[3:] {
			op, a, b := ops[0], ops[1], ops[2]
			v := int64(a) << (b & 63)
			if b&64 != 0 {
				v = -v
			}
			var n uint64
			switch op >> 2 % 4 {
			case 0:
				n = uint64(a)
			case 1:
				n = 1 << (b & 63)
			case 2:
				n = math.MaxUint64 - uint64(a)
			case 3:
				n = uint64(a) << (b & 63)
			}
			var err error
			var addValid, addInvalid, take uint64 // what the call adds, and takes in bulk
			switch op % 4 {
			case 0:
				err = h.RecordN(v, n)
				if v < 0 {
					addInvalid = n
				} else {
					addValid = n
				}
				if n > 1 {
					take = n
				}
			case 1:
				iv := int64(op >> 4)
				err = h.RecordCorrected(time.Duration(v), time.Duration(iv))
				switch {
				case v < 0:
					addInvalid = 1
				case iv > 0 && v-iv >= iv:
					addValid = 1 + uint64((v-iv)/iv)
					take = addValid
				default:
					addValid = 1
				}
			case 2:
				err = h.Merge(h.Snapshot())
				addValid, addInvalid = count, invalid
				take = count + invalid
			case 3:
				h.RecordValue(v)
				if v < 0 {
					addInvalid = 1
				} else {
					addValid = 1
				}
			}
			if take > MaxBulkCount-bulk {
				require.ErrorIs(t, err, ErrCountLimit, "op %d v=%d n=%d: bulk %d + %d is past MaxBulkCount", op, v, n, bulk, take)
			} else {
				require.NoError(t, err, "op %d v=%d n=%d", op, v, n)
				bulk += take
				count += addValid
				invalid += addInvalid
			}
			s := h.Snapshot()
			require.Equal(t, count, s.Count(), "op %d v=%d n=%d", op, v, n)
			require.Equal(t, invalid, s.Invalid(), "op %d v=%d n=%d", op, v, n)
			roundTrips(t, s)
		}
		checkSnapshot(t, h.Snapshot())
	})
}

func TestQuantileOneIsMaxAtAnyCount(t *testing.T) {
	// 2^60+1 values: q·Count rounds to 2^60 as a float64, which once
	// answered a bucket below Max.
	for _, n := range []uint64{1<<53 + 1, 1<<60 + 1, MaxBulkCount} {
		h := mustNew(t)
		h.RecordN(1000, n-1)
		h.RecordValue(2000)
		s := h.Snapshot()
		require.Equal(t, n, s.Count())
		assert.Equal(t, 2000*time.Nanosecond, s.Quantile(1), "%d values: quantile 1 is Max", n)
		assert.InEpsilon(t, 1000, int64(s.Quantile(0.5)), s.RelativeError(), "%d values", n)
	}
}
