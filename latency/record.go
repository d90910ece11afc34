package latency

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// chunk holds one octave of buckets (2^scale of them), allocated on first
// use. Each bucket is one word: the count in the top 24 bits and, in the
// low 40, the sum of the recorded values' offsets from the bucket's base
// (see bucketBase), so one atomic add records both the count and the exact
// sum. Before a field can overflow, a writer moves the word into extra.
type chunk struct {
	words []atomic.Uint64
	extra atomic.Pointer[[]extraCounts] // allocated on the first flush
	mu    sync.Mutex                    // serializes allocating extra
}

// extraCounts holds what flushes and slow-path records add to a bucket:
// a count and a 128-bit (two's complement) sum of offsets from the base.
type extraCounts struct {
	n, rLo, rHi atomic.Uint64
}

const (
	countShift = 40
	offsetMask = 1<<countShift - 1
	// An add may carry an offset below maxFastOffset; larger ones (values
	// over about 1.5 s at scale 6) take the slow path. A word is flushed
	// before a field passes half its range, so it can overflow only if
	// some 2^15 writers are all suspended between their check and add.
	maxFastOffset = 1 << 24
	flushCount    = 1 << 23
	flushOffset   = 1 << 39
)

func (c *chunk) extras() []extraCounts {
	if e := c.extra.Load(); e != nil {
		return *e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.extra.Load(); e != nil {
		return *e
	}
	e := make([]extraCounts, len(c.words))
	c.extra.Store(&e)
	return e
}

// flush moves bucket j's word into its extra counters. Writers flush
// before their own add, while a Recorder still waits for them.
func (c *chunk) flush(j int) {
	w := c.words[j].Swap(0)
	c.extras()[j].add(w>>countShift, 0, w&offsetMask)
}

// add adds n values whose offsets sum to the 128-bit (rHi, rLo). The count
// comes last: a reader that sees it sees the offsets too.
func (e *extraCounts) add(n, rHi, rLo uint64) {
	if got := e.rLo.Add(rLo); got < rLo {
		rHi++
	}
	if rHi != 0 {
		e.rHi.Add(rHi)
	}
	e.n.Add(n)
}

// bucketOf returns the bucket of v (1 <= v <= MaxValue) and its base.
func (h *Histogram) bucketOf(v int64) (i int, base int64) {
	return bucketAndBase(h.table, uint(h.scale), v)
}

// bucketBase is floor(2^((i-1)/2^s)) as the mantissa table computes it: an
// integer at or below every value of bucket i (which holds
// (2^((i-1)/2^s), 2^(i/2^s)]), and a function of the bucket alone, so that
// count×base plus the offsets gives back the exact sum. A test checks it
// never exceeds a bucket's smallest value; offsets are summed in two's
// complement anyway, so a negative one would still add up.
func bucketBase(t *scaleTable, s, i int) int64 {
	j := i - 1
	o := j >> s
	return int64((1<<mantBits | t.bound[j&(1<<s-1)]) >> uint(mantBits-o))
}

// recordIn is the hot path: one atomic add in the common case. The
// bucket's count lands last: a reader that sees it also sees the value's
// minimum, maximum and sum.
func (h *Histogram) recordIn(sh *shard, v int64) {
	if v <= 0 || v > MaxValue {
		h.recordNIn(sh, v, 1)
		return
	}
	if v < sh.min.Load() {
		casMin(&sh.min, v)
	}
	if v > sh.max.Load() {
		casMax(&sh.max, v)
	}
	i, base := h.bucketOf(v)
	r := uint64(v - base)
	c := sh.chunks[i>>h.scale].Load()
	if c == nil {
		c = sh.grow(i>>h.scale, h.scale)
	}
	j := i & (1<<h.scale - 1)
	if r >= maxFastOffset {
		c.extras()[j].add(1, -(r >> 63), r) // sign-extend a negative offset
		return
	}
	if w := c.words[j].Load(); w >= flushCount<<countShift || w&offsetMask >= flushOffset {
		c.flush(j)
	}
	c.words[j].Add(1<<countShift | r)
}

func (h *Histogram) recordNIn(sh *shard, v int64, n uint64) {
	if v < 0 {
		sh.invalid.Add(n)
		return
	}
	if v < sh.min.Load() {
		casMin(&sh.min, v)
	}
	if v > sh.max.Load() {
		casMax(&sh.max, v)
	}
	switch {
	case v == 0:
		sh.zero.Add(n)
	case v > MaxValue:
		hi, lo := bits.Mul64(uint64(v), n)
		sh.addSum(hi, lo)
		sh.overflow.Add(n)
	default:
		i, base := h.bucketOf(v)
		hi, lo := mulSigned(v-base, n)
		h.chunk(sh, i).extras()[i&(1<<h.scale-1)].add(n, hi, lo)
	}
}

// mulSigned is the 128-bit two's complement product of r and n.
func mulSigned(r int64, n uint64) (hi, lo uint64) {
	hi, lo = bits.Mul64(uint64(r), n)
	if r < 0 {
		hi -= n // uint64(r) = r + 2^64: take n·2^64 back out
	}
	return hi, lo
}

// addSum adds the 128-bit (two's complement) (hi, lo) to the shard's sum.
func (sh *shard) addSum(hi, lo uint64) {
	if got := sh.sumLo.Add(lo); got < lo {
		hi++
	}
	if hi != 0 {
		sh.sumHi.Add(hi)
	}
}

func (h *Histogram) chunk(sh *shard, i int) *chunk {
	c := sh.chunks[i>>h.scale].Load()
	if c == nil {
		c = sh.grow(i>>h.scale, h.scale)
	}
	return c
}

func (sh *shard) grow(k, scale int) *chunk {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c := sh.chunks[k].Load(); c != nil {
		return c
	}
	c := &chunk{words: make([]atomic.Uint64, 1<<scale)}
	sh.chunks[k].Store(c)
	return c
}

// recordArithmetic records first, first-step, …, n values in all (all >= 1).
func (h *Histogram) recordArithmetic(sh *shard, first, step int64, n uint64) {
	last := first - int64(n-1)*step
	if last < sh.min.Load() {
		casMin(&sh.min, last)
	}
	if first > sh.max.Load() {
		casMax(&sh.max, first)
	}
	// Walk buckets from the top value down; the values of a bucket form a
	// run of the sequence, recorded with one count and one offset sum.
	x, left := first, n
	if x > MaxValue {
		k := min(uint64((x-MaxValue-1)/step)+1, left) // how many are above MaxValue
		sh.addSum(runSum(x, step, k, 0))
		sh.overflow.Add(k)
		left -= k
		x -= int64(k) * step
	}
	for left > 0 {
		i, base := h.bucketOf(x)
		lo, _ := intRange(h.scale, i)
		k := min(uint64((x-lo)/step)+1, left) // members of the sequence in [lo, x]
		rHi, rLo := runSum(x, step, k, base)
		h.chunk(sh, i).extras()[i&(1<<h.scale-1)].add(k, rHi, rLo)
		left -= k
		x -= int64(k) * step
	}
}

// runSum is the 128-bit two's complement sum of (x - j·step - base) for j
// in [0, k): k·(x+last)/2 - k·base, where k·(x+last) is always even.
func runSum(x, step int64, k uint64, base int64) (hi, lo uint64) {
	last := x - int64(k-1)*step
	hi, lo = bits.Mul64(k, uint64(x)+uint64(last))
	lo = lo>>1 | hi<<63
	hi >>= 1
	bh, bl := bits.Mul64(k, uint64(base))
	var borrow uint64
	lo, borrow = bits.Sub64(lo, bl, 0)
	hi, _ = bits.Sub64(hi, bh, borrow)
	return hi, lo
}

// read returns bucket j's count and 128-bit offset sum. It reads the extra
// counters before the word, so a concurrent flush can make it miss values
// for a moment but never count one twice.
func (c *chunk) read(j int) (n, rHi, rLo uint64) {
	if e := c.extra.Load(); e != nil {
		x := &(*e)[j]
		n, rHi, rLo = x.n.Load(), x.rHi.Load(), x.rLo.Load()
	}
	w := c.words[j].Load()
	var carry uint64
	rLo, carry = bits.Add64(rLo, w&offsetMask, 0)
	return n + w>>countShift, rHi + carry, rLo
}

// reset zeroes a chunk no writer is using.
func (c *chunk) reset() {
	for j := range c.words {
		c.words[j].Store(0)
	}
	if e := c.extra.Load(); e != nil {
		for j := range *e {
			x := &(*e)[j]
			x.n.Store(0)
			x.rLo.Store(0)
			x.rHi.Store(0)
		}
	}
}
