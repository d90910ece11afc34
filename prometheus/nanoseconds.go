package nettuneprom

// TEMPORARY (issue 13). latency is moving its exports from nanoseconds to
// seconds (native buckets at powers of 2^(2^-schema) seconds, Sum in
// seconds). Until that lands, this file maps a nanosecond export onto the
// seconds grid; once latency exports seconds, nanosecondExport is false and
// every function here is the identity. Delete this file then, and replace
// the two calls (exportNative in collector.go) with s.NativeHistogram().

import (
	"math"
	"time"

	"github.com/nettune/nettune/latency"
)

// nanosecondExport reports whether latency still exports nanoseconds: one
// second recorded then has a Sum of 1e9 instead of 1.
var nanosecondExport = func() bool {
	var h latency.Histogram
	h.Record(time.Second)
	s := h.Snapshot()
	nh := s.NativeHistogram()
	return nh.Sum == 1e9
}()

// exportNative returns s's native histogram in seconds. From a nanosecond
// export, Sum is divided by 1e9 (exactly rounded) and each bucket moves by
// round(2^schema·log2(1e9)) indexes, to the seconds bucket nearest in log
// space: counts are kept, but a value may be placed up to half a bucket
// away from its own, beyond the stated relative error.
func exportNative(s *latency.Snapshot) latency.NativeHistogram {
	nh := s.NativeHistogram()
	if !nanosecondExport {
		return nh
	}
	nh.Sum /= 1e9
	if len(nh.PositiveSpans) > 0 {
		shift := int32(math.Round(math.Ldexp(math.Log2(1e9), int(nh.Schema))))
		nh.PositiveSpans = append([]latency.BucketSpan(nil), nh.PositiveSpans...)
		nh.PositiveSpans[0].Offset -= shift
	}
	return nh
}
