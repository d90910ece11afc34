package latencybench

import (
	"math"
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
// same durations, as float seconds, into client_golang's native histogram
// (schema 6) and compares what it would expose with latency's export:
// the same schema, spans and deltas, and the sum in seconds.
func TestNativeHistogramMatchesPrometheusClientBucketForBucket(t *testing.T) {
	ph := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "compat_seconds", Help: "compat", NativeHistogramBucketFactor: promFactor, NativeHistogramZeroThreshold: prometheus.NativeHistogramZeroThresholdZero})
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(ph))
	h, err := latency.New(latency.Scale(6))
	require.NoError(t, err)
	vs := latencyLike(9, 20000)
	vs = append(vs, 0, 1, 2, 1024, 1025, int64(time.Hour))
	// Around every bucket boundary from 1µs to 1000s: the integers either
	// side of 10^9·2^(i/64) ns, and the boundaries at 2^k seconds, which
	// are whole nanoseconds and belong to the bucket below.
	for i := -640; i <= 640; i++ {
		b := math.Floor(1e9 * math.Exp2(float64(i)/64))
		for d := b - 1; d <= b+2; d++ {
			vs = append(vs, int64(d))
		}
	}
	for _, v := range vs {
		ph.Observe(time.Duration(v).Seconds())
		h.Record(time.Duration(v))
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	want := mfs[0].GetMetric()[0].GetHistogram()
	got := h.Snapshot().NativeHistogram()
	assert.Equal(t, want.GetSchema(), got.Schema)
	assert.Equal(t, want.GetZeroCount(), got.ZeroCount)
	assert.Equal(t, want.GetSampleCount(), got.Count)
	// client_golang adds float seconds one by one; latency converts its
	// exact sum once.
	assert.InEpsilon(t, want.GetSampleSum(), got.Sum, 1e-12, "the sum in seconds")
	var wantSpans []latency.BucketSpan
	for _, sp := range want.GetPositiveSpan() {
		wantSpans = append(wantSpans, latency.BucketSpan{Offset: sp.GetOffset(), Length: sp.GetLength()})
	}
	assert.Greater(t, len(decode(wantSpans, want.GetPositiveDelta())), 1000, "sanity: many buckets in use")
	assert.Equal(t, wantSpans, got.PositiveSpans, "the same spans")
	assert.Equal(t, want.GetPositiveDelta(), got.PositiveDeltas, "the same deltas")
	assert.Equal(t, decode(wantSpans, want.GetPositiveDelta()), decode(got.PositiveSpans, got.PositiveDeltas))
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
