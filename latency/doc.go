// Package latency records latencies into a lock-free, sharded histogram
// with a guaranteed relative error on every quantile, and measures them:
// connect time, request/response round trips, open-loop schedules and the
// kernel's RTT estimate.
//
// # Recording
//
// [New] returns a [Histogram]; without options it never fails, and a zero
// Histogram works too (set up with the defaults on first use, at a small
// price per value). [Histogram.Record] takes a time.Duration and
// [Histogram.RecordValue] a plain non-negative integer; both are safe for
// concurrent use, never block and do not allocate. The count, sum, minimum
// and maximum are exact; negative values are counted by Invalid and values
// above [MaxValue] (about 104 days) by Overflow, never dropped silently.
// Counts never wrap: the calls that add many values at once
// ([Histogram.RecordN], [Histogram.RecordCorrected], [Histogram.Merge])
// refuse, with an error wrapping [ErrCountLimit], to take more than
// [MaxBulkCount] (2^62) values in all.
//
//	h, _ := latency.New() // quantiles within 0.55%
//	start := time.Now()
//	callBackend()
//	h.Record(time.Since(start))
//	s := h.Snapshot()
//	fmt.Println(s.Quantile(0.99), s.Max())
//
// Values go into base-2 exponential buckets of seconds: bucket i holds
// (base^(i-1), base^i] seconds with base = 2^(2^-scale), so bucket 0 ends
// at exactly one second, the layout of Prometheus native histograms and
// OpenTelemetry exponential histograms. Each duration lands in its exact
// bucket: the boundaries, irrational numbers of nanoseconds, are computed
// exactly once per scale, and Record compares in integer nanoseconds
// (no logarithm, no float rounding). [Scale] or [RelativeError]
// picks the scale; quantiles are within [ErrorAtScale] of the exact value
// (0.54% at the default scale 6, 0.135% at scale 8), plus at most half a
// nanosecond of rounding. Each bucket is a 32-bit counter (a wrap past 2^32
// is carried into a 64-bit slot, never lost), allocated an octave at a time
// when first used. [Histogram.Record] is the fast path: built with the gc
// compiler it pins the goroutine to its P and adds to that P's own shard
// with plain writes, no locked instruction; under -race, with other
// compilers or with -tags nettune_atomic it uses atomic adds into shards
// chosen by stack address. Count, sum, minimum and maximum are exact once
// writers stop; a [Recorder] is the exact-interval path while they run.
//
// # Reading
//
// [Histogram.Snapshot] copies the histogram into a [Snapshot]
// that answers [Snapshot.Quantile], [Snapshot.Summary] (p50 … p99.9, max),
// [Snapshot.Mean], [Snapshot.StdDev] and [Snapshot.CountAtOrBelow] for SLOs.
// Quantiles are fractions: Quantile(0.99) is the 99th percentile, and a q
// outside [0, 1] (such as HdrHistogram's 99) returns -1, never a plausible
// value. A [Recorder] hands out intervals instead: [Recorder.Interval] returns what
// was recorded since the last call while writers keep going, each value in
// exactly one interval (the job of HdrHistogram's Recorder).
//
// Snapshots merge index to index ([Snapshot.Merge], or in place into an
// accumulator with [Snapshot.Add]); at different scales the
// finer one is downscaled first, which is exactly what recording at the
// coarser scale would have given, and an empty snapshot takes the other's
// scale. [Snapshot.MarshalBinary] encodes a
// snapshot compactly (about 1.3 KB for a million latency-like values) and
// [Snapshot.UnmarshalBinary] is safe on untrusted input: every method of a
// decoded snapshot returns in time and output bounded by its number of
// buckets, whatever counts it holds.
//
// # Coordinated omission
//
// A closed-loop measurement that stalls also stops sampling, so the stall
// shows up once instead of in every request that would have waited.
// [Histogram.RecordCorrected] adds the missing samples given the expected
// interval; [Probe.OpenLoop] avoids the problem by measuring each call from
// its intended start on a fixed schedule.
//
// # Exports and rendering
//
// The layout is that of Prometheus native histograms (schema = scale) and
// OpenTelemetry exponential histograms in seconds, their base unit, so
// [Snapshot.NativeHistogram] and [Snapshot.ExponentialHistogram] copy
// counts without re-bucketing: each duration is in the bucket that holds
// it mathematically (as client_golang's native histogram places the same
// durations in float seconds), and Sum, Min and Max are the exact
// nanosecond values converted to float64 seconds. [Snapshot.WritePercentileDistribution] writes HdrHistogram's
// percentile distribution text. A Snapshot prints as a percentile table
// with %v and adds a text bar chart with %+v.
//
// # Probes
//
// A [Probe] fills any [Sink] (a Histogram or a Recorder) with samples, each
// taken between two clock reads, counting failures and timeouts apart:
// [Probe.Time], [Probe.Connect] with any dial function, [Probe.RoundTrip]
// over one connection, [Probe.OpenLoop] and [Probe.KernelRTT], which takes
// the RTT reader (for example a TCP_INFO reader) from the caller; each
// returns a [ProbeResult]. Tests set [Probe].Now and Sleep to control time.
//
// # HTTP stages
//
// [HTTPStages] splits the time of net/http client requests into stages,
// each into its own Sink: DNS, Connect and TLS once per new connection
// (a reused connection, or another stream of an HTTP/2 connection, adds
// none of them; with Happy Eyeballs only the attempt that won), and
// FirstByte, Server and Total once per round trip that returned a
// response, Total ending when the body is read to its end or closed.
// [HTTPStages.Transport] wraps any http.RoundTripper; failures are counted
// in [HTTPStageStats], never recorded as latencies.
package latency
