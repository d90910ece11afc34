package nettuneotel

import (
	"time"

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

func appendPools(ms []metricdata.Metrics, ps []*poolSource, now time.Time) []metricdata.Metrics {
	if len(ps) == 0 {
		return ms
	}
	count := sum[int64]("nettune.pool.count", "Resources in the pool now, by state (idle, used).", "{resource}", false)
	limit := sum[int64]("nettune.pool.max", "Maximum number of resources the pool holds (its MaxSize).", "{resource}", false)
	dialing := sum[int64]("nettune.pool.pending_dials", "Dials in progress now.", "{dial}", false)
	pending := sum[int64]("nettune.pool.pending_requests", "Gets waiting for a resource now.", "{request}", false)
	gets := sum[int64]("nettune.pool.gets", "Get and TryGet calls.", "{get}", true)
	hits := sum[int64]("nettune.pool.hits", "Gets served from the idle set at once.", "{get}", true)
	misses := sum[int64]("nettune.pool.misses", "Gets that found no idle resource.", "{get}", true)
	waits := sum[int64]("nettune.pool.waits", "Gets that waited and got a resource.", "{get}", true)
	waitTime := sum[float64]("nettune.pool.wait_time", "Total time Gets waited for a resource.", "s", true)
	timeouts := sum[int64]("nettune.pool.timeouts", "Gets ended by their context.", "{timeout}", true)
	dials := sum[int64]("nettune.pool.dials", "Dials started.", "{dial}", true)
	dialErrors := sum[int64]("nettune.pool.dial_errors", "Dials that failed.", "{dial}", true)
	closed := sum[int64]("nettune.pool.closed", "Resources closed by the pool, by reason.", "{resource}", true)
	for _, p := range ps {
		s, a, t := p.stats(), p.attrs, p.start
		add(&count, int64(s.Idle), with(a, PoolStateKey.String("idle")), t, now)
		add(&count, int64(s.InUse), with(a, PoolStateKey.String("used")), t, now)
		add(&limit, int64(s.MaxSize), a, t, now)
		add(&dialing, int64(s.Dialing), a, t, now)
		add(&pending, int64(s.Waiting), a, t, now)
		add(&gets, int64(s.Gets), a, t, now)
		add(&hits, int64(s.Hits), a, t, now)
		add(&misses, int64(s.Misses), a, t, now)
		add(&waits, int64(s.Waits), a, t, now)
		add(&waitTime, s.WaitTime.Seconds(), a, t, now)
		add(&timeouts, int64(s.Timeouts), a, t, now)
		add(&dials, int64(s.Dials), a, t, now)
		add(&dialErrors, int64(s.DialErrors), a, t, now)
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
	return append(ms, count, limit, dialing, pending, gets, hits, misses, waits, waitTime, timeouts, dials, dialErrors, closed)
}

func appendCaches(ms []metricdata.Metrics, cs []*cacheSource, now time.Time) []metricdata.Metrics {
	if len(cs) == 0 {
		return ms
	}
	hits := sum[int64]("nettune.dnscache.hits", "Answers served fresh from the cache.", "{lookup}", true)
	misses := sum[int64]("nettune.dnscache.misses", "Lookups answered by waiting for the source.", "{lookup}", true)
	stale := sum[int64]("nettune.dnscache.stale_served", "Expired answers served because a refresh failed or was late.", "{lookup}", true)
	negative := sum[int64]("nettune.dnscache.negative_hits", `Cached "no such host" answers served.`, "{lookup}", true)
	prefetches := sum[int64]("nettune.dnscache.prefetches", "Background refreshes started by hits near expiry.", "{lookup}", true)
	evictions := sum[int64]("nettune.dnscache.evictions", "Entries dropped to hold the size limits.", "{entry}", true)
	expired := sum[int64]("nettune.dnscache.expired", "Entries dropped by the sweeper, no longer servable.", "{entry}", true)
	lookups := sum[int64]("nettune.dnscache.source.lookups", "Lookups at the source started.", "{lookup}", true)
	lookupErrors := sum[int64]("nettune.dnscache.source.lookup_errors", "Lookups at the source ended by a transient failure.", "{lookup}", true)
	inFlight := sum[int64]("nettune.dnscache.source.pending_lookups", "Lookups at the source in progress now.", "{lookup}", false)
	entries := sum[int64]("nettune.dnscache.entries", "Cached answers now.", "{entry}", false)
	size := sum[int64]("nettune.dnscache.size", "What the cached answers count against MaxBytes now.", "By", false)
	for _, c := range cs {
		s, a, t := c.stats(), c.attrs, c.start
		add(&hits, int64(s.Hits), a, t, now)
		add(&misses, int64(s.Misses), a, t, now)
		add(&stale, int64(s.StaleServed), a, t, now)
		add(&negative, int64(s.NegativeHits), a, t, now)
		add(&prefetches, int64(s.Prefetches), a, t, now)
		add(&evictions, int64(s.Evictions), a, t, now)
		add(&expired, int64(s.Expired), a, t, now)
		add(&lookups, int64(s.Lookups), a, t, now)
		add(&lookupErrors, int64(s.LookupErrors), a, t, now)
		add(&inFlight, int64(s.InFlight), a, t, now)
		add(&entries, int64(s.Entries), a, t, now)
		add(&size, s.Bytes, a, t, now)
	}
	return append(ms, hits, misses, stale, negative, prefetches, evictions, expired, lookups, lookupErrors, inFlight, entries, size)
}

func appendStages(ms []metricdata.Metrics, ss []*stagesSource, now time.Time) []metricdata.Metrics {
	if len(ss) == 0 {
		return ms
	}
	requests := sum[int64]("nettune.http.client.requests", "Round trips that returned a response.", "{request}", true)
	reused := sum[int64]("nettune.http.client.reused", "Round trips sent on a connection that had served a request before.", "{request}", true)
	conns := sum[int64]("nettune.http.client.connections", "New connections made for round trips.", "{connection}", true)
	failures := sum[int64]("nettune.http.client.failures", "Round trips that returned an error.", "{request}", true)
	bodyErrors := sum[int64]("nettune.http.client.body_errors", "Response bodies whose read failed before the end.", "{response}", true)
	for _, src := range ss {
		s, a, t := src.stats(), src.attrs, src.start
		add(&requests, int64(s.Requests), a, t, now)
		add(&reused, int64(s.Reused), a, t, now)
		add(&conns, int64(s.Conns), a, t, now)
		add(&failures, int64(s.Failures), a, t, now)
		add(&bodyErrors, int64(s.BodyErrors), a, t, now)
	}
	return append(ms, requests, reused, conns, failures, bodyErrors)
}
