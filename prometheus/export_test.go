package nettuneprom

import "github.com/nettune/nettune/latency"

// NativeCounts returns the native buckets of s, downscaled by k, by index.
func NativeCounts(s *latency.Snapshot, k int) map[int]uint64 {
	nh := s.NativeHistogram()
	m := map[int]uint64{}
	for _, b := range downscale(nativeBuckets(&nh), k) {
		m[b.index] += b.count
	}
	return m
}

// Reencode decodes s's native buckets, encodes them again and decodes
// that.
func Reencode(s *latency.Snapshot) (want, got []bucket) {
	nh := s.NativeHistogram()
	want = nativeBuckets(&nh)
	nh.PositiveSpans, nh.PositiveDeltas = encode(want)
	return want, nativeBuckets(&nh)
}
