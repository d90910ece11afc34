// Package nettuneotel exports nettune's latency histograms, pool statistics,
// DNS cache statistics and HTTP client stage counts to OpenTelemetry, as a
// metric.Producer of the Go SDK (go.opentelemetry.io/otel/sdk/metric) that
// any reader takes with metric.WithProducer. It is a module of its own, so that the core nettune
// module does not depend on OpenTelemetry.
//
// # Histograms
//
// [Producer.TrackHistogram] emits a latency snapshot as an exponential
// histogram data point in seconds (unit "s"), cumulative: the buckets are
// the snapshot's own (base 2^(2^-scale) seconds, upper bounds inclusive,
// values above latency.MaxValue counted in the bucket of the maximum), with
// the exact count, sum, minimum and maximum. When the buckets span more
// than [Producer.MaxSize] (160 by default, the SDK's own default), the
// scale is lowered one step at a time until they fit, each coarse bucket the
// sum of the two fine ones it covers: the point is then what the SDK's
// base-2 exponential histogram aggregation with that MaxSize holds for the
// same durations (the SDK finds a bucket by logarithm, so for a value
// within rounding of a boundary it may pick the neighbour; latency's
// buckets are the exact ones).
//
//	h, _ := latency.New()
//	var p nettuneotel.Producer
//	p.TrackHistogram("http.client.request.duration", "Duration of HTTP client requests.", h.Snapshot)
//	reader := metric.NewPeriodicReader(exporter, metric.WithProducer(&p))
//
// # Pool, DNS cache and HTTP client statistics
//
// The semantic conventions have no metrics for a generic resource pool or
// a DNS cache, so the names are nettune's own, under "nettune.", and follow
// the conventions' rules: counts of things now are up-down counters
// (non-monotonic sums) as db.client.connection.count is, counts since the
// start are counters, units are UCUM ("s", "By", "{resource}"), and a
// pool's resources are split by nettune.pool.state (idle, used) the way
// db.client.connection.state splits connections. Pass a pool's name as an
// attribute (nettune.pool.name, say) to tell several apart.
//
// [Producer.TrackPool] (pool.Stats field → metric):
//
//	Idle, InUse   nettune.pool.count{nettune.pool.state=idle|used}  up-down counter {resource}
//	MaxSize       nettune.pool.max                 up-down counter {resource}
//	Dialing       nettune.pool.pending_dials       up-down counter {dial}
//	Waiting       nettune.pool.pending_requests    up-down counter {request}
//	Gets          nettune.pool.gets                counter {get}
//	Hits          nettune.pool.hits                counter {get}
//	Misses        nettune.pool.misses              counter {get}
//	Waits         nettune.pool.waits               counter {get}
//	WaitTime      nettune.pool.wait_time           counter s
//	Timeouts      nettune.pool.timeouts            counter {timeout}
//	Dials         nettune.pool.dials               counter {dial}
//	DialErrors    nettune.pool.dial_errors         counter {dial}
//	Closed        nettune.pool.closed{nettune.pool.close.reason}  counter {resource}
//
// [Producer.TrackDNSCache] (dnscache.Stats field → metric):
//
//	Hits          nettune.dnscache.hits                   counter {lookup}
//	Misses        nettune.dnscache.misses                 counter {lookup}
//	StaleServed   nettune.dnscache.stale_served           counter {lookup}
//	NegativeHits  nettune.dnscache.negative_hits          counter {lookup}
//	Prefetches    nettune.dnscache.prefetches             counter {lookup}
//	Evictions     nettune.dnscache.evictions              counter {entry}
//	Expired       nettune.dnscache.expired                counter {entry}
//	Lookups       nettune.dnscache.source.lookups         counter {lookup}
//	LookupErrors  nettune.dnscache.source.lookup_errors   counter {lookup}
//	InFlight      nettune.dnscache.source.pending_lookups up-down counter {lookup}
//	Entries       nettune.dnscache.entries                up-down counter {entry}
//	Bytes         nettune.dnscache.size                   up-down counter By
//
// [Producer.TrackHTTPStages] (latency.HTTPStageStats field → metric; the
// stage durations are histograms, tracked with [Producer.TrackHistogram]):
//
//	Requests      nettune.http.client.requests            counter {request}
//	Reused        nettune.http.client.reused              counter {request}
//	Conns         nettune.http.client.connections         counter {connection}
//	Failures      nettune.http.client.failures            counter {request}
//	BodyErrors    nettune.http.client.body_errors         counter {response}
package nettuneotel
