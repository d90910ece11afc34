package latency

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// The bucket layout of a Snapshot is the one Prometheus native histograms
// (schema = Scale) and OpenTelemetry exponential histograms (scale = Scale)
// use, in seconds, their base unit: bucket i holds (2^((i-1)/2^s),
// 2^(i/2^s)] seconds. Record puts every duration in its exact bucket (the
// boundaries are compared in integer nanoseconds, see layout.go), so both
// exports below copy counts without re-bucketing and hold exactly what a
// Prometheus or OpenTelemetry histogram observing the same durations in
// seconds would hold. Name the metric accordingly (for example
// "rpc_latency_seconds"). Sum, Min and Max are exact in the Snapshot
// (integer nanoseconds) and exported as float64 seconds, rounded once.
//
// Values above MaxValue have no bucket of their own; both exports count
// them in the bucket that holds Max.

// NativeHistogram holds the fields of a Prometheus native histogram (the
// protobuf io.prometheus.client.Histogram's native part), ready to be
// copied into a client_golang or remote-write message.
type NativeHistogram struct {
	Schema         int32   // = Snapshot.Scale
	ZeroThreshold  float64 // 0: the zero bucket holds exact zeros only
	ZeroCount      uint64
	Count          uint64
	Sum            float64 // seconds
	PositiveSpans  []BucketSpan
	PositiveDeltas []int64 // each bucket's count minus the previous bucket's
}

// BucketSpan is a run of Length consecutive buckets starting Offset buckets
// after the end of the previous span (or at index Offset for the first).
type BucketSpan struct {
	Offset int32
	Length uint32
}

// exportBuckets returns the non-empty buckets with overflowed values
// placed in the bucket of Max.
func (s *Snapshot) exportBuckets() (index []int32, counts []uint64) {
	s.Buckets(func(i int, n uint64) bool {
		index = append(index, int32(i))
		counts = append(counts, n)
		return true
	})
	if s.overflow > 0 {
		i := int32(bucketIndex(s.scale, s.max))
		if len(index) > 0 && index[len(index)-1] == i {
			counts[len(counts)-1] += s.overflow
		} else {
			index = append(index, i)
			counts = append(counts, s.overflow)
		}
	}
	return index, counts
}

// NativeHistogram converts the snapshot losslessly to the fields of a
// Prometheus native histogram in seconds. Prometheus bucket i holds
// (2^((i-1)/2^schema), 2^(i/2^schema)] seconds, exactly the snapshot's
// bucket i; Sum is in seconds. The spans and deltas are the ones
// client_golang exposes for the same buckets: a gap of one or two empty
// buckets continues the span with zero counts instead of starting a new
// one (cheaper to encode), so a delta may describe an empty bucket inside
// a span; every span starts and ends with a non-empty bucket.
func (s *Snapshot) NativeHistogram() NativeHistogram {
	nh := NativeHistogram{Schema: int32(s.scale), ZeroCount: s.zero, Count: s.Count(), Sum: s.sumSeconds()}
	index, counts := s.exportBuckets()
	var prevCount int64
	next := int32(0) // the index after the previous bucket
	add := func(count int64) {
		nh.PositiveSpans[len(nh.PositiveSpans)-1].Length++
		nh.PositiveDeltas = append(nh.PositiveDeltas, count-prevCount)
		prevCount = count
	}
	for j, i := range index {
		if gap := i - next; j == 0 || gap > 2 {
			nh.PositiveSpans = append(nh.PositiveSpans, BucketSpan{Offset: gap})
		} else {
			for range gap {
				add(0)
			}
		}
		add(int64(counts[j]))
		next = i + 1
	}
	return nh
}

// ExponentialHistogram holds the fields of an OpenTelemetry exponential
// histogram data point (positive range only: latencies are never negative).
type ExponentialHistogram struct {
	Scale     int32
	Count     uint64
	Sum       float64 // seconds
	Min, Max  float64 // seconds; 0 when Count is 0
	ZeroCount uint64
	// Positive bucket k (0-based) has OpenTelemetry index PositiveOffset+k
	// and holds (base^(PositiveOffset+k), base^(PositiveOffset+k+1)].
	PositiveOffset       int32
	PositiveBucketCounts []uint64
}

// ExponentialHistogram converts the snapshot losslessly to an
// OpenTelemetry exponential histogram data point in seconds (unit "s").
// The OpenTelemetry index of a bucket is its Prometheus index minus one:
// OpenTelemetry bucket k holds (base^k, base^(k+1)] seconds. Sum, Min and
// Max are in seconds.
func (s *Snapshot) ExponentialHistogram() ExponentialHistogram {
	eh := ExponentialHistogram{Scale: int32(s.scale), Count: s.Count(), Sum: s.sumSeconds(), ZeroCount: s.zero}
	if eh.Count > 0 {
		eh.Min, eh.Max = seconds(s.min), seconds(s.max)
	}
	index, counts := s.exportBuckets()
	if len(index) == 0 {
		return eh
	}
	eh.PositiveOffset = index[0] - 1
	eh.PositiveBucketCounts = make([]uint64, index[len(index)-1]-index[0]+1)
	for j, i := range index {
		eh.PositiveBucketCounts[i-index[0]] = counts[j]
	}
	return eh
}

// seconds converts v nanoseconds to float64 seconds; exact nanoseconds
// (up to 2^53) give the correctly rounded number of seconds.
func seconds(v int64) float64 { return float64(v) / 1e9 }

// sumSeconds is the exact 128-bit sum in float64 seconds: its whole
// seconds and the nanoseconds left over are converted apart, so the
// result is within a few roundings of the exact value, never saturated.
func (s *Snapshot) sumSeconds() float64 {
	qHi := s.sumHi / 1e9
	qLo, r := bits.Div64(s.sumHi%1e9, s.sumLo, 1e9)
	return float64(qHi)*0x1p64 + float64(qLo) + float64(r)/1e9
}

// WritePercentileDistribution writes the snapshot in HdrHistogram's
// percentile distribution text format (what HdrHistogram's
// outputPercentileDistribution prints and its plotting tools read), with
// ticksPerHalfDistance (1 to 1000) reporting steps per halving of the
// distance to 100% (HdrHistogram uses 5) and values divided by unit (1e3
// for microseconds, 1e6 for milliseconds). Values are bucket
// representatives, within RelativeError of the exact ones.
//
// The levels are computed exactly, in integers: a line reports the first
// value whose running count reaches its level, and the lines end at the
// first level the last value reaches. Since a count fits in 64 bits, that
// is at most 65 halvings, so the text has at most 65·ticksPerHalfDistance
// + 6 lines whatever the snapshot holds. It stops at the first error w
// returns and returns that error.
func (s *Snapshot) WritePercentileDistribution(w io.Writer, ticksPerHalfDistance int, unit float64) error {
	if ticksPerHalfDistance < 1 || ticksPerHalfDistance > 1000 {
		return fmt.Errorf("latency: ticksPerHalfDistance %d: must be between 1 and 1000", ticksPerHalfDistance)
	}
	if !(unit > 0) || math.IsInf(unit, 0) {
		return fmt.Errorf("latency: unit %v: must be a positive finite number", unit)
	}
	bw := bufio.NewWriter(w)
	if _, err := fmt.Fprintf(bw, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)"); err != nil {
		return err
	}
	total := s.Count()
	if total > 0 {
		// The places values are in, in ascending order: k = -1 is the zero
		// count, 0 <= k < len(s.cum) a bucket, k = len(s.cum) the overflow.
		cumAt := func(k int) uint64 {
			switch {
			case k < 0:
				return s.zero
			case k < len(s.cum):
				return s.cum[k]
			}
			return total
		}
		valueAt := func(k int) float64 {
			switch {
			case k < 0:
				return 0
			case k < len(s.cum):
				return s.representative(s.offset + k)
			}
			return float64(s.max)
		}
		t := uint64(ticksPerHalfDistance)
		k := -1
	levels:
		// Half distance j covers levels 1-2^-j up to 1-2^-(j+1) in t
		// steps: step m is level 1 - (2t-m)/(t·2^(j+1)). At j = 64 the
		// level is above every count but the total, so the loops end there.
		for j := range uint(65) {
			for m := range t {
				// The first place whose running count reaches the level (at
				// least 1, so that level 0 reports the first occupied place).
				// k only moves forward, at most to the last place, whose
				// count is total.
				need := max(total-aboveLevel(total, t, m, j), 1)
				for cumAt(k) < need {
					k++
				}
				rest := float64(2*t-m) / math.Ldexp(float64(t), int(j)+1) // 1 - level
				if _, err := fmt.Fprintf(bw, "%12.3f %2.12f %10d %14.2f\n", valueAt(k)/unit, 1-rest, cumAt(k), 1/rest); err != nil {
					return err
				}
				if cumAt(k) == total {
					break levels // the last place reports one level, then 100%
				}
			}
		}
		if _, err := fmt.Fprintf(bw, "%12.3f %2.12f %10d\n", float64(s.max)/unit, 1.0, total); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(bw, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", float64(s.Mean())/unit, float64(s.StdDev())/unit); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(bw, "#[Max     = %12.3f, Total count    = %12d]\n", float64(s.Max())/unit, total); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(bw, "#[Buckets = %12d, SubBuckets     = %12d]\n", numChunks, 1<<s.scale); err != nil {
		return err
	}
	return bw.Flush()
}

// aboveLevel reports how many of total values lie above level m of half
// distance j at t ticks per half distance, the level being
// 1 - (2t-m)/(t·2^(j+1)): floor(total·(2t-m) / (t·2^(j+1))), in 128 bits
// (t <= 1000, m < t, j <= 64).
func aboveLevel(total, t, m uint64, j uint) uint64 {
	hi, lo := bits.Mul64(total, 2*t-m)
	qHi := hi / t
	qLo, _ := bits.Div64(hi%t, lo, t)
	if sh := j + 1; sh < 64 {
		return qLo>>sh | qHi<<(64-sh)
	}
	return qHi >> (j + 1 - 64)
}
