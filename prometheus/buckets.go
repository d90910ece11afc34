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

// nativeBuckets lists the non-empty buckets of nh with their absolute counts.
// NativeHistogram places the values above latency.MaxValue in the bucket of
// the maximum, so the counts add up to Count minus ZeroCount.
func nativeBuckets(nh *latency.NativeHistogram) []bucket {
	out := make([]bucket, 0, len(nh.PositiveDeltas))
	var i int
	var count int64
	k := 0
	for j, sp := range nh.PositiveSpans {
		if j == 0 {
			i = int(sp.Offset)
		} else {
			i += int(sp.Offset)
		}
		for range sp.Length {
			count += nh.PositiveDeltas[k]
			k++
			if count != 0 {
				out = append(out, bucket{index: i, count: uint64(count)})
			}
			i++
		}
	}
	return out
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
// bounds[j] (ascending, in seconds), from the buckets bs at schema s, the
// zero count and the exact maximum maxSeconds. The count is exact when a
// bound is a bucket's upper bound, at or above the maximum, or below the
// smallest non-empty bucket; otherwise the bucket holding the bound is left
// out (the values it holds lie within one bucket's width below or above the
// bound), so a classic bucket is then a lower bound, never counting a value
// above its le as below it.
func classicCounts(cum []uint64, bounds []float64, bs []bucket, schema int, zero, count uint64, maxSeconds float64) {
	k := 0        // the next bucket not yet counted
	below := zero // the values in buckets before k, with the zero count
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
		for k < len(bs) && bs[k].index < i {
			below += bs[k].count
			k++
		}
		cum[j] = below
	}
}
