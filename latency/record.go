package latency

import (
	"math"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// shard is one independent set of counters. Two kinds of writer use
// shards, never both the same one:
//
//   - the pinned path (record_pinned.go): one shard per P, written with
//     plain stores by the only goroutine that can run on that P while it
//     is pinned, so a Record costs no locked instruction;
//   - the atomic path (this file): shards picked from the writer's stack
//     address and written with atomic adds and CAS, by any number of
//     writers at once. The Recorder, RecordN, RecordCorrected, Merge and
//     builds without the pinned path (race, gccgo, nettune_atomic) use it.
//
// Readers load every field with atomic loads whichever path wrote it.
//
// Each shard is its own allocation whose size is a multiple of 64 bytes,
// so two shards never share a cache line.
type shard struct {
	// sumLo and sumHi hold the exact sum of the values, 128 bits mod 2^128.
	sumLo    uint64
	sumHi    uint64
	min      int64  // math.MaxInt64 while empty
	max      int64  // -1 while empty
	zero     uint64 // values equal to 0
	overflow uint64 // values above MaxValue
	invalid  uint64 // negative values: counted, never in any statistic
	// wraps[i] counts how many times bucket i's 32-bit counter wrapped:
	// the bucket holds wraps[i]<<32 + counter. Allocated on the first wrap.
	wraps atomic.Pointer[[]uint64]
	// groups[k/8][k%8] points at the first of the 2^scale 32-bit counters
	// of octave k (buckets k<<scale to k<<scale + 2^scale - 1). Octaves
	// and their groups of 8 pointers are allocated on first use: two
	// levels keep a shard at 128 bytes instead of 512 for a flat table of
	// 54 octaves, of which a latency histogram uses some 14 to 20.
	groups [numGroups]atomic.Pointer[chunkGroup]
}

// numGroups is a power of two (56 octave slots would do) so that indexing
// masks instead of dividing.
const numGroups = 8

type chunkGroup [8]atomic.Pointer[uint32]

// chunk returns octave k's counters, or nil before its first value.
func (sh *shard) chunk(k uint) *uint32 {
	if g := sh.groups[k/8%numGroups].Load(); g != nil {
		return g[k%8].Load()
	}
	return nil
}

func newShard() *shard { return &shard{min: math.MaxInt64, max: -1} }

// counter returns the address of bucket j's counter in chunk c.
func counter(c *uint32, j int) *uint32 {
	return (*uint32)(unsafe.Add(unsafe.Pointer(c), uintptr(j)*4))
}

// newChunk allocates the counters of one octave at scale s.
func newChunk(scale int) *uint32 { return &make([]uint32, 1<<scale)[0] }

// bucketOf returns the slot of v (1 <= v <= MaxValue): its bucket plus
// the table's offset (see layout.go), its place among the counters.
func (h *Histogram) bucketOf(v int64) int {
	k, j := h.octaveOf(v)
	return int(k)<<h.scale + j
}

// octaveOf returns the chunk k and position j of v's slot (1 <= v <=
// MaxValue): slot k<<scale + j. It is bucketOf for the hot path, with
// integer work only (the bit length, two shifts, one table load and one
// compare), which the bounds of the table make safe without bounds
// checks: m < 2^64, so the cell index is below 2^(scale+2), the table's
// length; k is at most 53, below numChunks.
func (h *Histogram) octaveOf(v int64) (k uint, j int) {
	s := uint(h.scale) & 15
	l := uint(bits.Len64(uint64(v)))
	m := uint64(v) << ((64 - l) & 63) // the mantissa, top bit set
	x := (*cellEntry)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(h.table.entry)), (m>>((62-s)&63))*uint64(unsafe.Sizeof(cellEntry{}))))
	// m and x.bound are both in [2^63, 2^64): bound-m has its top bit set
	// exactly when m > bound, which adds one, without a branch.
	c := int(x.c) + int((x.bound-m)>>63)
	return l - 1 + uint(c>>s), c & (1<<s - 1)
}

// wrapsOf returns the shard's wrap counters, allocating them (atomically,
// so that any writer may call it) on first use.
func (sh *shard) wrapsOf(scale int) []uint64 {
	if w := sh.wraps.Load(); w != nil {
		return *w
	}
	w := make([]uint64, numChunks<<scale)
	sh.wraps.CompareAndSwap(nil, &w)
	return *sh.wraps.Load()
}

// chunkAtomic returns octave k's counters, allocating them if needed.
func (sh *shard) chunkAtomic(k, scale int) *uint32 {
	if c := sh.chunk(uint(k)); c != nil {
		return c
	}
	p := &sh.groups[k/8%numGroups]
	if p.Load() == nil {
		p.CompareAndSwap(nil, new(chunkGroup))
	}
	g := p.Load()
	g[k%8].CompareAndSwap(nil, newChunk(scale))
	return g[k%8].Load()
}

func casMin(p *int64, v int64) {
	for old := atomic.LoadInt64(p); v < old; old = atomic.LoadInt64(p) {
		if atomic.CompareAndSwapInt64(p, old, v) {
			return
		}
	}
}

func casMax(p *int64, v int64) {
	for old := atomic.LoadInt64(p); v > old; old = atomic.LoadInt64(p) {
		if atomic.CompareAndSwapInt64(p, old, v) {
			return
		}
	}
}

// addSum adds the 128-bit (two's complement) (hi, lo) to the shard's sum
// atomically.
func (sh *shard) addSum(hi, lo uint64) {
	if got := atomic.AddUint64(&sh.sumLo, lo); got < lo {
		hi++
	}
	if hi != 0 {
		atomic.AddUint64(&sh.sumHi, hi)
	}
}

// recordAtomic records v on the atomic path. The sum, minimum and maximum
// land before the bucket count: a reader (the Recorder waiting for its
// writers) that sees the count sees them too.
func (h *Histogram) recordAtomic(sh *shard, v int64) {
	if v <= 0 || v > MaxValue {
		h.recordNAtomic(sh, v, 1)
		return
	}
	if v < atomic.LoadInt64(&sh.min) {
		casMin(&sh.min, v)
	}
	if v > atomic.LoadInt64(&sh.max) {
		casMax(&sh.max, v)
	}
	sh.addSum(0, uint64(v))
	k, j := h.octaveOf(v)
	c := sh.chunk(k)
	if c == nil {
		c = sh.chunkAtomic(int(k), h.scale)
	}
	if atomic.AddUint32(counter(c, j), 1) == 0 {
		atomic.AddUint64(&sh.wrapsOf(h.scale)[int(k)<<h.scale+j], 1)
	}
}

// recordNAtomic records v n times on the atomic path.
func (h *Histogram) recordNAtomic(sh *shard, v int64, n uint64) {
	if v < 0 {
		atomic.AddUint64(&sh.invalid, n)
		return
	}
	if v < atomic.LoadInt64(&sh.min) {
		casMin(&sh.min, v)
	}
	if v > atomic.LoadInt64(&sh.max) {
		casMax(&sh.max, v)
	}
	switch {
	case v == 0:
		atomic.AddUint64(&sh.zero, n)
	case v > MaxValue:
		sh.addSum(bits.Mul64(uint64(v), n))
		atomic.AddUint64(&sh.overflow, n)
	default:
		sh.addSum(bits.Mul64(uint64(v), n))
		h.addCount(sh, h.bucketOf(v), n)
	}
}

// addCount adds n to bucket i of sh atomically: the low 32 bits to the
// counter, the rest (and the carry out of it) to the wrap counter.
func (h *Histogram) addCount(sh *shard, i int, n uint64) {
	c := sh.chunkAtomic(i>>h.scale, h.scale)
	lo := uint32(n)
	hi := n >> 32
	if lo != 0 && atomic.AddUint32(counter(c, i&(1<<h.scale-1)), lo) < lo {
		hi++ // the counter wrapped
	}
	if hi != 0 {
		atomic.AddUint64(&sh.wrapsOf(h.scale)[i], hi)
	}
}

// recordArithmetic records first, first-step, …, n values in all (all >= 1),
// on the atomic path.
func (h *Histogram) recordArithmetic(sh *shard, first, step int64, n uint64) {
	last := first - int64(n-1)*step
	if last < atomic.LoadInt64(&sh.min) {
		casMin(&sh.min, last)
	}
	if first > atomic.LoadInt64(&sh.max) {
		casMax(&sh.max, first)
	}
	sh.addSum(runSum(first, step, n))
	// Walk buckets from the top value down; the values of a bucket form a
	// run of the sequence, recorded with one count.
	x, left := first, n
	if x > MaxValue {
		k := min(uint64((x-MaxValue-1)/step)+1, left) // how many are above MaxValue
		atomic.AddUint64(&sh.overflow, k)
		left -= k
		x -= int64(k) * step
	}
	for left > 0 {
		i := h.bucketOf(x)
		lo, _ := intRange(h.scale, i-h.table.offset)
		k := min(uint64((x-lo)/step)+1, left) // members of the sequence in [lo, x]
		h.addCount(sh, i, k)
		left -= k
		x -= int64(k) * step
	}
}

// runSum is the 128-bit sum of x - j·step for j in [0, k): k·(x+last)/2,
// where k·(x+last) is always even.
func runSum(x, step int64, k uint64) (hi, lo uint64) {
	last := x - int64(k-1)*step
	hi, lo = bits.Mul64(k, uint64(x)+uint64(last))
	return hi >> 1, lo>>1 | hi<<63
}

// bucketCount reads bucket i's count from chunk c (which holds it at j).
// It reads the wrap counter first: a concurrent wrap can make it miss 2^32
// values for a moment, never count them twice.
func bucketCount(wraps *[]uint64, c *uint32, i, j int) uint64 {
	var n uint64
	if wraps != nil {
		n = atomic.LoadUint64(&(*wraps)[i]) << 32
	}
	return n + uint64(atomic.LoadUint32(counter(c, j)))
}

// reset zeroes a shard no writer is using, keeping its allocations.
func (sh *shard) reset(scale int) {
	atomic.StoreUint64(&sh.sumLo, 0)
	atomic.StoreUint64(&sh.sumHi, 0)
	atomic.StoreInt64(&sh.min, math.MaxInt64)
	atomic.StoreInt64(&sh.max, -1)
	atomic.StoreUint64(&sh.zero, 0)
	atomic.StoreUint64(&sh.overflow, 0)
	atomic.StoreUint64(&sh.invalid, 0)
	if w := sh.wraps.Load(); w != nil {
		for i := range *w {
			atomic.StoreUint64(&(*w)[i], 0)
		}
	}
	for k := range uint(numChunks) {
		if c := sh.chunk(k); c != nil {
			for j := range 1 << scale {
				atomic.StoreUint32(counter(c, j), 0)
			}
		}
	}
}
