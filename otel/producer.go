package nettuneotel

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/pool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// ScopeName is the instrumentation scope of every metric a Producer emits.
const ScopeName = "github.com/nettune/nettune/otel"

// DefaultMaxSize is the bucket limit of an exponential histogram data point
// when Producer.MaxSize is 0: the OpenTelemetry SDK's default for its
// base-2 exponential histogram aggregation.
const DefaultMaxSize = 160

// minScale is the coarsest scale OpenTelemetry defines: at -10 the base is
// 2^1024, and the buckets of any float64 fit in a few.
const minScale = -10

// Producer is a metric.Producer that emits what it was given to track, at
// every collection of the reader it is registered with
// (metric.WithProducer on a reader such as metric.NewManualReader or
// metric.NewPeriodicReader): latency snapshots as exponential histograms in
// seconds, and pool and DNS cache statistics as sums and gauges. Every
// point is cumulative, from when it was tracked.
//
// The zero Producer is ready to use. A Producer is safe for concurrent use;
// set MaxSize before the first Produce.
type Producer struct {
	// MaxSize bounds the positive buckets of each exponential histogram
	// data point, as MaxSize of the SDK's
	// metric.AggregationBase2ExponentialHistogram does. 0 means
	// DefaultMaxSize. When a snapshot's buckets span more, the scale is
	// lowered until they fit: each coarser bucket is the exact sum of the
	// finer ones it covers, so nothing is lost but resolution.
	MaxSize int

	mu         sync.Mutex // guards histograms, pools, caches, stages
	histograms []*histogramSource
	pools      []*statsSource[pool.Stats]
	caches     []*statsSource[dnscache.Stats]
	stages     []*statsSource[latency.HTTPStageStats]
}

var _ metric.Producer = (*Producer)(nil)

type histogramSource struct {
	name, description string
	snapshot          func() *latency.Snapshot
	attrs             attribute.Set
	start             time.Time
}

// statsSource is a tracked statistics function: a pool's, a DNS cache's or
// an HTTPStages'.
type statsSource[S any] struct {
	stats func() S
	attrs attribute.Set
	start time.Time
}

func newSource[S any](stats func() S, attrs []attribute.KeyValue) *statsSource[S] {
	return &statsSource[S]{stats: stats, attrs: attribute.NewSet(attrs...), start: time.Now()}
}

// TrackHistogram emits the snapshots snapshot returns (for a
// *latency.Histogram h, pass h.Snapshot) as the exponential histogram name,
// in seconds (unit "s"), with the given attributes. Several histograms may
// share a name, with different attributes: they are the points of one
// metric, which takes the description of the first. snapshot is called at
// every collection and must be safe for concurrent use. The points' start
// time is the time of this call.
func (p *Producer) TrackHistogram(name, description string, snapshot func() *latency.Snapshot, attrs ...attribute.KeyValue) error {
	if name == "" {
		return errors.New("nettuneotel: TrackHistogram: empty name")
	}
	if snapshot == nil {
		return errors.New("nettuneotel: TrackHistogram: nil snapshot function")
	}
	src := &histogramSource{name: name, description: description, snapshot: snapshot, attrs: attribute.NewSet(attrs...), start: time.Now()}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.histograms = append(p.histograms, src)
	return nil
}

// TrackPool emits the statistics stats returns (for a pool p, p.Stats)
// with the given attributes (for example nettune.pool.name), as the
// metrics listed in the package documentation.
func (p *Producer) TrackPool(stats func() pool.Stats, attrs ...attribute.KeyValue) error {
	if stats == nil {
		return errors.New("nettuneotel: TrackPool: nil stats function")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pools = append(p.pools, newSource(stats, attrs))
	return nil
}

// TrackDNSCache emits the statistics stats returns (for a cache c,
// c.Stats) with the given attributes, as the metrics listed in the package
// documentation.
func (p *Producer) TrackDNSCache(stats func() dnscache.Stats, attrs ...attribute.KeyValue) error {
	if stats == nil {
		return errors.New("nettuneotel: TrackDNSCache: nil stats function")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.caches = append(p.caches, newSource(stats, attrs))
	return nil
}

// TrackHTTPStages emits the counts stats returns (for a
// *latency.HTTPStages s, s.Stats) with the given attributes, as the metrics
// listed in the package documentation. The stage durations are histograms:
// track each stage's sink with [Producer.TrackHistogram], for example as
// points of one metric told apart by a stage attribute.
func (p *Producer) TrackHTTPStages(stats func() latency.HTTPStageStats, attrs ...attribute.KeyValue) error {
	if stats == nil {
		return errors.New("nettuneotel: TrackHTTPStages: nil stats function")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stages = append(p.stages, newSource(stats, attrs))
	return nil
}

// Produce implements metric.Producer.
func (p *Producer) Produce(ctx context.Context) ([]metricdata.ScopeMetrics, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	hs, ps, cs, ss := p.histograms, p.pools, p.caches, p.stages
	maxSize := p.MaxSize
	p.mu.Unlock()
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	now := time.Now()
	var ms []metricdata.Metrics
	ms = appendHistograms(ms, hs, maxSize, now)
	ms = appendPools(ms, ps, now)
	ms = appendCounts(ms, cacheCounts, cs, now)
	ms = appendCounts(ms, stageCounts, ss, now)
	if len(ms) == 0 {
		return nil, nil
	}
	return []metricdata.ScopeMetrics{{Scope: instrumentation.Scope{Name: ScopeName}, Metrics: ms}}, nil
}

// appendHistograms adds one metric per histogram name, in the order names
// were first tracked.
func appendHistograms(ms []metricdata.Metrics, hs []*histogramSource, maxSize int, now time.Time) []metricdata.Metrics {
	at := map[string]int{} // name -> index in ms
	for _, h := range hs {
		j, ok := at[h.name]
		if !ok {
			j = len(ms)
			at[h.name] = j
			ms = append(ms, metricdata.Metrics{Name: h.name, Description: h.description, Unit: "s",
				Data: metricdata.ExponentialHistogram[float64]{Temporality: metricdata.CumulativeTemporality}})
		}
		data := ms[j].Data.(metricdata.ExponentialHistogram[float64])
		data.DataPoints = append(data.DataPoints, dataPoint(h.snapshot(), maxSize, h.attrs, h.start, now))
		ms[j].Data = data
	}
	return ms
}

// dataPoint converts a snapshot, lowering its scale until its buckets fit
// in maxSize.
func dataPoint(s *latency.Snapshot, maxSize int, attrs attribute.Set, start, now time.Time) metricdata.ExponentialHistogramDataPoint[float64] {
	if s == nil {
		s = new(latency.Snapshot)
	}
	eh := s.ExponentialHistogram()
	dp := metricdata.ExponentialHistogramDataPoint[float64]{
		Attributes: attrs, StartTime: start, Time: now,
		Count: eh.Count, Sum: eh.Sum, ZeroCount: eh.ZeroCount,
		Scale: eh.Scale,
	}
	if eh.Count > 0 {
		dp.Min, dp.Max = metricdata.NewExtrema(eh.Min), metricdata.NewExtrema(eh.Max)
	}
	dp.Scale, dp.PositiveBucket.Offset, dp.PositiveBucket.Counts = fit(eh.Scale, eh.PositiveOffset, eh.PositiveBucketCounts, maxSize)
	return dp
}

// fit lowers the scale of the buckets counts (OpenTelemetry index offset+k
// for counts[k]) by the fewest steps that make them span at most maxSize
// buckets. One step down maps index i to i>>1 (floor): bucket
// (base^i, base^(i+1)] lies inside (base'^(i>>1), base'^((i>>1)+1)] with
// base' = base², so the coarse counts are exact sums of the fine ones.
func fit(scale, offset int32, counts []uint64, maxSize int) (int32, int32, []uint64) {
	if len(counts) == 0 {
		return scale, 0, nil
	}
	lo, hi := offset, offset+int32(len(counts))-1
	k := int32(0)
	for int(hi>>k-lo>>k)+1 > maxSize && scale-k > minScale {
		k++
	}
	if k == 0 {
		return scale, offset, counts
	}
	out := make([]uint64, hi>>k-lo>>k+1)
	for j, c := range counts {
		out[(offset+int32(j))>>k-lo>>k] += c
	}
	return scale - k, lo >> k, out
}
