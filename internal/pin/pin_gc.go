//go:build gc && !nettune_atomic

package pin

import (
	_ "unsafe" // for go:linkname
)

// Pin pins the calling goroutine to its P and returns the P's number (below
// GOMAXPROCS); [Unpin] undoes it. In between the goroutine cannot be
// preempted and no other goroutine runs on that P, so data kept per P has
// exactly one writer and plain read-modify-writes lose nothing. Keep the
// pinned section short: no allocation, no blocking, no call that could
// yield. Readers load the words atomically. Where [Pinned] is true (64-bit
// platforms, no -race) the writer's plain stores of aligned words are
// never torn, at worst a little stale; elsewhere plain writes are not
// used, and Pin serves only [Hint].
//
// sync.Pool pins its P the same way, through runtime-provided twins of
// these two functions. runtime.procPin and runtime.procUnpin themselves are
// kept for packages outside the standard library that reach them with a
// linkname directive: runtime/proc.go marks both with a bare //go:linkname
// directive (which lets the linker accept the pull) and says "Do not remove
// or change the type signature. See go.dev/issue/67401". Should that ever
// change, build with -tags nettune_atomic: nothing then links to them
// (Hint returns 0, and this package's and latency's atomic paths are used).
//
//go:linkname Pin runtime.procPin
func Pin() int

// Unpin undoes [Pin].
//
//go:linkname Unpin runtime.procUnpin
func Unpin()

// Hint returns the number of the P the calling goroutine runs on (below
// GOMAXPROCS at the time): a hint for picking a per-P cache line, since
// the goroutine may move to another P as soon as Hint returns. Use it
// only with atomic operations on what it picks.
func Hint() int {
	id := Pin()
	Unpin()
	return id
}
