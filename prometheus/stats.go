package nettuneprom

import (
	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/pool"
	"github.com/prometheus/client_golang/prometheus"
)

// StatsOpts names the metrics of a PoolCollector, a DNSCacheCollector or an
// HTTPStagesCollector.
type StatsOpts struct {
	// Namespace and Subsystem prefix every metric name. An empty Namespace
	// means "nettune"; an empty Subsystem means "pool", "dnscache" or
	// "http_client".
	Namespace, Subsystem string
	// ConstLabels tell apart several pools or caches registered together,
	// for example {"pool": "db"}.
	ConstLabels prometheus.Labels
}

func (o StatsOpts) names(subsystem string) (namespace, sub string) {
	namespace, sub = o.Namespace, o.Subsystem
	if namespace == "" {
		namespace = "nettune"
	}
	if sub == "" {
		sub = subsystem
	}
	return namespace, sub
}

// stat is one metric read from a stats struct S.
type stat[S any] struct {
	desc      *prometheus.Desc
	valueType prometheus.ValueType
	value     func(*S) float64
	label     string // the value of the desc's one variable label, if any
}

// statsCollector exports the fields of a stats struct.
type statsCollector[S any] struct {
	read  func() S
	descs []*prometheus.Desc
	stats []stat[S]
}

func (c *statsCollector[S]) describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *statsCollector[S]) collect(ch chan<- prometheus.Metric) {
	s := c.read()
	for _, st := range c.stats {
		if st.label != "" {
			ch <- prometheus.MustNewConstMetric(st.desc, st.valueType, st.value(&s), st.label)
		} else {
			ch <- prometheus.MustNewConstMetric(st.desc, st.valueType, st.value(&s))
		}
	}
}

// builder makes the stats of one collector.
type builder[S any] struct {
	namespace, subsystem string
	constLabels          prometheus.Labels
	c                    *statsCollector[S]
}

func (b *builder[S]) add(name, help string, t prometheus.ValueType, value func(*S) float64) {
	d := prometheus.NewDesc(prometheus.BuildFQName(b.namespace, b.subsystem, name), help, nil, b.constLabels)
	b.c.descs = append(b.c.descs, d)
	b.c.stats = append(b.c.stats, stat[S]{desc: d, valueType: t, value: value})
}

// labeled is one series of a counter with a variable label.
type labeled[S any] struct {
	label string
	value func(*S) float64
}

// addLabeled adds a counter with one variable label, one series per value.
func (b *builder[S]) addLabeled(name, help, label string, series ...labeled[S]) {
	d := prometheus.NewDesc(prometheus.BuildFQName(b.namespace, b.subsystem, name), help, []string{label}, b.constLabels)
	b.c.descs = append(b.c.descs, d)
	for _, l := range series {
		b.c.stats = append(b.c.stats, stat[S]{desc: d, valueType: prometheus.CounterValue, value: l.value, label: l.label})
	}
}

// PoolCollector is a prometheus.Collector for a pool's Stats, with the
// names client_golang's database/sql collector (collectors.NewDBStatsCollector)
// uses where the idea is the same: gauges for what the pool holds now,
// counters (_total) since it was made, the wait time in seconds.
// Safe for concurrent use.
type PoolCollector struct{ c statsCollector[pool.Stats] }

// NewPoolCollector returns a collector that calls stats (for a pool p,
// p.Stats) at every scrape. With the default names its metrics are:
//
//	nettune_pool_max_resources          gauge    MaxSize
//	nettune_pool_in_use_resources       gauge    InUse
//	nettune_pool_idle_resources         gauge    Idle
//	nettune_pool_dials_in_flight        gauge    Dialing
//	nettune_pool_waiting_gets           gauge    Waiting
//	nettune_pool_gets_total             counter  Gets
//	nettune_pool_hits_total             counter  Hits
//	nettune_pool_misses_total           counter  Misses
//	nettune_pool_waits_total            counter  Waits
//	nettune_pool_wait_seconds_total     counter  WaitTime
//	nettune_pool_timeouts_total         counter  Timeouts
//	nettune_pool_dials_total            counter  Dials
//	nettune_pool_dial_errors_total      counter  DialErrors
//	nettune_pool_closed_total{reason}   counter  Closed, reason = idle, lifetime,
//	                                             health, discarded, excess, reset, pool_closed
func NewPoolCollector(opts StatsOpts, stats func() pool.Stats) *PoolCollector {
	p := &PoolCollector{c: statsCollector[pool.Stats]{read: stats}}
	ns, sub := opts.names("pool")
	b := &builder[pool.Stats]{namespace: ns, subsystem: sub, constLabels: opts.ConstLabels, c: &p.c}
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	b.add("max_resources", "Maximum number of resources the pool holds (its MaxSize).", g, func(s *pool.Stats) float64 { return float64(s.MaxSize) })
	b.add("in_use_resources", "Resources checked out now.", g, func(s *pool.Stats) float64 { return float64(s.InUse) })
	b.add("idle_resources", "Idle resources now.", g, func(s *pool.Stats) float64 { return float64(s.Idle) })
	b.add("dials_in_flight", "Dials in progress now.", g, func(s *pool.Stats) float64 { return float64(s.Dialing) })
	b.add("waiting_gets", "Gets waiting for a resource now.", g, func(s *pool.Stats) float64 { return float64(s.Waiting) })
	b.add("gets_total", "Get and TryGet calls.", c, func(s *pool.Stats) float64 { return float64(s.Gets) })
	b.add("hits_total", "Gets served from the idle set at once.", c, func(s *pool.Stats) float64 { return float64(s.Hits) })
	b.add("misses_total", "Gets that found no idle resource.", c, func(s *pool.Stats) float64 { return float64(s.Misses) })
	b.add("waits_total", "Gets that waited and got a resource.", c, func(s *pool.Stats) float64 { return float64(s.Waits) })
	b.add("wait_seconds_total", "Total time Gets waited for a resource, in seconds.", c, func(s *pool.Stats) float64 { return s.WaitTime.Seconds() })
	b.add("timeouts_total", "Gets ended by their context.", c, func(s *pool.Stats) float64 { return float64(s.Timeouts) })
	b.add("dials_total", "Dials started.", c, func(s *pool.Stats) float64 { return float64(s.Dials) })
	b.add("dial_errors_total", "Dials that failed.", c, func(s *pool.Stats) float64 { return float64(s.DialErrors) })
	b.addLabeled("closed_total", "Resources closed by the pool, by reason.", "reason",
		labeled[pool.Stats]{"idle", func(s *pool.Stats) float64 { return float64(s.Closed.Idle) }},
		labeled[pool.Stats]{"lifetime", func(s *pool.Stats) float64 { return float64(s.Closed.Lifetime) }},
		labeled[pool.Stats]{"health", func(s *pool.Stats) float64 { return float64(s.Closed.Health) }},
		labeled[pool.Stats]{"discarded", func(s *pool.Stats) float64 { return float64(s.Closed.Discarded) }},
		labeled[pool.Stats]{"excess", func(s *pool.Stats) float64 { return float64(s.Closed.Excess) }},
		labeled[pool.Stats]{"reset", func(s *pool.Stats) float64 { return float64(s.Closed.Reset) }},
		labeled[pool.Stats]{"pool_closed", func(s *pool.Stats) float64 { return float64(s.Closed.PoolClosed) }},
	)
	return p
}

// Describe implements prometheus.Collector.
func (p *PoolCollector) Describe(ch chan<- *prometheus.Desc) { p.c.describe(ch) }

// Collect implements prometheus.Collector.
func (p *PoolCollector) Collect(ch chan<- prometheus.Metric) { p.c.collect(ch) }

// DNSCacheCollector is a prometheus.Collector for a DNS cache's Stats,
// with the words of dnscache.Stats: counters (_total) since the cache was
// made and gauges for what it holds now. Safe for concurrent use.
type DNSCacheCollector struct {
	c statsCollector[dnscache.Stats]
}

// NewDNSCacheCollector returns a collector that calls stats (for a cache
// c, c.Stats) at every scrape. With the default names its metrics are:
//
//	nettune_dnscache_hits_total            counter  Hits
//	nettune_dnscache_misses_total          counter  Misses
//	nettune_dnscache_stale_served_total    counter  StaleServed
//	nettune_dnscache_negative_hits_total   counter  NegativeHits
//	nettune_dnscache_prefetches_total      counter  Prefetches
//	nettune_dnscache_evictions_total       counter  Evictions
//	nettune_dnscache_expired_total         counter  Expired
//	nettune_dnscache_lookups_total         counter  Lookups
//	nettune_dnscache_lookup_errors_total   counter  LookupErrors
//	nettune_dnscache_lookups_in_flight     gauge    InFlight
//	nettune_dnscache_entries               gauge    Entries
//	nettune_dnscache_size_bytes            gauge    Bytes
func NewDNSCacheCollector(opts StatsOpts, stats func() dnscache.Stats) *DNSCacheCollector {
	d := &DNSCacheCollector{c: statsCollector[dnscache.Stats]{read: stats}}
	ns, sub := opts.names("dnscache")
	b := &builder[dnscache.Stats]{namespace: ns, subsystem: sub, constLabels: opts.ConstLabels, c: &d.c}
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	b.add("hits_total", "Answers served fresh from the cache.", c, func(s *dnscache.Stats) float64 { return float64(s.Hits) })
	b.add("misses_total", "Lookups answered by waiting for the source.", c, func(s *dnscache.Stats) float64 { return float64(s.Misses) })
	b.add("stale_served_total", "Expired answers served because a refresh failed or was late.", c, func(s *dnscache.Stats) float64 { return float64(s.StaleServed) })
	b.add("negative_hits_total", "Cached \"no such host\" answers served.", c, func(s *dnscache.Stats) float64 { return float64(s.NegativeHits) })
	b.add("prefetches_total", "Background refreshes started by hits near expiry.", c, func(s *dnscache.Stats) float64 { return float64(s.Prefetches) })
	b.add("evictions_total", "Entries dropped to hold the size limits.", c, func(s *dnscache.Stats) float64 { return float64(s.Evictions) })
	b.add("expired_total", "Entries dropped by the sweeper, no longer servable.", c, func(s *dnscache.Stats) float64 { return float64(s.Expired) })
	b.add("lookups_total", "Lookups at the source started.", c, func(s *dnscache.Stats) float64 { return float64(s.Lookups) })
	b.add("lookup_errors_total", "Lookups at the source ended by a transient failure.", c, func(s *dnscache.Stats) float64 { return float64(s.LookupErrors) })
	b.add("lookups_in_flight", "Lookups at the source in progress now.", g, func(s *dnscache.Stats) float64 { return float64(s.InFlight) })
	b.add("entries", "Cached answers now.", g, func(s *dnscache.Stats) float64 { return float64(s.Entries) })
	b.add("size_bytes", "What the cached answers count against MaxBytes now, in bytes.", g, func(s *dnscache.Stats) float64 { return float64(s.Bytes) })
	return d
}

// Describe implements prometheus.Collector.
func (d *DNSCacheCollector) Describe(ch chan<- *prometheus.Desc) { d.c.describe(ch) }

// Collect implements prometheus.Collector.
func (d *DNSCacheCollector) Collect(ch chan<- prometheus.Metric) { d.c.collect(ch) }

// HTTPStagesCollector is a prometheus.Collector for the counts of a
// latency.HTTPStages: how many round trips, how many of them on a reused
// connection, how many new connections, and the failures. The stage
// durations themselves are histograms: export each stage's sink with a
// HistogramCollector, for example one named
// nettune_http_client_stage_duration_seconds with a "stage" label
// (dns, connect, tls, first_byte, server, total). Safe for concurrent use.
type HTTPStagesCollector struct {
	c statsCollector[latency.HTTPStageStats]
}

// NewHTTPStagesCollector returns a collector that calls stats (for an
// HTTPStages s, s.Stats) at every scrape. With the default names its
// metrics are:
//
//	nettune_http_client_requests_total      counter  Requests
//	nettune_http_client_reused_total        counter  Reused
//	nettune_http_client_connections_total   counter  Conns
//	nettune_http_client_failures_total      counter  Failures
//	nettune_http_client_body_errors_total   counter  BodyErrors
func NewHTTPStagesCollector(opts StatsOpts, stats func() latency.HTTPStageStats) *HTTPStagesCollector {
	h := &HTTPStagesCollector{c: statsCollector[latency.HTTPStageStats]{read: stats}}
	ns, sub := opts.names("http_client")
	b := &builder[latency.HTTPStageStats]{namespace: ns, subsystem: sub, constLabels: opts.ConstLabels, c: &h.c}
	c := prometheus.CounterValue
	b.add("requests_total", "Round trips that returned a response.", c, func(s *latency.HTTPStageStats) float64 { return float64(s.Requests) })
	b.add("reused_total", "Round trips sent on a connection that had served a request before.", c, func(s *latency.HTTPStageStats) float64 { return float64(s.Reused) })
	b.add("connections_total", "New connections made for round trips.", c, func(s *latency.HTTPStageStats) float64 { return float64(s.Conns) })
	b.add("failures_total", "Round trips that returned an error.", c, func(s *latency.HTTPStageStats) float64 { return float64(s.Failures) })
	b.add("body_errors_total", "Response bodies whose read failed before the end.", c, func(s *latency.HTTPStageStats) float64 { return float64(s.BodyErrors) })
	return h
}

// Describe implements prometheus.Collector.
func (h *HTTPStagesCollector) Describe(ch chan<- *prometheus.Desc) { h.c.describe(ch) }

// Collect implements prometheus.Collector.
func (h *HTTPStagesCollector) Collect(ch chan<- prometheus.Metric) { h.c.collect(ch) }
