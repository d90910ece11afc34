package latencybench

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/latency"
)

// The histogram and the recorder plug into the dialer's connect-time hook.
var (
	_ dialer.Recorder = (*latency.Histogram)(nil)
	_ dialer.Recorder = (*latency.Recorder)(nil)
	_ latency.Sink    = (*latency.Histogram)(nil)
)

// TestNativeHistogramMatchesPrometheusClientBucketForBucket observes the
// same values into client_golang's native histogram (schema 6) and
// compares what it would expose with latency's export.
func TestNativeHistogramMatchesPrometheusClientBucketForBucket(t *testing.T) {
	ph := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "compat_nanoseconds", Help: "compat", NativeHistogramBucketFactor: promFactor, NativeHistogramZeroThreshold: prometheus.NativeHistogramZeroThresholdZero})
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(ph))
	h, err := latency.New(latency.Scale(6))
	require.NoError(t, err)
	vs := latencyLike(9, 20000)
	vs = append(vs, 0, 1, 2, 1024, 1025, int64(time.Hour))
	for _, v := range vs {
		ph.Observe(float64(v))
		h.RecordValue(v)
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	want := mfs[0].GetMetric()[0].GetHistogram()
	got := h.Snapshot().NativeHistogram()
	assert.Equal(t, want.GetSchema(), got.Schema)
	assert.Equal(t, want.GetZeroCount(), got.ZeroCount)
	assert.Equal(t, want.GetSampleCount(), got.Count)
	assert.InDelta(t, want.GetSampleSum(), got.Sum, 1)
	// client_golang bridges short gaps with zero buckets inside a span, so
	// compare the buckets the spans describe, not the spans themselves.
	var wantSpans []latency.BucketSpan
	for _, sp := range want.GetPositiveSpan() {
		wantSpans = append(wantSpans, latency.BucketSpan{Offset: sp.GetOffset(), Length: sp.GetLength()})
	}
	wantBuckets := decode(wantSpans, want.GetPositiveDelta())
	assert.Greater(t, len(wantBuckets), 100, "sanity: many buckets in use")
	assert.Equal(t, wantBuckets, decode(got.PositiveSpans, got.PositiveDeltas))
}

// decode turns spans and deltas into the non-empty buckets they describe.
func decode(spans []latency.BucketSpan, deltas []int64) map[int32]int64 {
	out := map[int32]int64{}
	var i int32
	var count int64
	k := 0
	for _, sp := range spans {
		i += sp.Offset
		for range sp.Length {
			count += deltas[k]
			k++
			if count != 0 {
				out[i] = count
			}
			i++
		}
	}
	return out
}
