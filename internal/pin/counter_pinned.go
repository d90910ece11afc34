//go:build gc && !race && !nettune_atomic && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package pin

// Pinned reports whether counters, and latency's Record, write per P with
// plain stores under [Pin].
const Pinned = true

// Inc adds one to the count and returns the new count of the shard it
// added to (that of the calling goroutine's P), a number that grows by one
// from one call to the next on the same P.
func (c *Counter) Inc() uint64 {
	p := Pin()
	if uint(p) < uint(len(c.shards)) {
		s := &c.shards[p]
		n := s.n + 1
		s.n = n
		Unpin()
		return n
	}
	Unpin()
	return c.extra.Add(1)
}
