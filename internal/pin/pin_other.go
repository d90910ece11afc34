//go:build !gc || nettune_atomic

package pin

// Hint returns 0: this build does not tell the Ps apart (another compiler,
// or the nettune_atomic tag, which links to nothing in the runtime). See
// the gc build's Hint.
func Hint() int { return 0 }
