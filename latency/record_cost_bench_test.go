//go:build gc && !race && !nettune_atomic && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package latency

import (
	"math/rand/v2"
	"testing"

	"github.com/nettune/nettune/internal/pin"
)

// BenchmarkRecordCost takes the pinned Record apart, on the value ring of
// benchmarks/latency (latency-like values, 4096 of them, cycled). Every
// mode makes one call that is not inlined per value, as Record does, and
// each adds one piece of what Record does, so that the differences
// between modes, measured in one run, account for its cost:
//
//   - bucket: the octave and bucket alone (octaveOf);
//   - counter: plus the octave's counters (two loads from the shard's
//     table) and a plain counter increment, without pinning: what a
//     histogram that is not safe for concurrent use does;
//   - counter+stats: plus the exact 128-bit sum, minimum and maximum;
//   - pin: pin.Pin and pin.Unpin around a plain increment of a per-P word,
//     alone: the price of being safe for any number of goroutines without
//     a locked instruction;
//   - record: RecordValue itself (counter+stats, pinned, in the shard of
//     the P, with the wrap check);
//   - stores=3 and stores=9: that many plain stores and nothing else,
//     as many as an unsynchronised HdrHistogram RecordValue and record
//     make per value (see record_pinned.go): on a CPU that retires one
//     store per cycle these bound the other modes from below.
//
// counter and counter+stats are not safe ways to record: they are here
// only to be measured against record.
func BenchmarkRecordCost(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	vs := latencyLike(rng, 1<<12)
	for i := range vs {
		vs[i] = max(vs[i], 1)
	}
	const mask = 1<<12 - 1
	h := mustNew(b)
	for _, v := range vs { // allocate the P's shard and the octaves
		h.RecordValue(v)
	}
	sh := newShard() // the same octaves, for the unpinned modes
	for _, v := range vs {
		k, _ := h.octaveOf(v)
		sh.chunkAtomic(int(k), h.scale)
	}
	b.Run("mode=bucket", func(b *testing.B) {
		i := 0
		for b.Loop() {
			costBucket(h, vs[i&mask])
			i++
		}
	})
	b.Run("mode=counter", func(b *testing.B) {
		i := 0
		for b.Loop() {
			costCounter(h, sh, vs[i&mask])
			i++
		}
	})
	b.Run("mode=counter+stats", func(b *testing.B) {
		i := 0
		for b.Loop() {
			costCounterStats(h, sh, vs[i&mask])
			i++
		}
	})
	b.Run("mode=pin", func(b *testing.B) {
		perP := make([]uint64, 8*len(h.pinned)) // a cache line per P
		for b.Loop() {
			costPin(perP)
		}
	})
	b.Run("mode=record", func(b *testing.B) {
		i := 0
		for b.Loop() {
			h.RecordValue(vs[i&mask])
			i++
		}
	})
	var words [9 * 8]uint64 // one cache line per word
	b.Run("mode=stores=3", func(b *testing.B) {
		i := 0
		for b.Loop() {
			costStores3(&words, vs[i&mask])
			i++
		}
	})
	b.Run("mode=stores=9", func(b *testing.B) {
		i := 0
		for b.Loop() {
			costStores9(&words, vs[i&mask])
			i++
		}
	})
}

//go:noinline
func costStores3(w *[9 * 8]uint64, v int64) {
	w[0], w[8], w[16] = uint64(v), uint64(v), uint64(v)
}

//go:noinline
func costStores9(w *[9 * 8]uint64, v int64) {
	w[0], w[8], w[16] = uint64(v), uint64(v), uint64(v)
	w[24], w[32], w[40] = uint64(v), uint64(v), uint64(v)
	w[48], w[56], w[64] = uint64(v), uint64(v), uint64(v)
}

//go:noinline
func costBucket(h *Histogram, v int64) (uint, int) { return h.octaveOf(v) }

//go:noinline
func costCounter(h *Histogram, sh *shard, v int64) {
	k, j := h.octaveOf(v)
	if c := sh.chunk(k); c != nil {
		*counter(c, j)++
	}
}

//go:noinline
func costCounterStats(h *Histogram, sh *shard, v int64) {
	k, j := h.octaveOf(v)
	if c := sh.chunk(k); c != nil {
		lo := sh.sumLo + uint64(v)
		if lo < uint64(v) {
			sh.sumHi++
		}
		sh.sumLo = lo
		if v < sh.min {
			sh.min = v
		}
		if v > sh.max {
			sh.max = v
		}
		*counter(c, j)++
	}
}

// costPin is the pin alone, around the smallest write to the P's word.
//
//go:noinline
func costPin(perP []uint64) {
	p := pin.Pin()
	if i := uint(p) * 8; i < uint(len(perP)) {
		perP[i]++
	}
	pin.Unpin()
}
