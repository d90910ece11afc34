//go:build !gc || race || nettune_atomic || !(amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package pin

import (
	"sync/atomic"
	"unsafe"
)

// Pinned reports whether this build has Pin: counters, and latency's
// Record, write per P with plain stores.
const Pinned = false

// Inc adds one to the count and returns the new count of the shard it
// added to. Without pinning, the shard is picked from the address of the
// calling goroutine's stack, which differs between goroutines and costs
// nothing to read; it is only a hint (a stack that moves does no harm), and
// the add is atomic.
func (c *Counter) Inc() uint64 {
	var here byte
	// Stacks are at least 2 KiB: drop the offset inside one, then hash.
	h := uint64(uintptr(unsafe.Pointer(&here))>>11) * 0x9e3779b97f4a7c15
	return atomic.AddUint64(&c.shards[h>>32&uint64(len(c.shards)-1)].n, 1)
}
