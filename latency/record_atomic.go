//go:build !gc || race || nettune_atomic

package latency

// Without the pinned path (see record_pinned.go): under the race detector,
// with other compilers, or when built with -tags nettune_atomic, every
// value takes the atomic path.
const pinnedPath = false

func (h *Histogram) record(v int64) { h.recordShared(v) }
