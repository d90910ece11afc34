// Package pin holds counters kept per P (the scheduler's processors, at
// most GOMAXPROCS of them), which a goroutine increments without a locked
// instruction by pinning itself to its P for the length of the increment.
//
// An atomic add costs about 6 ns on the 2-core development machine even
// uncontended (any LOCK-prefixed instruction does), and more when two cores
// share the counter's cache line; pinning, a plain increment of the P's own
// counter and unpinning cost about 2 ns. The technique and why it is sound
// are described in pin_pinned.go; builds where it is not available
// (another compiler, -race, the nettune_atomic tag, 32-bit platforms) use
// atomic adds into sharded counters instead, with the same results.
package pin

import (
	"math/bits"
	"runtime"
	"sync/atomic"
)

// Counter counts events from any number of goroutines, exactly: [Counter.Load]
// returns the number of calls of [Counter.Inc] that returned before it was
// called, plus any number of those running concurrently. Create it with
// [NewCounter]; a Counter is safe for concurrent use.
type Counter struct {
	shards []shard       // a power of two, at least one per P at NewCounter
	extra  atomic.Uint64 // pinned path: increments from Ps beyond len(shards) (GOMAXPROCS raised since)
}

// shard is one P's count, alone on its cache line so that Ps never write
// the same line.
type shard struct {
	n uint64 // written by its P only (pinned), read atomically
	_ [56]byte
}

// NewCounter returns a counter with a shard for each P of the moment
// (GOMAXPROCS), rounded up to a power of two and at least minShards, so
// that the atomic path spreads its adds too. A P added later (GOMAXPROCS
// raised) counts into a shared atomic word: still exact, only slower.
func NewCounter() *Counter {
	n := max(runtime.GOMAXPROCS(0), minShards)
	return &Counter{shards: make([]shard, 1<<bits.Len(uint(n-1)))}
}

// minShards is the fewest shards a Counter has.
const minShards = 4

// Load returns the count: the sum of the shards, each read atomically.
func (c *Counter) Load() uint64 {
	n := c.extra.Load()
	for i := range c.shards {
		n += atomic.LoadUint64(&c.shards[i].n)
	}
	return n
}
