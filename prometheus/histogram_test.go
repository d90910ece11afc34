package nettuneprom_test

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nettune/nettune/latency"
	nettuneprom "github.com/nettune/nettune/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// durations returns latency-like durations: log-normal around 2 ms, with
// exact zeros, exact powers of two of seconds and a few long ones.
func durations(n int, seed uint64) []time.Duration {
	r := rand.New(rand.NewPCG(seed, 1))
	ds := make([]time.Duration, 0, n+8)
	for range n {
		ds = append(ds, time.Duration(math.Exp(r.NormFloat64()*1.5)*2e6))
	}
	return append(ds, 0, 0, time.Second, time.Second/4, 2*time.Second, 3*time.Hour, time.Nanosecond, 1)
}

// scrape serves reg with promhttp over loopback and decodes the families
// in the format accept asks for (protobuf or text).
func scrape(t testing.TB, reg *prometheus.Registry, accept expfmt.Format) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", string(accept))
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, accept.FormatType(), expfmt.ResponseFormat(resp.Header).FormatType(), "the server answered in another format")
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	fams := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		err := dec.Decode(&mf)
		if errors.Is(err, io.EOF) {
			return fams
		}
		require.NoError(t, err)
		fams[mf.GetName()] = &mf
	}
}

var (
	protobuf = expfmt.NewFormat(expfmt.TypeProtoDelim)
	text     = expfmt.NewFormat(expfmt.TypeTextPlain)
)

// absolute returns the native positive buckets of h as absolute counts by index.
func absolute(h *dto.Histogram) map[int]uint64 {
	out := map[int]uint64{}
	i, k := 0, 0
	var c int64
	for j, sp := range h.GetPositiveSpan() {
		if j == 0 {
			i = int(sp.GetOffset())
		} else {
			i += int(sp.GetOffset())
		}
		for range sp.GetLength() {
			c += h.GetPositiveDelta()[k]
			k++
			if c != 0 {
				out[i] = uint64(c)
			}
			i++
		}
	}
	return out
}

// clientGolang returns client_golang's own native histogram at schema s,
// fed ds as float seconds. The bucket factor is a hair above 2^(2^-s):
// exactly 2^(2^-s) rounds to a float whose log2(log2) may fall below -s
// and client_golang would pick schema s+1.
func clientGolang(s int, ds []time.Duration) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                         "reference_seconds",
		Help:                         "client_golang's native histogram.",
		NativeHistogramBucketFactor:  math.Exp2(math.Exp2(-float64(s))) * (1 + 1e-12),
		NativeHistogramZeroThreshold: prometheus.NativeHistogramZeroThresholdZero,
	})
	for _, d := range ds {
		h.Observe(d.Seconds())
	}
	return h
}

func TestNativeBucketsAreClientGolangsForTheSameDurations(t *testing.T) {
	for _, scale := range []int{0, 3, latency.DefaultScale, latency.MaxScale} {
		ds := durations(20000, uint64(scale))
		h, err := latency.New(latency.Scale(scale))
		require.NoError(t, err)
		for _, d := range ds {
			h.Record(d)
		}
		c, err := nettuneprom.NewHistogramCollector(nettuneprom.HistogramOpts{Name: "rpc_duration_seconds", Help: "RPC latency."})
		require.NoError(t, err)
		require.NoError(t, c.Track(h.Snapshot))
		reg := prometheus.NewPedanticRegistry()
		require.NoError(t, reg.Register(c))
		require.NoError(t, reg.Register(clientGolang(scale, ds)))

		fams := scrape(t, reg, protobuf)
		got := fams["rpc_duration_seconds"].GetMetric()[0].GetHistogram()
		want := fams["reference_seconds"].GetMetric()[0].GetHistogram()
		assert.Equal(t, want.GetSchema(), got.GetSchema(), "scale %d: schema", scale)
		assert.Equal(t, want.GetSampleCount(), got.GetSampleCount(), "scale %d: count", scale)
		assert.Equal(t, want.GetZeroCount(), got.GetZeroCount(), "scale %d: zero count", scale)
		assert.Equal(t, absolute(want), absolute(got), "scale %d: native buckets", scale)
		assert.InEpsilon(t, want.GetSampleSum(), got.GetSampleSum(), 1e-12, "scale %d: sum", scale)
	}
}

func TestClassicBucketsAreExactOnBucketEdgesAndLowerBoundsElsewhere(t *testing.T) {
	ds := durations(20000, 7)
	h, err := latency.New()
	require.NoError(t, err)
	for _, d := range ds {
		h.Record(d)
	}
	bounds := append([]float64{0.000001, 0.001, 0.0015, 0.002, 0.003}, prometheus.DefBuckets...)
	bounds = append(bounds, 3*3600)
	c, err := nettuneprom.NewHistogramCollector(nettuneprom.HistogramOpts{Name: "rpc_duration_seconds", Help: "RPC latency.", Buckets: bounds})
	require.NoError(t, err)
	require.NoError(t, c.Track(h.Snapshot))
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))

	atOrBelow := func(b float64) (n uint64) {
		for _, d := range ds {
			if d.Seconds() <= b {
				n++
			}
		}
		return n
	}
	base := math.Exp2(math.Exp2(-latency.DefaultScale))
	got := scrape(t, reg, text)["rpc_duration_seconds"].GetMetric()[0].GetHistogram()
	require.Len(t, got.GetBucket(), len(bounds)+1, "the text format adds +Inf")
	for j, b := range bounds {
		cum := got.GetBucket()[j].GetCumulativeCount()
		assert.Equal(t, b, got.GetBucket()[j].GetUpperBound())
		exact := atOrBelow(b)
		if math.Log2(b) == math.Round(math.Log2(b)) || b >= h.Snapshot().Max().Seconds() {
			assert.Equal(t, exact, cum, "le=%v is a bucket edge or above the maximum: exact", b)
			continue
		}
		assert.LessOrEqual(t, cum, exact, "le=%v: a lower bound", b)
		assert.GreaterOrEqual(t, cum, atOrBelow(b/base), "le=%v: only the bucket holding it is left out", b)
	}
	inf := got.GetBucket()[len(bounds)]
	assert.Equal(t, math.Inf(1), inf.GetUpperBound())
	assert.Equal(t, uint64(len(ds)), inf.GetCumulativeCount())
}

func TestValuesAboveMaxValueAreCountedInTheNativeBuckets(t *testing.T) {
	var h latency.Histogram
	h.Record(time.Millisecond)
	h.Record(time.Duration(latency.MaxValue) * 2) // about 208 days
	h.Record(math.MaxInt64)
	s := h.Snapshot()
	require.Equal(t, uint64(2), s.Overflow())

	c, err := nettuneprom.NewHistogramCollector(nettuneprom.HistogramOpts{Name: "long_seconds", Help: "Long waits."})
	require.NoError(t, err)
	require.NoError(t, c.Track(h.Snapshot))
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	got := scrape(t, reg, protobuf)["long_seconds"].GetMetric()[0].GetHistogram()
	var total uint64
	for _, n := range absolute(got) {
		total += n
	}
	assert.Equal(t, uint64(3), got.GetSampleCount())
	assert.Equal(t, got.GetSampleCount(), total+got.GetZeroCount(), "the native buckets add up to the count")

	// client_golang's own check of the same buckets.
	buckets := map[int]int64{}
	for i, n := range absolute(got) {
		buckets[i] = int64(n)
	}
	_, err = prometheus.NewConstNativeHistogram(prometheus.NewDesc("x_seconds", "x", nil, nil), got.GetSampleCount(), got.GetSampleSum(),
		buckets, nil, got.GetZeroCount(), got.GetSchema(), got.GetZeroThreshold(), time.Time{})
	assert.NoError(t, err, "client_golang accepts the buckets")
}

func TestAnEmptyHistogramIsExportedAsNative(t *testing.T) {
	c, err := nettuneprom.NewHistogramCollector(nettuneprom.HistogramOpts{Name: "idle_seconds", Help: "Nothing yet."})
	require.NoError(t, err)
	var h latency.Histogram
	require.NoError(t, c.Track(h.Snapshot))
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	got := scrape(t, reg, protobuf)["idle_seconds"].GetMetric()[0].GetHistogram()
	require.Len(t, got.GetPositiveSpan(), 1, "an empty native histogram carries a {0,0} span")
	assert.Zero(t, got.GetPositiveSpan()[0].GetOffset())
	assert.Zero(t, got.GetPositiveSpan()[0].GetLength())
	assert.Equal(t, int32(latency.DefaultScale), got.GetSchema())
	assert.Zero(t, got.GetSampleCount())
	for _, b := range got.GetBucket() {
		assert.Zero(t, b.GetCumulativeCount())
	}
}

func TestNativeBucketsDownscaleLosslessly(t *testing.T) {
	// Downscaling the exported buckets must give what recording at the
	// coarser scale gives.
	ds := durations(5000, 3)
	fine, err := latency.New(latency.Scale(8))
	require.NoError(t, err)
	for _, d := range ds {
		fine.Record(d)
	}
	for k := 0; k <= 8-(-4); k++ { // down to Prometheus's schema -4
		// latency records down to scale 0; below, downscale scale 0's export.
		h, err := latency.New(latency.Scale(max(8-k, 0)))
		require.NoError(t, err)
		for _, d := range ds {
			h.Record(d)
		}
		want := nettuneprom.NativeCounts(h.Snapshot(), max(k-8, 0))
		assert.Equal(t, want, nettuneprom.NativeCounts(fine.Snapshot(), k), "down %d from scale 8", k)
	}
}

func TestLabelledSeriesAndBadOptions(t *testing.T) {
	c, err := nettuneprom.NewHistogramCollector(nettuneprom.HistogramOpts{
		Namespace: "app", Name: "request_duration_seconds", Help: "Request latency by route.",
		VariableLabels: []string{"route"}, ConstLabels: prometheus.Labels{"service": "api"}, Buckets: []float64{},
	})
	require.NoError(t, err)
	var a, b latency.Histogram
	a.Record(time.Millisecond)
	b.Record(time.Second)
	b.Record(time.Second)
	require.NoError(t, c.Track(a.Snapshot, "/a"))
	require.NoError(t, c.Track(b.Snapshot, "/b"))
	assert.Error(t, c.Track(a.Snapshot), "one label value is needed")
	assert.Error(t, c.Track(nil, "/c"))
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	ms := scrape(t, reg, protobuf)["app_request_duration_seconds"].GetMetric()
	require.Len(t, ms, 2)
	counts := map[string]uint64{}
	for _, m := range ms {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		assert.Equal(t, "api", labels["service"])
		counts[labels["route"]] = m.GetHistogram().GetSampleCount()
		assert.Empty(t, m.GetHistogram().GetBucket(), "Buckets: []float64{} exports native buckets only")
	}
	assert.Equal(t, map[string]uint64{"/a": 1, "/b": 2}, counts)
	assert.True(t, c.Untrack("/a"))
	assert.False(t, c.Untrack("/a"))
	assert.Len(t, scrape(t, reg, protobuf)["app_request_duration_seconds"].GetMetric(), 1)

	for _, opts := range []nettuneprom.HistogramOpts{
		{Name: "rpc_duration_nanoseconds", Help: "h"},
		{Name: "rpc_duration_seconds"},
		{Name: "rpc_duration_seconds", Help: "h", Buckets: []float64{0.1, 0.1}},
		{Name: "rpc_duration_seconds", Help: "h", Buckets: []float64{0, 1}},
		{Name: "rpc_duration_seconds", Help: "h", Buckets: []float64{1, math.Inf(1)}},
		{Name: "rpc_duration_seconds", Help: "h", VariableLabels: []string{"route", "route"}},
	} {
		_, err := nettuneprom.NewHistogramCollector(opts)
		assert.Error(t, err, "%+v", opts)
	}
}

func TestHistogramCollectorPassesTheLinter(t *testing.T) {
	c, err := nettuneprom.NewHistogramCollector(nettuneprom.HistogramOpts{Name: "rpc_duration_seconds", Help: "RPC latency."})
	require.NoError(t, err)
	var h latency.Histogram
	h.Record(time.Millisecond)
	require.NoError(t, c.Track(h.Snapshot))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// BenchmarkScrape measures a promhttp scrape (protobuf, as Prometheus asks
// with native histograms on) of 100 histograms of 10,000 latency-like
// values each, over loopback.
func BenchmarkScrape(b *testing.B) {
	c, err := nettuneprom.NewHistogramCollector(nettuneprom.HistogramOpts{Name: "rpc_duration_seconds", Help: "RPC latency.", VariableLabels: []string{"route"}})
	require.NoError(b, err)
	for i := range 100 {
		h, err := latency.New()
		require.NoError(b, err)
		for _, d := range durations(10000, uint64(i)) {
			h.Record(d)
		}
		require.NoError(b, c.Track(h.Snapshot, "/route/"+string(rune('a'+i%26))+string(rune('a'+i/26))))
	}
	reg := prometheus.NewRegistry()
	require.NoError(b, reg.Register(c))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	for _, f := range []struct {
		name   string
		format expfmt.Format
	}{{"format=protobuf", protobuf}, {"format=text", text}} {
		b.Run(f.name, func(b *testing.B) {
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			require.NoError(b, err)
			req.Header.Set("Accept", string(f.format))
			b.ReportAllocs()
			for b.Loop() {
				resp, err := srv.Client().Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				if err != nil {
					b.Fatal(err)
				}
				if err := resp.Body.Close(); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(n)
			}
		})
	}
	b.Run("collect-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestNativeBucketsDecodeAndEncodeBack(t *testing.T) {
	for _, scale := range []int{0, 6, 8} {
		h, err := latency.New(latency.Scale(scale))
		require.NoError(t, err)
		for _, d := range durations(3000, 9) {
			h.Record(d)
		}
		want, got := nettuneprom.Reencode(h.Snapshot())
		assert.NotEmpty(t, want)
		assert.Equal(t, want, got, "scale %d", scale)
	}
}
