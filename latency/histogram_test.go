package latency

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustNew(t testing.TB, opts ...Option) *Histogram {
	t.Helper()
	h, err := New(opts...)
	require.NoError(t, err)
	return h
}

// latencyLike draws n values: a log-normal body around 400µs plus a 1%
// heavy (Pareto) tail reaching seconds, and a few exact zeros.
func latencyLike(rng *rand.Rand, n int) []int64 {
	vs := make([]int64, n)
	for i := range vs {
		switch {
		case i%100000 == 7:
			vs[i] = 0
		case rng.IntN(100) == 0:
			vs[i] = int64(2e6 / math.Pow(rng.Float64(), 1/1.2)) // Pareto from 2ms
		default:
			vs[i] = int64(math.Exp(math.Log(400e3) + 0.6*rng.NormFloat64()))
		}
		vs[i] = min(vs[i], int64(time.Hour))
	}
	return vs
}

func TestEveryQuantileOfAMillionLatenciesIsWithinTheStatedError(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	vs := latencyLike(rand.New(rand.NewPCG(7, 8)), n)
	for _, scale := range []int{DefaultScale, MaxScale, 2} {
		h := mustNew(t, Scale(scale))
		sum := new(big.Int)
		for _, v := range vs {
			h.Record(time.Duration(v))
			sum.Add(sum, big.NewInt(v))
		}
		s := h.Snapshot()
		sorted := slices.Clone(vs)
		slices.Sort(sorted)
		require.Equal(t, uint64(n), s.Count(), "count must be exact")
		assert.Equal(t, time.Duration(sorted[0]), s.Min(), "min must be exact")
		assert.Equal(t, time.Duration(sorted[n-1]), s.Max(), "max must be exact")
		got, ok := s.Sum()
		require.True(t, ok)
		assert.Equal(t, sum.Int64(), int64(got), "sum must be exact")
		bound := s.RelativeError()
		qs := []float64{0, 1e-6, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 0.99999, 1}
		for q := 0.0; q < 1; q += 0.0013 {
			qs = append(qs, q)
		}
		for _, q := range qs {
			exact := sorted[rank(q, uint64(n))-1]
			v, err := s.ValueAtQuantile(q)
			require.NoError(t, err)
			assert.LessOrEqualf(t, math.Abs(float64(v-exact)), bound*float64(exact)+0.5,
				"scale %d q=%v: got %d, exact %d, bound %.4f", scale, q, v, exact, bound)
		}
		assert.Equal(t, s.Min(), s.Quantile(0), "p0 is min")
		assert.Equal(t, s.Max(), s.Quantile(1), "p100 is max")
	}
}

func TestSmallIntegersAreExactWhereBucketsHoldOneValue(t *testing.T) {
	h := mustNew(t)
	for v := int64(0); v <= 60; v++ {
		h.RecordValue(v)
	}
	s := h.Snapshot()
	for v := int64(0); v <= 60; v++ {
		got, err := s.ValueAtQuantile(float64(v+1) / 61)
		require.NoError(t, err)
		assert.Equalf(t, v, got, "at scale 6 every integer up to 60 has a bucket of its own")
	}
}

func TestStatisticsOfAKnownSet(t *testing.T) {
	h := mustNew(t)
	for _, d := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond} {
		h.Record(d)
	}
	s := h.Snapshot()
	assert.Equal(t, 2500*time.Microsecond, s.Mean(), "mean is exact")
	sd := s.StdDev()
	exact := 1118034 * time.Nanosecond
	assert.InDelta(t, float64(exact), float64(sd), float64(exact)*0.02, "stddev within the bucket error")
	assert.Equal(t, uint64(2), s.CountAtOrBelow(2*time.Millisecond+30*time.Microsecond), "two values at or below 2.03ms")
	assert.Equal(t, uint64(4), s.CountAtOrBelow(time.Hour), "all at or below an hour")
	assert.Equal(t, uint64(0), s.CountAtOrBelow(time.Microsecond), "none below the minimum")
	sum := s.Summary()
	assert.Equal(t, uint64(4), sum.Count)
	assert.Equal(t, 4*time.Millisecond, sum.Max)
	assert.InDelta(t, float64(2*time.Millisecond), float64(sum.P50), 2e6*s.RelativeError(), "p50 is the 2nd of 4")
}

func TestCountAtOrBelowIsALowerBoundWithinOneBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	vs := latencyLike(rng, 20000)
	h := mustNew(t)
	for _, v := range vs {
		h.RecordValue(v)
	}
	s := h.Snapshot()
	slices.Sort(vs)
	for range 500 {
		th := vs[rng.IntN(len(vs))] + rng.Int64N(1000) - 500
		exact := uint64(sortSearch(vs, th))
		got := s.CountAtOrBelow(time.Duration(th))
		lower := uint64(sortSearch(vs, int64(float64(th)/(1+2*s.RelativeError()))-1))
		assert.LessOrEqualf(t, got, exact, "threshold %d: never more than the exact count", th)
		assert.GreaterOrEqualf(t, got, lower, "threshold %d: at most one bucket short", th)
	}
}

// sortSearch counts the values <= th in sorted vs.
func sortSearch(vs []int64, th int64) int {
	i, _ := slices.BinarySearch(vs, th+1)
	return i
}

func TestInvalidAndOverflowingValuesAreCountedNotLost(t *testing.T) {
	h := mustNew(t)
	h.Record(-time.Second)
	h.RecordValue(-1)
	h.RecordValue(MaxValue + 1)
	h.RecordValue(math.MaxInt64)
	h.Record(0)
	h.Record(time.Millisecond)
	s := h.Snapshot()
	assert.Equal(t, uint64(2), s.Invalid(), "negative values are invalid")
	assert.Equal(t, uint64(2), s.Overflow(), "values above MaxValue overflow")
	assert.Equal(t, uint64(1), s.ZeroCount())
	assert.Equal(t, uint64(4), s.Count(), "overflow is part of the count, invalid is not")
	assert.Equal(t, time.Duration(0), s.Min())
	assert.Equal(t, time.Duration(math.MaxInt64), s.Max())
	_, ok := s.Sum()
	assert.False(t, ok, "the sum exceeds a Duration and says so")
	assert.InDelta(t, float64(MaxValue+1)+math.MaxInt64+1e6, s.SumFloat(), 1e4)
	assert.Equal(t, time.Duration(math.MaxInt64), s.Quantile(0.9), "a quantile among overflows reports max")
}

func TestOptionsRejectBadValuesWithAnOptionErrorNamingThem(t *testing.T) {
	for _, o := range []Option{Scale(-1), Scale(9), RelativeError(0), RelativeError(math.NaN()), RelativeError(0.0001), Shards(3), Shards(0), Shards(128)} {
		for name, build := range map[string]func(...Option) error{
			"New":         func(opts ...Option) error { _, err := New(opts...); return err },
			"NewRecorder": func(opts ...Option) error { _, err := NewRecorder(opts...); return err },
		} {
			err := build(Scale(4), o)
			var oe *OptionError
			if assert.ErrorAsf(t, err, &oe, "%s(%v)", name, o) {
				assert.Equalf(t, o.String(), oe.Option.String(), "%s(%v): the error holds the option refused", name, o)
				assert.Truef(t, strings.HasPrefix(err.Error(), o.String()+": "),
					"%s(%v): the message starts with the option as written, no other prefix: %q", name, o, err)
			}
		}
	}
	_, err := New(nil)
	var oe *OptionError
	require.ErrorAs(t, err, &oe, "a nil option is an error")
	assert.Nil(t, oe.Option)
	assert.Equal(t, "latency: nil Option", err.Error())
	assert.Equal(t, "latency.Scale(9)", Scale(9).String())
	assert.Equal(t, "latency.RelativeError(0.01)", RelativeError(0.01).String())
	assert.Equal(t, "latency.Shards(3)", Shards(3).String())
	h := mustNew(t, RelativeError(0.01))
	assert.Equal(t, 6, h.Scale(), "1% needs scale 6")
	h = mustNew(t, RelativeError(0.002))
	assert.Equal(t, 8, h.Scale(), "0.2% needs scale 8")
	_, err = h.Snapshot().ValueAtQuantile(1.5)
	assert.Error(t, err, "quantile above 1")
}

func TestQuantileOutsideZeroToOneIsMinusOne(t *testing.T) {
	h := mustNew(t)
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, s := range []*Snapshot{h.Snapshot(), {}} {
		for _, q := range []float64{99, 99.9, 100, 1.5, -0.5, math.NaN(), math.Inf(-1)} {
			assert.Equalf(t, time.Duration(-1), s.Quantile(q), "Quantile(%v) of %d values", q, s.Count())
		}
		assert.GreaterOrEqual(t, s.Quantile(0.99), time.Duration(0), "a quantile in [0, 1] is a duration")
	}
}

func TestAnEmptySnapshotTakesTheOtherOperandsScale(t *testing.T) {
	fine := mustNew(t, Scale(8))
	fine.Record(time.Millisecond)
	emptyCoarse := mustNew(t, Scale(2)).Snapshot()
	for name, empty := range map[string]*Snapshot{"zero Snapshot": {}, "empty scale 2": emptyCoarse} {
		m, err := empty.Merge(fine.Snapshot())
		require.NoError(t, err)
		assert.Equal(t, 8, m.Scale(), "%s merged with scale 8", name)
		m, err = fine.Snapshot().Merge(empty)
		require.NoError(t, err)
		assert.Equal(t, 8, m.Scale(), "scale 8 merged with %s", name)

		var acc Snapshot
		require.NoError(t, acc.Add(empty))
		require.NoError(t, acc.Add(fine.Snapshot()))
		assert.Equal(t, 8, acc.Scale(), "an empty accumulator takes the scale of the first values added")
		assert.Equal(t, fine.Snapshot().Count(), acc.Count())
	}
}

func TestRecordCorrectedAddsTheSamplesAStallHid(t *testing.T) {
	h, ref := mustNew(t), mustNew(t)
	require.NoError(t, h.RecordCorrected(100*time.Millisecond, 10*time.Millisecond))
	require.NoError(t, h.RecordCorrected(5*time.Millisecond, 10*time.Millisecond))
	ref.Record(100 * time.Millisecond)
	for v := 90 * time.Millisecond; v >= 10*time.Millisecond; v -= 10 * time.Millisecond {
		ref.Record(v)
	}
	ref.Record(5 * time.Millisecond)
	assert.Equal(t, ref.Snapshot(), h.Snapshot(), "same as recording each missed sample")
}

func TestRecordCorrectedMatchesTheSampleBySampleModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		h, ref := mustNew(t, Shards(1)), mustNew(t, Shards(1))
		iv := 1 + rng.Int64N(5000)
		v := rng.Int64N(iv * (1 + rng.Int64N(3000)))
		if rng.IntN(10) == 0 {
			v = MaxValue - rng.Int64N(1000)*iv // straddle the overflow edge
			iv = 1 + rng.Int64N(MaxValue/2000)
		}
		require.NoError(t, h.RecordCorrected(time.Duration(v), time.Duration(iv)))
		ref.RecordValue(v)
		for m := v - iv; m >= iv; m -= iv {
			ref.RecordValue(m)
		}
		require.Equalf(t, ref.Snapshot(), h.Snapshot(), "v=%d interval=%d", v, iv)
	}
}

func TestConcurrentWritersLoseNothing(t *testing.T) {
	recordFromWriters(t, mustNew(t), 8, 20000)
}

// recordFromWriters records 1 to writers×per from that many goroutines at
// once and checks that count, sum, min and max are exact once they stop.
func recordFromWriters(t *testing.T, h *Histogram, writers, per int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				h.RecordValue(int64(w*per + i + 1))
			}
		})
	}
	wg.Wait()
	s := h.Snapshot()
	n := uint64(writers * per)
	assert.Equal(t, n, s.Count(), "every value is counted")
	sum, _ := s.Sum()
	assert.Equal(t, int64(n*(n+1)/2), int64(sum), "sum of 1..n")
	assert.Equal(t, time.Duration(1), s.Min())
	assert.Equal(t, time.Duration(n), s.Max())
}

func TestSnapshotsMergeIndexToIndexAndAcrossScales(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	vs := latencyLike(rng, 50000)
	a, b, all := mustNew(t), mustNew(t), mustNew(t)
	for i, v := range vs {
		if i%3 == 0 {
			a.RecordValue(v)
		} else {
			b.RecordValue(v)
		}
		all.RecordValue(v)
	}
	m, err := a.Snapshot().Merge(b.Snapshot())
	require.NoError(t, err)
	assert.Equal(t, all.Snapshot(), m, "merge equals recording everything in one")

	coarse := mustNew(t, Scale(3))
	for _, v := range vs[:1000] {
		coarse.RecordValue(v)
	}
	m2, err := a.Snapshot().Merge(coarse.Snapshot())
	require.NoError(t, err)
	assert.Equal(t, 3, m2.Scale(), "the coarser scale wins")
	ref := mustNew(t, Scale(3))
	for i, v := range vs {
		if i%3 == 0 {
			ref.RecordValue(v)
		}
	}
	for _, v := range vs[:1000] {
		ref.RecordValue(v)
	}
	assert.Equal(t, ref.Snapshot(), m2, "downscaled merge equals recording at the coarse scale")

	empty, err := (&Snapshot{}).Merge(a.Snapshot())
	require.NoError(t, err)
	assert.Equal(t, a.Snapshot(), empty, "merging into the zero Snapshot keeps the resolution")

	require.NoError(t, all.Merge(coarse.Snapshot().withScaleCheck(t)), "a finer histogram accepts only finer or equal snapshots")
}

// withScaleCheck asserts that merging a coarse snapshot into a finer
// histogram fails, then returns an empty snapshot to finish the test.
func (s *Snapshot) withScaleCheck(t *testing.T) *Snapshot {
	h := mustNew(t, Scale(MaxScale))
	assert.Error(t, h.Merge(s), "cannot raise resolution")
	return &Snapshot{}
}

func TestHistogramMergeAddsADecodedSnapshot(t *testing.T) {
	src, dst, ref := mustNew(t, Scale(8)), mustNew(t), mustNew(t)
	vs := latencyLike(rand.New(rand.NewPCG(1, 1)), 10000)
	for i, v := range vs {
		if i%2 == 0 {
			src.RecordValue(v)
		} else {
			dst.RecordValue(v)
		}
		ref.RecordValue(v)
	}
	src.RecordValue(-5)
	ref.RecordValue(-5)
	b, err := src.Snapshot().MarshalBinary()
	require.NoError(t, err)
	var got Snapshot
	require.NoError(t, got.UnmarshalBinary(b))
	require.NoError(t, dst.Merge(&got))
	assert.Equal(t, ref.Snapshot(), dst.Snapshot())
}

func TestRecordDoesNotAllocate(t *testing.T) {
	h := mustNew(t)
	h.Record(time.Millisecond) // allocate the shard and octave
	allocs := testing.AllocsPerRun(1000, func() { h.Record(time.Millisecond + 3) })
	assert.Zero(t, allocs)
	r, err := NewRecorder()
	require.NoError(t, err)
	r.Record(time.Millisecond)
	allocs = testing.AllocsPerRun(1000, func() { r.Record(time.Millisecond + 3) })
	assert.Zero(t, allocs)
}

func TestAddInPlaceEqualsMergeAndDoesNotAllocateWithinRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	wide, narrow, coarse := mustNew(t), mustNew(t), mustNew(t, Scale(4))
	for _, v := range latencyLike(rng, 20000) {
		wide.RecordValue(v)
	}
	wide.RecordValue(1)                // widen the range past everything below
	wide.RecordValue(int64(time.Hour)) // and above
	wide.RecordValue(-3)
	for i := range 5000 {
		v := int64(300e3 + rng.IntN(200e3))
		if i%1000 == 0 {
			v = 0
		}
		narrow.RecordValue(v)
		coarse.RecordValue(v)
	}
	narrow.RecordValue(MaxValue + 7)
	for _, pair := range [][2]*Histogram{{wide, narrow}, {narrow, wide}, {wide, coarse}, {coarse, wide}} {
		a, b := pair[0].Snapshot(), pair[1].Snapshot()
		want, err := a.Merge(b)
		require.NoError(t, err)
		require.NoError(t, a.Add(b))
		assert.Equal(t, want, a, "Add leaves in s what Merge returns")
	}
	acc, b := wide.Snapshot(), narrow.Snapshot()
	allocs := testing.AllocsPerRun(100, func() { require.NoError(t, acc.Add(b)) })
	assert.Zero(t, allocs, "adding a snapshot within the accumulator's range allocates nothing")
	assert.Equal(t, wide.Snapshot().Count()+101*b.Count(), acc.Count())

	var zero Snapshot
	require.NoError(t, zero.Add(b))
	assert.Equal(t, b, &zero, "adding into the zero Snapshot keeps the resolution")
	huge := &Snapshot{scale: DefaultScale, zero: math.MaxUint64, min: 0, max: 0}
	before := *b
	assert.Error(t, b.Add(huge), "a count past 2^64 is an error")
	assert.Equal(t, before, *b, "and leaves s unchanged")
}
