package nettuneprom

import (
	"math"

	"github.com/nettune/nettune/latency"
)

// bucket is one non-empty native bucket: index i holds the values in
// (2^((i-1)/2^schema), 2^(i/2^schema)] seconds.
type bucket struct {
	index int
	count uint64
}

// buckets walks the non-empty buckets of spans and deltas (a native
// histogram's encoding) in ascending order.
type buckets struct {
	spans  []latency.BucketSpan
	deltas []int64
	s, k   int    // the current span, the next delta
	left   uint32 // buckets left in span s
	index  int    // the index of the next bucket
	count  int64  // the count of the previous bucket
}

// next returns the next non-empty bucket, or ok false at the end.
func (it *buckets) next() (b bucket, ok bool) {
	for {
		for it.left == 0 {
			if it.s >= len(it.spans) {
				return bucket{}, false
			}
			sp := it.spans[it.s]
			if it.s == 0 {
				it.index = int(sp.Offset)
			} else {
				it.index += int(sp.Offset)
			}
			it.left = sp.Length
			it.s++
		}
		it.count += it.deltas[it.k]
		it.k++
		it.left--
		i := it.index
		it.index++
		if it.count != 0 {
			return bucket{index: i, count: uint64(it.count)}, true
		}
	}
}

// nativeBuckets lists the non-empty buckets of nh with their absolute counts.
// NativeHistogram places the values above latency.MaxValue in the bucket of
// the maximum, so the counts add up to Count minus ZeroCount.
func nativeBuckets(nh *latency.NativeHistogram) []bucket {
	out := make([]bucket, 0, len(nh.PositiveDeltas))
	it := buckets{spans: nh.PositiveSpans, deltas: nh.PositiveDeltas}
	for b, ok := it.next(); ok; b, ok = it.next() {
		out = append(out, b)
	}
	return out
}

// encode is the inverse of nativeBuckets: spans and deltas for bs.
func encode(bs []bucket) ([]latency.BucketSpan, []int64) {
	var spans []latency.BucketSpan
	deltas := make([]int64, len(bs))
	var prev int64
	for j, b := range bs {
		if j == 0 || b.index != bs[j-1].index+1 {
			off := b.index
			if j > 0 {
				off = b.index - bs[j-1].index - 1
			}
			spans = append(spans, latency.BucketSpan{Offset: int32(off)})
		}
		spans[len(spans)-1].Length++
		deltas[j] = int64(b.count) - prev
		prev = int64(b.count)
	}
	return spans, deltas
}

// downscale lowers the schema of buckets by k (k >= 0), losslessly: bucket
// i at schema s lies inside bucket ((i-1)>>k)+1 at schema s-k, since that
// bucket's bounds are every 2^k-th bound of the finer schema. It reuses
// the slice.
func downscale(bs []bucket, k int) []bucket {
	if k <= 0 {
		return bs
	}
	out := bs[:0]
	for _, b := range bs {
		i := (b.index-1)>>k + 1
		if n := len(out); n > 0 && out[n-1].index == i {
			out[n-1].count += b.count
			continue
		}
		out = append(out, bucket{index: i, count: b.count})
	}
	return out
}

// upperBound is the upper bound of bucket i at schema s: 2^(i/2^s), exact
// for powers of two (math.Ldexp) and within an ulp of 2^(i/2^s) otherwise.
func upperBound(i, schema int) float64 {
	if schema <= 0 {
		return math.Ldexp(1, i<<-schema)
	}
	n := 1 << schema
	q, r := i/n, i%n
	if r < 0 {
		q, r = q-1, r+n
	}
	return math.Ldexp(math.Exp2(float64(r)/float64(n)), q)
}

// bucketOf returns the index of the bucket at schema s whose range
// (upperBound(i-1), upperBound(i)] holds b > 0, and whether b is its upper
// bound exactly.
func bucketOf(b float64, schema int) (i int, edge bool) {
	i = int(math.Ceil(math.Log2(b) * math.Ldexp(1, schema)))
	// Log2 may be off by an ulp either way: settle on the bounds themselves.
	for upperBound(i-1, schema) >= b {
		i--
	}
	for upperBound(i, schema) < b {
		i++
	}
	return i, upperBound(i, schema) == b
}

// classicCounts fills cum[j] with the number of values at or below
// bounds[j] (ascending, in seconds), from the buckets it walks at schema s, the
// zero count and the exact maximum maxSeconds. The count is exact when a
// bound is a bucket's upper bound, at or above the maximum, or below the
// smallest non-empty bucket; otherwise the bucket holding the bound is left
// out (the values it holds lie within one bucket's width below or above the
// bound), so a classic bucket is then a lower bound, never counting a value
// above its le as below it.
func classicCounts(cum []uint64, bounds []float64, it buckets, schema int, zero, count uint64, maxSeconds float64) {
	below := zero // the values in the buckets counted so far, with the zero count
	next, more := it.next()
	for j, b := range bounds {
		switch {
		case count == 0:
			cum[j] = 0
			continue
		case b >= maxSeconds:
			cum[j] = count
			continue
		case b < 0:
			cum[j] = 0
			continue
		case b == 0:
			cum[j] = zero
			continue
		}
		i, edge := bucketOf(b, schema)
		if edge {
			i++ // bucket i lies wholly at or below b
		}
		for more && next.index < i {
			below += next.count
			next, more = it.next()
		}
		cum[j] = below
	}
}
