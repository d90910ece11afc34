// Package nettuneprom exports nettune's latency histograms, pool statistics
// and DNS cache statistics to Prometheus, as prometheus.Collectors for a
// prometheus.Registry and promhttp. It is a module of its own, so that the
// core nettune module does not depend on client_golang.
//
// # Histograms
//
// A [HistogramCollector] exports latency snapshots in seconds, as
// Prometheus wants (names end in "_seconds"), and each series carries two
// histograms in one metric:
//
//   - the native histogram, copied bucket for bucket: its schema is the
//     snapshot's scale (latency's scales 0 to 8 are all valid schemas; a
//     finer one would be lowered to 8 by merging buckets, which loses
//     nothing that schema 8 can hold), its buckets lie between powers of
//     2^(2^-schema) seconds, values above latency.MaxValue are counted in
//     the bucket of the maximum (so the buckets add up to the count, as
//     Prometheus requires), the zero bucket's threshold is client_golang's
//     default 2^-128 s (it holds exactly the zero durations, as latency's
//     does), and an empty histogram carries the {0, 0} span: either marks it
//     as native (Prometheus before 2.47 looks at the threshold, later ones at
//     the span);
//   - classic le buckets at HistogramOpts.Buckets (prometheus.DefBuckets by
//     default), for servers that scrape only those. A bound that is a native
//     bucket boundary (any power of two of seconds, such as 0.25, 0.5, 1 or
//     2), at or above the maximum, or below the smallest value is exact;
//     another leaves out the one native bucket it falls in, so its count is
//     a lower bound missing only values less than one native bucket's
//     width (1.09% at the default scale) below the bound.
//
// Prometheus scrapes native histograms in the protobuf format, which
// promhttp serves when asked; the text format carries the classic buckets.
//
//	h, _ := latency.New()
//	c, err := nettuneprom.NewHistogramCollector(nettuneprom.HistogramOpts{
//		Name: "backend_request_duration_seconds",
//		Help: "Time to get a response from the backend.",
//	})
//	if err != nil { ... }
//	c.Track(h.Snapshot)
//	prometheus.MustRegister(c)
//	http.Handle("/metrics", promhttp.Handler())
//
// # Pool and DNS cache statistics
//
// [NewPoolCollector] and [NewDNSCacheCollector] export pool.Stats and
// dnscache.Stats as counters (ending in "_total", wait time in seconds) and
// gauges, under "nettune_pool_" and "nettune_dnscache_" by default; their
// docs list every metric. Several pools tell themselves apart by a constant
// label.
package nettuneprom
