package nettuneotel

// TEMPORARY (issue 13). latency is moving its exports from nanoseconds to
// seconds (buckets at powers of 2^(2^-scale) seconds; Sum, Min and Max in
// seconds). Until that lands, this file maps a nanosecond export onto the
// seconds grid; once latency exports seconds, nanosecondExport is false and
// exportExponential is s.ExponentialHistogram(). Delete this file then, and
// replace the one call (in producer.go) with s.ExponentialHistogram().

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
	return s.ExponentialHistogram().Sum == 1e9
}()

// exportExponential returns s's exponential histogram in seconds. From a
// nanosecond export, Sum, Min and Max are divided by 1e9 and the buckets
// move by round(2^scale·log2(1e9)) indexes, to the seconds bucket nearest
// in log space: counts are kept, but a value may be placed up to half a
// bucket away from its own, beyond the stated relative error.
func exportExponential(s *latency.Snapshot) latency.ExponentialHistogram {
	eh := s.ExponentialHistogram()
	if !nanosecondExport {
		return eh
	}
	eh.Sum /= 1e9
	eh.Min /= 1e9
	eh.Max /= 1e9
	eh.PositiveOffset -= int32(math.Round(math.Ldexp(math.Log2(1e9), int(eh.Scale))))
	return eh
}
