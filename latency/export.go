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
// use, so both exports below copy counts without re-bucketing. The unit of
// the exported values is the nanosecond: converting to seconds would move
// every boundary off the base-2 grid (10^9 is not a power of two), so
// name the metric accordingly (for example "rpc_latency_nanoseconds").
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
	Sum            float64 // nanoseconds
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
		i := int32(math.Ceil(math.Log2(float64(s.max)) * float64(int(1)<<s.scale)))
		if len(index) > 0 && index[len(index)-1] == i {
			counts[len(counts)-1] += s.overflow
		} else {
			index = append(index, i)
			counts = append(counts, s.overflow)
		}
	}
	return index, counts
}

// NativeHistogram converts the snapshot losslessly (in nanoseconds) to the
// fields of a Prometheus native histogram. Prometheus bucket i holds
// (2^((i-1)/2^schema), 2^(i/2^schema)], exactly the snapshot's bucket i.
func (s *Snapshot) NativeHistogram() NativeHistogram {
	nh := NativeHistogram{Schema: int32(s.scale), ZeroCount: s.zero, Count: s.Count(), Sum: s.SumFloat()}
	index, counts := s.exportBuckets()
	var prevCount int64
	for j, i := range index {
		if j == 0 || i != index[j-1]+1 {
			off := i
			if j > 0 {
				off = i - index[j-1] - 1
			}
			nh.PositiveSpans = append(nh.PositiveSpans, BucketSpan{Offset: off})
		}
		nh.PositiveSpans[len(nh.PositiveSpans)-1].Length++
		nh.PositiveDeltas = append(nh.PositiveDeltas, int64(counts[j])-prevCount)
		prevCount = int64(counts[j])
	}
	return nh
}

// ExponentialHistogram holds the fields of an OpenTelemetry exponential
// histogram data point (positive range only: latencies are never negative).
type ExponentialHistogram struct {
	Scale     int32
	Count     uint64
	Sum       float64 // nanoseconds
	Min, Max  float64 // nanoseconds; 0 when Count is 0
	ZeroCount uint64
	// Positive bucket k (0-based) has OpenTelemetry index PositiveOffset+k
	// and holds (base^(PositiveOffset+k), base^(PositiveOffset+k+1)].
	PositiveOffset       int32
	PositiveBucketCounts []uint64
}

// ExponentialHistogram converts the snapshot losslessly (in nanoseconds)
// to an OpenTelemetry exponential histogram data point. The OpenTelemetry
// index of a bucket is its Prometheus index minus one.
func (s *Snapshot) ExponentialHistogram() ExponentialHistogram {
	eh := ExponentialHistogram{Scale: int32(s.scale), Count: s.Count(), Sum: s.SumFloat(), ZeroCount: s.zero}
	if eh.Count > 0 {
		eh.Min, eh.Max = float64(s.min), float64(s.max)
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
