package nettuneotel

import (
	"time"

	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/pool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Attribute keys of the points that split a pool metric.
const (
	// PoolStateKey tells idle from used resources in nettune.pool.count,
	// as db.client.connection.state does in db.client.connection.count.
	PoolStateKey = attribute.Key("nettune.pool.state")
	// PoolCloseReasonKey tells why resources counted in nettune.pool.closed
	// were closed: idle, lifetime, health, discarded, excess, reset or
	// pool_closed.
	PoolCloseReasonKey = attribute.Key("nettune.pool.close.reason")
)

// sum is a cumulative Sum metric: a counter (monotonic), or an up-down
// counter for a value now, as the semantic conventions use for counts of
// things (db.client.connection.count).
func sum[N int64 | float64](name, description, unit string, monotonic bool) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Description: description, Unit: unit,
		Data: metricdata.Sum[N]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: monotonic}}
}

// add appends a point to m, a Sum of N.
func add[N int64 | float64](m *metricdata.Metrics, v N, attrs attribute.Set, start, now time.Time) {
	d := m.Data.(metricdata.Sum[N])
	d.DataPoints = append(d.DataPoints, metricdata.DataPoint[N]{Attributes: attrs, StartTime: start, Time: now, Value: v})
	m.Data = d
}

// with returns attrs plus one more attribute.
func with(attrs attribute.Set, kv attribute.KeyValue) attribute.Set {
	return attribute.NewSet(append(attrs.ToSlice(), kv)...)
}

// count is a metric whose points are one integer field of a statistics
// struct S, one point per tracked source.
type count[S any] struct {
	name, description, unit string
	monotonic               bool // a counter; false: an up-down counter (a count of things now)
	value                   func(*S) int64
}

// appendCounts adds the metrics of counts, with a point per source in ss.
func appendCounts[S any](ms []metricdata.Metrics, counts []count[S], ss []*statsSource[S], now time.Time) []metricdata.Metrics {
	if len(ss) == 0 {
		return ms
	}
	out := make([]metricdata.Metrics, len(counts))
	for i, c := range counts {
		out[i] = sum[int64](c.name, c.description, c.unit, c.monotonic)
	}
	for _, src := range ss {
		s := src.stats()
		for i, c := range counts {
			add(&out[i], c.value(&s), src.attrs, src.start, now)
		}
	}
	return append(ms, out...)
}

// poolCounts are the pool metrics with one point per pool; appendPools
// adds those split by an attribute, and the wait time in seconds.
var poolCounts = []count[pool.Stats]{
	{"nettune.pool.max", "Maximum number of resources the pool holds (its MaxSize).", "{resource}", false, func(s *pool.Stats) int64 { return int64(s.MaxSize) }},
	{"nettune.pool.pending_dials", "Dials in progress now.", "{dial}", false, func(s *pool.Stats) int64 { return int64(s.Dialing) }},
	{"nettune.pool.pending_requests", "Gets waiting for a resource now.", "{request}", false, func(s *pool.Stats) int64 { return int64(s.Waiting) }},
	{"nettune.pool.gets", "Get and TryGet calls.", "{get}", true, func(s *pool.Stats) int64 { return int64(s.Gets) }},
	{"nettune.pool.hits", "Gets served from the idle set at once.", "{get}", true, func(s *pool.Stats) int64 { return int64(s.Hits) }},
	{"nettune.pool.misses", "Gets that found no idle resource.", "{get}", true, func(s *pool.Stats) int64 { return int64(s.Misses) }},
	{"nettune.pool.waits", "Gets that waited and got a resource.", "{get}", true, func(s *pool.Stats) int64 { return int64(s.Waits) }},
	{"nettune.pool.timeouts", "Gets ended by their context.", "{timeout}", true, func(s *pool.Stats) int64 { return int64(s.Timeouts) }},
	{"nettune.pool.dials", "Dials started.", "{dial}", true, func(s *pool.Stats) int64 { return int64(s.Dials) }},
	{"nettune.pool.dial_errors", "Dials that failed.", "{dial}", true, func(s *pool.Stats) int64 { return int64(s.DialErrors) }},
}

func appendPools(ms []metricdata.Metrics, ps []*statsSource[pool.Stats], now time.Time) []metricdata.Metrics {
	if len(ps) == 0 {
		return ms
	}
	count := sum[int64]("nettune.pool.count", "Resources in the pool now, by state (idle, used).", "{resource}", false)
	waitTime := sum[float64]("nettune.pool.wait_time", "Total time Gets waited for a resource.", "s", true)
	closed := sum[int64]("nettune.pool.closed", "Resources closed by the pool, by reason.", "{resource}", true)
	for _, p := range ps {
		s, a, t := p.stats(), p.attrs, p.start
		add(&count, int64(s.Idle), with(a, PoolStateKey.String("idle")), t, now)
		add(&count, int64(s.InUse), with(a, PoolStateKey.String("used")), t, now)
		add(&waitTime, s.WaitTime.Seconds(), a, t, now)
		for _, r := range []struct {
			reason string
			n      uint64
		}{
			{"idle", s.Closed.Idle}, {"lifetime", s.Closed.Lifetime}, {"health", s.Closed.Health},
			{"discarded", s.Closed.Discarded}, {"excess", s.Closed.Excess}, {"reset", s.Closed.Reset},
			{"pool_closed", s.Closed.PoolClosed},
		} {
			add(&closed, int64(r.n), with(a, PoolCloseReasonKey.String(r.reason)), t, now)
		}
	}
	ms = append(ms, count)
	ms = appendCounts(ms, poolCounts, ps, now)
	return append(ms, waitTime, closed)
}

var cacheCounts = []count[dnscache.Stats]{
	{"nettune.dnscache.hits", "Answers served fresh from the cache.", "{lookup}", true, func(s *dnscache.Stats) int64 { return int64(s.Hits) }},
	{"nettune.dnscache.misses", "Lookups answered by waiting for the source.", "{lookup}", true, func(s *dnscache.Stats) int64 { return int64(s.Misses) }},
	{"nettune.dnscache.stale_served", "Expired answers served because a refresh failed or was late.", "{lookup}", true, func(s *dnscache.Stats) int64 { return int64(s.StaleServed) }},
	{"nettune.dnscache.negative_hits", `Cached "no such host" answers served.`, "{lookup}", true, func(s *dnscache.Stats) int64 { return int64(s.NegativeHits) }},
	{"nettune.dnscache.prefetches", "Background refreshes started by hits near expiry.", "{lookup}", true, func(s *dnscache.Stats) int64 { return int64(s.Prefetches) }},
	{"nettune.dnscache.evictions", "Entries dropped to hold the size limits.", "{entry}", true, func(s *dnscache.Stats) int64 { return int64(s.Evictions) }},
	{"nettune.dnscache.expired", "Entries dropped by the sweeper, no longer servable.", "{entry}", true, func(s *dnscache.Stats) int64 { return int64(s.Expired) }},
	{"nettune.dnscache.source.lookups", "Lookups at the source started.", "{lookup}", true, func(s *dnscache.Stats) int64 { return int64(s.Lookups) }},
	{"nettune.dnscache.source.lookup_errors", "Lookups at the source ended by a transient failure.", "{lookup}", true, func(s *dnscache.Stats) int64 { return int64(s.LookupErrors) }},
	{"nettune.dnscache.source.pending_lookups", "Lookups at the source in progress now.", "{lookup}", false, func(s *dnscache.Stats) int64 { return int64(s.InFlight) }},
	{"nettune.dnscache.entries", "Cached answers now.", "{entry}", false, func(s *dnscache.Stats) int64 { return int64(s.Entries) }},
	{"nettune.dnscache.size", "What the cached answers count against MaxBytes now.", "By", false, func(s *dnscache.Stats) int64 { return s.Bytes }},
}

var stageCounts = []count[latency.HTTPStageStats]{
	{"nettune.http.client.requests", "Round trips that returned a response.", "{request}", true, func(s *latency.HTTPStageStats) int64 { return int64(s.Requests) }},
	{"nettune.http.client.reused", "Round trips sent on a connection that had served a request before.", "{request}", true, func(s *latency.HTTPStageStats) int64 { return int64(s.Reused) }},
	{"nettune.http.client.connections", "New connections made for round trips.", "{connection}", true, func(s *latency.HTTPStageStats) int64 { return int64(s.Conns) }},
	{"nettune.http.client.failures", "Round trips that returned an error.", "{request}", true, func(s *latency.HTTPStageStats) int64 { return int64(s.Failures) }},
	{"nettune.http.client.body_errors", "Response bodies whose read failed before the end.", "{response}", true, func(s *latency.HTTPStageStats) int64 { return int64(s.BodyErrors) }},
}
