//go:build gc && !race && !nettune_atomic && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package latency

import "github.com/nettune/nettune/internal/pin"

// The pinned path. Any LOCK-prefixed instruction (an atomic add, and also
// an atomic store, which is an XCHG on amd64) costs about 5.4 ns here even
// uncontended, so no design with a locked instruction per Record gets
// under 3 ns. Measured on the 2-core development machine: an atomic add
// into a shared array 5.4 ns serial, 6.8 ns from two cores; pin.Pin, a
// plain increment into a per-P array and pin.Unpin 2.2 ns serial and
// 1.1-1.7 ns from two cores.
//
// On that CPU the pinned path is held back by its stores more than by its
// instructions: the CPU retires one store per cycle (each plain store in
// a loop adds 0.25-0.33 ns), and record makes 9 per value where an
// unsynchronised HdrHistogram RecordValue makes 3: the frame pointer push,
// the spills of h and v that the call to pin.Pin forces (Go's ABI saves
// no register across a call), the two return addresses and the two
// updates of the M's lock count that pinning is, the sum and the counter.
// Cutting instructions without cutting stores did not show: a flat per-P
// counter window took 16 of the 95 instructions per value away
// (cachegrind) and changed nothing measurable (p=0.86 in 20 interleaved
// runs). BenchmarkRecordCost takes the path apart.
//
// Between pin.Pin and pin.Unpin the goroutine cannot be preempted and no
// other goroutine runs on its P, so the P's shard has exactly one writer
// and plain read-modify-writes cannot lose a count to another writer.
// Readers (Snapshot) load the words atomically: never torn (this build is
// for 64-bit platforms only, where a plain store of an aligned word is
// one store), at worst a little stale, and possibly out of order with each
// other off amd64, which Snapshot allows for. internal/pin says why
// pinning is sound and what it relies on; without it (-race, the
// nettune_atomic tag, gccgo, 32-bit platforms) Record takes the atomic
// path.

const pinnedPath = true

// record records v into the shard of the current P with plain writes.
// Values that need more than a counter increment, histograms without
// per-P shards (a Recorder's) and a P beyond the shards made at New
// (GOMAXPROCS raised since) take the atomic path, which never shares a
// shard with the pinned one: no count is lost either way.
func (h *Histogram) record(v int64) {
	if v <= 0 || v > MaxValue {
		h.recordShared(v)
		return
	}
	p := pin.Pin()
	if uint(p) < uint(len(h.pinned)) {
		k, j := h.octaveOf(v)
		if sh := h.pinned[p].Load(); sh != nil {
			if c := sh.chunk(k); c != nil {
				// The sum, minimum and maximum are written before the count.
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
				n := counter(c, j)
				if *n++; *n == 0 {
					sh.wrapped(h.scale, int(k)<<h.scale+j)
				}
				pin.Unpin()
				return
			}
		}
	}
	pin.Unpin()
	h.recordSlow(v)
}

// recordSlow records v when its P's shard or octave does not exist yet,
// its P has no shard, or h is a zero Histogram (whose pinned is nil).
//
//go:noinline
func (h *Histogram) recordSlow(v int64) {
	if h.table == nil {
		h.self().record(v)
		return
	}
	p := pin.Pin()
	if uint(p) >= uint(len(h.pinned)) {
		pin.Unpin()
		h.recordShared(v)
		return
	}
	sh := h.pinned[p].Load()
	if sh == nil {
		sh = newShard()
		h.pinned[p].Store(sh)
	}
	k, _ := h.octaveOf(v)
	if sh.chunk(k) == nil {
		sh.setChunkPinned(k, h.scale)
	}
	pin.Unpin()
	h.record(v) // now on the fast path, on whichever P the goroutine is
}

// wrapped books a wrap of bucket i's counter; the caller is pinned.
func (sh *shard) wrapped(scale, i int) {
	w := sh.wraps.Load()
	if w == nil {
		s := make([]uint64, numChunks<<scale)
		w = &s
		sh.wraps.Store(w)
	}
	(*w)[i]++
}

// setChunkPinned allocates octave k's counters; only the writer that owns
// a pinned shard calls it.
func (sh *shard) setChunkPinned(k uint, scale int) {
	g := sh.groups[k/8%numGroups].Load()
	if g == nil {
		g = new(chunkGroup)
		sh.groups[k/8%numGroups].Store(g)
	}
	g[k%8].Store(newChunk(scale))
}
