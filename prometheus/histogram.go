package nettuneprom

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/nettune/nettune/latency"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// maxSchema is the finest schema Prometheus accepts (the coarsest, -4, is
// below latency.MinScale).
const maxSchema = 8

// HistogramOpts names a latency histogram metric and picks its classic
// buckets. The fields mean what they mean in prometheus.HistogramOpts.
type HistogramOpts struct {
	Namespace string
	Subsystem string
	// Name must end in "_seconds": values are exported in seconds.
	Name string
	// Help is required, as Prometheus's linter wants.
	Help        string
	ConstLabels prometheus.Labels

	// VariableLabels are the label names whose values Track takes.
	VariableLabels []string

	// Buckets are the upper bounds, in seconds and ascending, of the classic
	// buckets exported next to the native ones (servers that do not scrape
	// native histograms read only these). nil means prometheus.DefBuckets;
	// an empty non-nil slice exports native buckets only.
	Buckets []float64
}

// HistogramCollector is a prometheus.Collector that exports latency
// snapshots as histograms: each series carries the native histogram
// (schema = the snapshot's scale, bucket boundaries at powers of
// 2^(2^-schema) seconds, the counts copied as they are) and classic
// buckets at HistogramOpts.Buckets, together in one metric.
//
// A classic bucket is exact when its bound is a native bucket boundary
// (any power of two, such as 0.25, 0.5 or 1 second, at every schema), at
// or above the largest value, or below the smallest; otherwise the native
// bucket holding the bound is left out of it, so the classic count is a
// lower bound that misses only values less than one native bucket's width
// (a factor 2^(2^-schema): 1.09% at latency's default scale 6)
// below the bound.
//
// A HistogramCollector is safe for concurrent use; Collect calls each
// series' snapshot function once per scrape.
type HistogramCollector struct {
	desc    *prometheus.Desc
	nLabels int
	bounds  []float64

	mu     sync.Mutex         // guards series
	series map[string]*series // by label values joined with "\xff"
}

type series struct {
	labelValues []string
	snapshot    func() *latency.Snapshot
}

// NewHistogramCollector returns a collector with no series yet: Track adds
// them. It returns an error for a name without the "_seconds" suffix, a
// missing help text, or buckets that are not ascending positive finite
// numbers.
func NewHistogramCollector(opts HistogramOpts) (*HistogramCollector, error) {
	name := prometheus.BuildFQName(opts.Namespace, opts.Subsystem, opts.Name)
	if !strings.HasSuffix(name, "_seconds") {
		return nil, fmt.Errorf("nettuneprom: histogram %q: name must end in _seconds (values are exported in seconds)", name)
	}
	if opts.Help == "" {
		return nil, fmt.Errorf("nettuneprom: histogram %q: Help is empty", name)
	}
	bounds := opts.Buckets
	if bounds == nil {
		bounds = prometheus.DefBuckets
	}
	for j, b := range bounds {
		if !(b > 0) || math.IsInf(b, 1) || (j > 0 && b <= bounds[j-1]) {
			return nil, fmt.Errorf("nettuneprom: histogram %q: Buckets %v: must be ascending positive finite numbers of seconds", name, bounds)
		}
	}
	desc := prometheus.NewDesc(name, opts.Help, opts.VariableLabels, opts.ConstLabels)
	if err := desc.Err(); err != nil { // a bad label name, for example
		return nil, fmt.Errorf("nettuneprom: histogram %q: %w", name, err)
	}
	return &HistogramCollector{
		desc:    desc,
		nLabels: len(opts.VariableLabels),
		bounds:  slices.Clone(bounds),
		series:  make(map[string]*series),
	}, nil
}

// Track adds a series with the given label values (one per
// HistogramOpts.VariableLabels name), or replaces the snapshot function of
// an existing one. snapshot returns the cumulative contents (for a
// *latency.Histogram h, pass h.Snapshot); it is called at every scrape and
// must be safe for concurrent use.
func (c *HistogramCollector) Track(snapshot func() *latency.Snapshot, labelValues ...string) error {
	if snapshot == nil {
		return errors.New("nettuneprom: Track: nil snapshot function")
	}
	if len(labelValues) != c.nLabels {
		return fmt.Errorf("nettuneprom: Track: %d label values for %d labels", len(labelValues), c.nLabels)
	}
	key := strings.Join(labelValues, "\xff")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.series[key] = &series{labelValues: slices.Clone(labelValues), snapshot: snapshot}
	return nil
}

// Untrack removes the series with the given label values and reports
// whether there was one.
func (c *HistogramCollector) Untrack(labelValues ...string) bool {
	key := strings.Join(labelValues, "\xff")
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.series[key]
	delete(c.series, key)
	return ok
}

// Describe implements prometheus.Collector.
func (c *HistogramCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector: one histogram per tracked series.
func (c *HistogramCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	ss := make([]*series, 0, len(c.series))
	for _, s := range c.series {
		ss = append(ss, s)
	}
	c.mu.Unlock()
	for _, s := range ss {
		ch <- c.metric(s.snapshot(), s.labelValues)
	}
}

// metric converts one snapshot.
func (c *HistogramCollector) metric(s *latency.Snapshot, labelValues []string) prometheus.Metric {
	m := &histogram{desc: c.desc, labels: prometheus.MakeLabelPairs(c.desc, labelValues)}
	h := &m.h
	if s == nil {
		s = new(latency.Snapshot)
	}
	nh := s.NativeHistogram()
	schema := int(nh.Schema)
	if schema > maxSchema { // latency.MaxScale is 8 today; keep the guard
		nh.PositiveSpans, nh.PositiveDeltas = encode(downscale(nativeBuckets(&nh), schema-maxSchema))
		schema = maxSchema
	}
	count, sum, zero := nh.Count, nh.Sum, nh.ZeroCount
	// latency's zero bucket holds exact zeros (threshold 0). client_golang's
	// default threshold, 2^-128 s, holds the same durations (the smallest
	// positive one, 1 ns, is far above it), and a threshold above 0 marks a
	// histogram as native for every Prometheus version: before 2.47 an
	// empty one with threshold 0 was taken for a classic histogram.
	threshold := max(nh.ZeroThreshold, prometheus.DefNativeHistogramZeroThreshold)
	schema32 := int32(schema)
	h.SampleCount, h.SampleSum = &count, &sum
	h.Schema, h.ZeroThreshold, h.ZeroCount = &schema32, &threshold, &zero
	h.PositiveSpan, h.PositiveDelta = dtoSpans(nh.PositiveSpans), nh.PositiveDeltas
	if len(c.bounds) > 0 {
		cum := make([]uint64, len(c.bounds))
		it := buckets{spans: nh.PositiveSpans, deltas: nh.PositiveDeltas}
		classicCounts(cum, c.bounds, it, schema, zero, count, s.Max().Seconds())
		bs := make([]dto.Bucket, len(c.bounds))
		h.Bucket = make([]*dto.Bucket, len(c.bounds))
		for j := range c.bounds {
			bs[j] = dto.Bucket{CumulativeCount: &cum[j], UpperBound: &c.bounds[j]}
			h.Bucket[j] = &bs[j]
		}
	}
	return m
}

// dtoSpans converts spans to their protobuf form, in three allocations
// whatever their number. Prometheus 2.47 and later recognise an empty
// native histogram by a span, even an empty one: no spans give {0, 0}.
func dtoSpans(spans []latency.BucketSpan) []*dto.BucketSpan {
	if len(spans) == 0 {
		return []*dto.BucketSpan{{Offset: new(int32), Length: new(uint32)}}
	}
	ds := make([]dto.BucketSpan, len(spans))
	fields := make([]struct {
		offset int32
		length uint32
	}, len(spans))
	out := make([]*dto.BucketSpan, len(spans))
	for j, sp := range spans {
		fields[j].offset, fields[j].length = sp.Offset, sp.Length
		ds[j].Offset, ds[j].Length = &fields[j].offset, &fields[j].length
		out[j] = &ds[j]
	}
	return out
}

// histogram is one exported series: native and classic buckets in one
// dto.Histogram, which client_golang's constructors cannot make.
type histogram struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	h      dto.Histogram
}

func (m *histogram) Desc() *prometheus.Desc { return m.desc }

func (m *histogram) Write(out *dto.Metric) error {
	out.Label = m.labels
	out.Histogram = &m.h
	return nil
}
