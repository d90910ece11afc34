//go:build !race

package dialer_test

// raceEnabled is whether the tests run under the race detector, which
// changes allocation counts.
const raceEnabled = false
