//go:build !poolfault

package pool

// Deliberate faults, which a build with the poolfault tag turns on (see
// fault_on.go) to show that the tests catch them. Constants here, so the
// normal build pays nothing for them.
const (
	faultNoRecheck = false // release does not look again after its push
	faultNoTag     = false // the idle stack's head keeps one tag (ABA)
	faultYield     = false // widen the races' windows: see yield
	faultNoLocal   = false // no per-P slots in front of the idle stack (not a fault: the stack alone)
)

// yield does nothing in a normal build.
func yield() {}
