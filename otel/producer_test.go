package nettuneotel_test

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/latency"
	nettuneotel "github.com/nettune/nettune/otel"
	"github.com/nettune/nettune/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	otelmetric "go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// collect registers p with a ManualReader and collects once.
func collect(t testing.TB, p *nettuneotel.Producer) map[string]metricdata.Metrics {
	t.Helper()
	r := metric.NewManualReader(metric.WithProducer(p))
	mp := metric.NewMeterProvider(metric.WithReader(r))
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != nettuneotel.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sdkHistogram records ds, as float seconds, into the SDK's own base-2
// exponential histogram aggregation with the given MaxSize, and returns its
// data point.
func sdkHistogram(t testing.TB, ds []time.Duration, maxSize int32) metricdata.ExponentialHistogramDataPoint[float64] {
	t.Helper()
	r := metric.NewManualReader()
	mp := metric.NewMeterProvider(metric.WithReader(r), metric.WithView(metric.NewView(
		metric.Instrument{Name: "reference"},
		metric.Stream{Aggregation: metric.AggregationBase2ExponentialHistogram{MaxSize: maxSize, MaxScale: 20}},
	)))
	t.Cleanup(func() { require.NoError(t, mp.Shutdown(context.Background())) })
	h, err := mp.Meter("test").Float64Histogram("reference", otelmetric.WithUnit("s"))
	require.NoError(t, err)
	for _, d := range ds {
		h.Record(context.Background(), d.Seconds())
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	return rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.ExponentialHistogram[float64]).DataPoints[0]
}

// durations returns latency-like durations, log-normal around median,
// spread by sigma (natural log), plus count zeros.
func durations(n int, median time.Duration, sigma float64, zeros int, seed uint64) []time.Duration {
	r := rand.New(rand.NewPCG(seed, 2))
	ds := make([]time.Duration, 0, n+zeros)
	for range n {
		ds = append(ds, max(1, time.Duration(math.Exp(r.NormFloat64()*sigma)*float64(median))))
	}
	for range zeros {
		ds = append(ds, 0)
	}
	return ds
}

func TestHistogramsAreTheSDKsExponentialHistogramsForTheSameDurations(t *testing.T) {
	for _, tc := range []struct {
		name    string
		scale   int
		maxSize int
		ds      []time.Duration
	}{
		{"narrow at scale 8 fits 160 at 6", 8, 0, durations(20000, 2*time.Millisecond, 0.2, 3, 1)},
		{"wide at scale 6 fits 160 at 1", 6, 0, durations(20000, 2*time.Millisecond, 3, 3, 2)},
		{"wide, 20 buckets", 6, 20, durations(20000, 2*time.Millisecond, 3, 0, 3)},
		{"wide, 2 buckets: a negative scale", 6, 2, durations(20000, 2*time.Millisecond, 3, 0, 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := latency.New(latency.Scale(tc.scale))
			require.NoError(t, err)
			for _, d := range tc.ds {
				h.Record(d)
			}
			p := &nettuneotel.Producer{MaxSize: tc.maxSize}
			require.NoError(t, p.TrackHistogram("rpc.client.duration", "RPC latency.", h.Snapshot, attribute.String("rpc.service", "echo")))
			m := collect(t, p)["rpc.client.duration"]
			assert.Equal(t, "s", m.Unit)
			data, ok := m.Data.(metricdata.ExponentialHistogram[float64])
			require.True(t, ok, "an exponential histogram, got %T", m.Data)
			assert.Equal(t, metricdata.CumulativeTemporality, data.Temporality)
			require.Len(t, data.DataPoints, 1)
			got := data.DataPoints[0]
			v, _ := got.Attributes.Value("rpc.service")
			assert.Equal(t, "echo", v.AsString())

			limit := int32(tc.maxSize)
			if limit == 0 {
				limit = nettuneotel.DefaultMaxSize
			}
			want := sdkHistogram(t, tc.ds, limit)
			assert.LessOrEqual(t, len(got.PositiveBucket.Counts), int(limit))
			assert.Equal(t, want.Scale, got.Scale, "scale")
			assert.Equal(t, want.Count, got.Count, "count")
			assert.Equal(t, want.ZeroCount, got.ZeroCount, "zero count")
			assert.Equal(t, want.PositiveBucket, got.PositiveBucket, "buckets")
			assert.Equal(t, want.Min, got.Min, "min")
			assert.Equal(t, want.Max, got.Max, "max")
			assert.InEpsilon(t, want.Sum, got.Sum, 1e-9, "sum")
		})
	}
}

func TestFitLowersTheScaleLosslessly(t *testing.T) {
	counts := []uint64{1, 2, 3, 4, 5, 6, 7}
	var total uint64
	for _, c := range counts {
		total += c
	}
	for maxSize := 1; maxSize <= 8; maxSize++ {
		scale, offset, got := nettuneotel.Fit(3, -5, counts, maxSize)
		var sum uint64
		for _, c := range got {
			sum += c
		}
		assert.Equal(t, total, sum, "maxSize %d: nothing lost", maxSize)
		if maxSize >= 2 {
			assert.LessOrEqual(t, len(got), maxSize)
		}
		// Every fine index i lands in coarse index i >> (3-scale).
		k := 3 - scale
		assert.Equal(t, int32(-5)>>k, offset, "maxSize %d", maxSize)
		assert.Equal(t, int32(1)>>k-offset+1, int32(len(got)), "maxSize %d", maxSize)
	}
	scale, _, got := nettuneotel.Fit(-9, 0, []uint64{1, 0, 0, 0, 1}, 1)
	assert.Equal(t, int32(-10), scale, "never below OpenTelemetry's -10")
	assert.Equal(t, []uint64{1, 0, 1}, got, "indexes 0 and 4 at -9 are 0 and 2 at -10")
}

func TestAnEmptyHistogramHasNoBucketsAndNoExtrema(t *testing.T) {
	var p nettuneotel.Producer
	var h latency.Histogram
	require.NoError(t, p.TrackHistogram("idle.duration", "Nothing yet.", h.Snapshot))
	require.Error(t, p.TrackHistogram("", "no name", h.Snapshot))
	require.Error(t, p.TrackHistogram("x", "no snapshot", nil))
	dp := collect(t, &p)["idle.duration"].Data.(metricdata.ExponentialHistogram[float64]).DataPoints[0]
	assert.Zero(t, dp.Count)
	assert.Empty(t, dp.PositiveBucket.Counts)
	_, ok := dp.Min.Value()
	assert.False(t, ok, "no minimum")
	_, ok = dp.Max.Value()
	assert.False(t, ok, "no maximum")
}

func TestHistogramsSharingANameArePointsOfOneMetric(t *testing.T) {
	var p nettuneotel.Producer
	var a, b latency.Histogram
	a.Record(time.Millisecond)
	b.Record(time.Second)
	require.NoError(t, p.TrackHistogram("http.client.request.duration", "first", a.Snapshot, attribute.String("server.address", "a")))
	require.NoError(t, p.TrackHistogram("http.client.request.duration", "second", b.Snapshot, attribute.String("server.address", "b")))
	m := collect(t, &p)["http.client.request.duration"]
	assert.Equal(t, "first", m.Description)
	assert.Len(t, m.Data.(metricdata.ExponentialHistogram[float64]).DataPoints, 2)
}

func TestNothingTrackedProducesNothing(t *testing.T) {
	var p nettuneotel.Producer
	sm, err := p.Produce(context.Background())
	require.NoError(t, err)
	assert.Empty(t, sm)
}

// value returns the value of m's point with the given attribute (or the
// only point when key is empty), and whether m is a monotonic sum.
func value[N int64 | float64](t testing.TB, m metricdata.Metrics, key, val string) (N, bool) {
	t.Helper()
	s, ok := m.Data.(metricdata.Sum[N])
	require.True(t, ok, "%s: a Sum, got %T", m.Name, m.Data)
	for _, dp := range s.DataPoints {
		if key == "" {
			return dp.Value, s.IsMonotonic
		}
		if v, ok := dp.Attributes.Value(attribute.Key(key)); ok && v.AsString() == val {
			return dp.Value, s.IsMonotonic
		}
	}
	t.Fatalf("%s: no point with %s=%s", m.Name, key, val)
	return 0, false
}

func TestPoolStatsAreInstruments(t *testing.T) {
	st := pool.Stats{
		MaxSize: 10, InUse: 3, Idle: 2, Dialing: 1, Waiting: 4,
		Gets: 100, Hits: 90, Misses: 10, Waits: 5, WaitTime: 1500 * time.Millisecond, Timeouts: 2,
		Dials: 12, DialErrors: 1,
		Closed: pool.ClosedStats{Idle: 1, Lifetime: 2, Health: 3, Discarded: 4, Excess: 5, Reset: 6, PoolClosed: 7},
	}
	var p nettuneotel.Producer
	require.NoError(t, p.TrackPool(func() pool.Stats { return st }, attribute.String("nettune.pool.name", "db")))
	require.Error(t, p.TrackPool(nil))
	ms := collect(t, &p)
	type want struct {
		name, key, val, unit string
		v                    int64
		monotonic            bool
	}
	for _, w := range []want{
		{"nettune.pool.count", "nettune.pool.state", "idle", "{resource}", 2, false},
		{"nettune.pool.count", "nettune.pool.state", "used", "{resource}", 3, false},
		{"nettune.pool.max", "", "", "{resource}", 10, false},
		{"nettune.pool.pending_dials", "", "", "{dial}", 1, false},
		{"nettune.pool.pending_requests", "", "", "{request}", 4, false},
		{"nettune.pool.gets", "", "", "{get}", 100, true},
		{"nettune.pool.hits", "", "", "{get}", 90, true},
		{"nettune.pool.misses", "", "", "{get}", 10, true},
		{"nettune.pool.waits", "", "", "{get}", 5, true},
		{"nettune.pool.timeouts", "", "", "{timeout}", 2, true},
		{"nettune.pool.dials", "", "", "{dial}", 12, true},
		{"nettune.pool.dial_errors", "", "", "{dial}", 1, true},
		{"nettune.pool.closed", "nettune.pool.close.reason", "idle", "{resource}", 1, true},
		{"nettune.pool.closed", "nettune.pool.close.reason", "pool_closed", "{resource}", 7, true},
	} {
		m, ok := ms[w.name]
		require.True(t, ok, w.name)
		assert.Equal(t, w.unit, m.Unit, w.name)
		v, mono := value[int64](t, m, w.key, w.val)
		assert.Equal(t, w.v, v, "%s %s=%s", w.name, w.key, w.val)
		assert.Equal(t, w.monotonic, mono, "%s: monotonic", w.name)
	}
	wt, mono := value[float64](t, ms["nettune.pool.wait_time"], "", "")
	assert.Equal(t, 1.5, wt)
	assert.True(t, mono)
	assert.Equal(t, "s", ms["nettune.pool.wait_time"].Unit)
}

func TestDNSCacheStatsAreInstruments(t *testing.T) {
	cache, err := dnscache.New()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cache.Close()) })
	var p nettuneotel.Producer
	require.NoError(t, p.TrackDNSCache(cache.Stats))
	require.NoError(t, p.TrackDNSCache(func() dnscache.Stats { return dnscache.Stats{Hits: 7, Entries: 3, Bytes: 300} }, attribute.String("cache", "fake")))
	require.Error(t, p.TrackDNSCache(nil))
	ms := collect(t, &p)
	for _, name := range []string{"nettune.dnscache.hits", "nettune.dnscache.misses", "nettune.dnscache.stale_served",
		"nettune.dnscache.negative_hits", "nettune.dnscache.prefetches", "nettune.dnscache.evictions", "nettune.dnscache.expired",
		"nettune.dnscache.source.lookups", "nettune.dnscache.source.lookup_errors", "nettune.dnscache.source.pending_lookups",
		"nettune.dnscache.entries", "nettune.dnscache.size"} {
		require.Contains(t, ms, name)
		assert.Len(t, ms[name].Data.(metricdata.Sum[int64]).DataPoints, 2, name)
	}
	v, mono := value[int64](t, ms["nettune.dnscache.hits"], "cache", "fake")
	assert.Equal(t, int64(7), v)
	assert.True(t, mono)
	v, mono = value[int64](t, ms["nettune.dnscache.size"], "cache", "fake")
	assert.Equal(t, int64(300), v)
	assert.False(t, mono)
	assert.Equal(t, "By", ms["nettune.dnscache.size"].Unit)
}

// TestHTTPStagesCountsAreInstruments: real round trips through an
// HTTPStages transport to a loopback server show up as the counters.
func TestHTTPStagesCountsAreInstruments(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	var stages latency.HTTPStages
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: stages.Transport(tr), Timeout: 30 * time.Second}
	for range 3 {
		resp, err := client.Get(srv.URL)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	_, err := client.Get("http://127.0.0.1:1/") // nothing listens on port 1
	require.Error(t, err)

	var p nettuneotel.Producer
	require.NoError(t, p.TrackHTTPStages(stages.Stats, attribute.String("client", "api")))
	require.Error(t, p.TrackHTTPStages(nil))
	ms := collect(t, &p)
	for _, w := range []struct {
		name, unit string
		v          int64
	}{
		{"nettune.http.client.requests", "{request}", 3},
		{"nettune.http.client.reused", "{request}", 2},
		{"nettune.http.client.connections", "{connection}", 1},
		{"nettune.http.client.failures", "{request}", 1},
		{"nettune.http.client.body_errors", "{response}", 0},
	} {
		m, ok := ms[w.name]
		require.True(t, ok, w.name)
		assert.Equal(t, w.unit, m.Unit, w.name)
		v, mono := value[int64](t, m, "client", "api")
		assert.Equal(t, w.v, v, w.name)
		assert.True(t, mono, "%s: monotonic", w.name)
	}
}

// BenchmarkProduce measures a ManualReader collection of 100 histograms of
// 10,000 latency-like values each (which the producer fits into 160
// buckets).
func BenchmarkProduce(b *testing.B) {
	var p nettuneotel.Producer
	for i := range 100 {
		h, err := latency.New()
		require.NoError(b, err)
		for _, d := range durations(10000, 2*time.Millisecond, 1.5, 2, uint64(i)) {
			h.Record(d)
		}
		require.NoError(b, p.TrackHistogram("rpc.client.duration", "RPC latency.", h.Snapshot, attribute.Int("shard", i)))
	}
	r := metric.NewManualReader(metric.WithProducer(&p))
	mp := metric.NewMeterProvider(metric.WithReader(r))
	defer func() { require.NoError(b, mp.Shutdown(context.Background())) }()
	b.ReportAllocs()
	for b.Loop() {
		var rm metricdata.ResourceMetrics
		if err := r.Collect(context.Background(), &rm); err != nil {
			b.Fatal(err)
		}
	}
}
