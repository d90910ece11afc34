//go:build gc && !race && !nettune_atomic && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package pin

import (
	_ "unsafe" // for go:linkname
)

// Between procPin and procUnpin the goroutine cannot be preempted and no
// other goroutine runs on its P, so the P's shard has exactly one writer
// and a plain read-modify-write cannot lose a count to another writer.
// Readers (Load) load the words atomically, which on these 64-bit
// platforms are single aligned stores on the writer's side: never torn, at
// worst a little stale.
//
// sync.Pool pins its P the same way, through runtime-provided twins of
// these two functions. runtime.procPin and runtime.procUnpin themselves are
// kept for packages outside the standard library that reach them with a
// linkname directive: runtime/proc.go marks both with a bare //go:linkname
// directive (which lets the linker accept the pull) and says "Do not remove
// or change the type signature. See go.dev/issue/67401" (latency's
// record_pinned.go relies on the same promise). Should that ever change,
// build with -tags nettune_atomic (or -race) to get the atomic path.

//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// Pinned reports whether this build counts with plain writes per P.
const Pinned = true

// Inc adds one to the count and returns the new count of the shard it
// added to (that of the calling goroutine's P), a number that grows by one
// from one call to the next on the same P.
func (c *Counter) Inc() uint64 {
	p := procPin()
	if uint(p) < uint(len(c.shards)) {
		s := &c.shards[p]
		n := s.n + 1
		s.n = n
		procUnpin()
		return n
	}
	procUnpin()
	return c.extra.Add(1)
}
