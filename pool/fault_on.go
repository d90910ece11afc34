//go:build poolfault

package pool

import (
	"math/rand/v2"
	"os"
	"runtime"
)

// A build with the poolfault tag yields at random inside the lock-free
// steps, so that races that need a goroutine to stop at the wrong
// instruction happen often, and breaks the pool on purpose as POOLFAULT
// says ("recheck" or "aba"; "nolocal" or nothing: no break), so that the tests can be seen to
// catch it: POOLFAULT=aba go test -tags poolfault ./pool/. See fault.go.
var (
	faultNoRecheck = os.Getenv("POOLFAULT") == "recheck"
	faultNoTag     = os.Getenv("POOLFAULT") == "aba"
	// POOLFAULT=nolocal breaks nothing: it runs the tests on the stack
	// alone, without the per-P slots in front of it that otherwise take
	// most of the traffic. The ABA fault implies it: only the stack has a
	// tag to lose.
	faultNoLocal = os.Getenv("POOLFAULT") == "nolocal" || faultNoTag
)

const faultYield = true

// yield lets other goroutines run, one time in four.
func yield() {
	if rand.IntN(4) == 0 {
		runtime.Gosched()
	}
}
