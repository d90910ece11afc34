//go:build gc && !race && !nettune_atomic && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package pin

import (
	_ "unsafe" // for go:linkname
)

// Pin pins the calling goroutine to its P and returns the P's number (below
// GOMAXPROCS); [Unpin] undoes it. In between the goroutine cannot be
// preempted and no other goroutine runs on that P, so data kept per P has
// exactly one writer and plain read-modify-writes lose nothing. Keep the
// pinned section short: no allocation, no blocking, no call that could
// yield. Readers load the words atomically, which on the 64-bit platforms
// of this build are single aligned stores on the writer's side: never torn,
// at worst a little stale. Pin exists only where [Pinned] is true.
//
// sync.Pool pins its P the same way, through runtime-provided twins of
// these two functions. runtime.procPin and runtime.procUnpin themselves are
// kept for packages outside the standard library that reach them with a
// linkname directive: runtime/proc.go marks both with a bare //go:linkname
// directive (which lets the linker accept the pull) and says "Do not remove
// or change the type signature. See go.dev/issue/67401". Should that ever
// change, build with -tags nettune_atomic (or -race) to get the atomic
// paths of this package and of latency.
//
//go:linkname Pin runtime.procPin
func Pin() int

// Unpin undoes [Pin].
//
//go:linkname Unpin runtime.procUnpin
func Unpin()

// Pinned reports whether this build has [Pin]: counters, and latency's
// Record, write per P with plain stores.
const Pinned = true
