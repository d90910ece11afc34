//go:build !gc || race || nettune_atomic || !(amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package latency

// Without the pinned path (see record_pinned.go): under the race detector,
// with other compilers, or when built with -tags nettune_atomic, every
// value takes the atomic path.
const pinnedPath = false

func (h *Histogram) record(v int64) { h.recordShared(v) }
