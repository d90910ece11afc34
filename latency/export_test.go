package latency

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNativeHistogramSpansAndDeltasRebuildEveryBucket(t *testing.T) {
	h := mustNew(t)
	for _, v := range latencyLike(rand.New(rand.NewPCG(4, 4)), 20000) {
		h.RecordValue(v)
	}
	s := h.Snapshot()
	nh := s.NativeHistogram()
	assert.Equal(t, int32(6), nh.Schema)
	assert.Equal(t, s.Count(), nh.Count)
	assert.Equal(t, s.ZeroCount(), nh.ZeroCount)
	got := map[int]uint64{}
	i, count := int32(0), int64(0)
	k := 0
	for j, sp := range nh.PositiveSpans {
		if j == 0 {
			i = sp.Offset
		} else {
			i += sp.Offset
		}
		for range sp.Length {
			count += nh.PositiveDeltas[k]
			k++
			if count != 0 { // a gap of one or two buckets bridged inside a span
				got[int(i)] = uint64(count)
			}
			i++
		}
	}
	assert.Equal(t, s.counts(), got, "decoding spans and deltas gives back the buckets")
}

func TestExponentialHistogramBucketsHoldTheirValuesInSeconds(t *testing.T) {
	for _, s := range []int{0, 6, 8} {
		ref := newExactBucket(s)
		for _, v := range []int64{1, 2, 3, 1000, 1 << 20, 123456789, 1e9 - 1, 1e9, 1e9 + 1, 2e9, 3e9, MaxValue} {
			h := mustNew(t, Scale(s))
			h.RecordValue(v)
			eh := h.Snapshot().ExponentialHistogram()
			require.Len(t, eh.PositiveBucketCounts, 1)
			// OpenTelemetry bucket k holds (base^k, base^(k+1)] seconds:
			// Prometheus bucket k+1.
			assert.Truef(t, ref.holds(v, int(eh.PositiveOffset)+1), "scale %d: %d ns in OpenTelemetry bucket %d", s, v, eh.PositiveOffset)
			assert.Equal(t, float64(v)/1e9, eh.Min, "Min in seconds")
			assert.Equal(t, float64(v)/1e9, eh.Max, "Max in seconds")
			assert.Equal(t, float64(v)/1e9, eh.Sum, "Sum in seconds")
		}
	}
}

func TestExportsAreInSeconds(t *testing.T) {
	h := mustNew(t)
	h.Record(time.Second)             // closes bucket 0: (0.989, 1] s at scale 6
	h.Record(1500 * time.Millisecond) // (2^(37/64), 2^(38/64)] s
	h.Record(3 * time.Millisecond)
	nh := h.Snapshot().NativeHistogram()
	assert.Equal(t, 2.503, nh.Sum, "Sum in seconds")
	got := map[int]uint64{}
	i, count, k := int32(0), int64(0), 0
	for _, sp := range nh.PositiveSpans {
		i += sp.Offset
		for range sp.Length {
			count += nh.PositiveDeltas[k]
			k++
			if count != 0 {
				got[int(i)] = uint64(count)
			}
			i++
		}
	}
	// ceil(64·log2(0.003)) = ceil(-536.4) = -536; ceil(64·log2(1.5)) = ceil(37.44) = 38.
	assert.Equal(t, map[int]uint64{-536: 1, 0: 1, 38: 1}, got)
	eh := h.Snapshot().ExponentialHistogram()
	assert.Equal(t, int32(-537), eh.PositiveOffset, "OpenTelemetry index = Prometheus index - 1")
	assert.Equal(t, 0.003, eh.Min)
	assert.Equal(t, 1.5, eh.Max)
}

func TestOverflowedValuesExportInTheBucketOfMax(t *testing.T) {
	h := mustNew(t, Scale(0))
	h.RecordValue(5)
	h.RecordValue(1 << 60)
	eh := h.Snapshot().ExponentialHistogram()
	var n uint64
	for _, c := range eh.PositiveBucketCounts {
		n += c
	}
	assert.Equal(t, eh.Count, n+eh.ZeroCount, "every value is in a bucket")
	// 2^60 ns = 2^30.1 s is in (2^30, 2^31] s: OpenTelemetry bucket 30.
	assert.Equal(t, int32(30), eh.PositiveOffset+int32(len(eh.PositiveBucketCounts))-1)
}

func TestPercentileDistributionReadsLikeHdrHistogram(t *testing.T) {
	h := mustNew(t)
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	s := h.Snapshot()
	var buf bytes.Buffer
	require.NoError(t, s.WritePercentileDistribution(&buf, 5, 1e3))
	sc := bufio.NewScanner(&buf)
	require.True(t, sc.Scan())
	assert.Equal(t, []string{"Value", "Percentile", "TotalCount", "1/(1-Percentile)"}, strings.Fields(sc.Text()))
	require.True(t, sc.Scan())
	assert.Empty(t, sc.Text(), "a blank line follows the header")
	prevP, prevV, lines := -1.0, -1.0, 0
	var last []string
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "#") {
		f := strings.Fields(sc.Text())
		v, _ := strconv.ParseFloat(f[0], 64)
		p, _ := strconv.ParseFloat(f[1], 64)
		assert.GreaterOrEqual(t, p, prevP, "percentiles ascend")
		assert.GreaterOrEqual(t, v, prevV, "values ascend")
		q, err := s.ValueAtQuantile(math.Max(p, 1e-12))
		require.NoError(t, err)
		assert.InDelta(t, float64(q)/1e3, v, float64(q)/1e3*0.02+0.001, "value at %v", p)
		prevP, prevV, last = p, v, f
		lines++
	}
	assert.Greater(t, lines, 30, "5 ticks per half distance give many lines")
	assert.Equal(t, []string{"10000.000", "1.000000000000", "10000"}, last, "the last line is max at 100%%")
	assert.Contains(t, sc.Text(), "#[Mean    =     5000.500, StdDeviation")
	assert.Error(t, s.WritePercentileDistribution(&buf, 0, 1), "ticks must be positive")
	assert.Error(t, s.WritePercentileDistribution(&buf, 5, 0), "unit must be positive")
}

func TestStringRendersATableAndPlusVAChart(t *testing.T) {
	h := mustNew(t)
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * 10 * time.Microsecond)
	}
	h.Record(0)
	table := h.Snapshot().String()
	for _, want := range []string{"count=1001", "p50", "p99.9", "max", "10ms"} {
		assert.Contains(t, table, want)
	}
	chart := strings.Split(strings.TrimSpace(fmt.Sprintf("%+v", h.Snapshot())), "\n")
	bars := 0
	for _, l := range chart {
		if strings.Contains(l, "|#") {
			bars++
			assert.LessOrEqual(t, len(l), 100, "rows fit a terminal: %q", l)
		}
	}
	assert.Positive(t, bars)
	assert.LessOrEqual(t, bars, 26, "at most 24 rows of buckets plus zero and overflow")
	assert.Contains(t, (&Snapshot{}).String(), "count=0", "an empty snapshot renders")
}

func TestPercentileDistributionOfCountsBeyondFloatPrecisionEnds(t *testing.T) {
	// 2^60 values and one more: past level 1-2^-53 a float64 cannot tell
	// the running totals apart, nor the next level from the last (issue 9:
	// this valid 38-byte snapshot wrote 567 MB in 5 s and never returned).
	h := mustNew(t)
	require.NoError(t, h.RecordN(1000, 1<<60))
	require.NoError(t, h.RecordN(2000, 1))
	var s Snapshot
	require.NoError(t, s.UnmarshalBinary(encode(t, h.Snapshot())))
	for _, ticks := range []int{1, 5, 1000} {
		w := &limitWriter{limit: maxWritten}
		done := make(chan error, 1)
		go func() { done <- s.WritePercentileDistribution(w, ticks, 1) }()
		select {
		case err := <-done:
			require.NoError(t, err, "ticks %d: %d bytes written", ticks, w.buf.Len())
			checkPercentileText(t, &s, w.buf.String(), ticks)
			assert.Contains(t, w.buf.String(), "2000.000 1.000000000000 1152921504606846977\n", "the last line is max at 100%%")
		case <-time.After(readerDeadline):
			t.Fatalf("ticks %d: WritePercentileDistribution did not return within %v (%d bytes written)", ticks, readerDeadline, w.buf.Len())
		}
	}
}

func TestPercentileDistributionStopsAtTheFirstWriteError(t *testing.T) {
	h := mustNew(t)
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	s := h.Snapshot()
	var full limitWriter
	full.limit = maxWritten
	require.NoError(t, s.WritePercentileDistribution(&full, 1000, 1e3))
	for _, limit := range []int{0, 1, 100, full.buf.Len() / 2, full.buf.Len() - 1} {
		w := &limitWriter{limit: limit}
		err := s.WritePercentileDistribution(w, 1000, 1e3)
		assert.ErrorIs(t, err, errWriterFull, "limit %d", limit)
		assert.Zero(t, w.afterError, "limit %d: no write after the first error", limit)
		assert.Equal(t, full.buf.String()[:limit], w.buf.String(), "limit %d: what was written is the start of the text", limit)
	}
}
