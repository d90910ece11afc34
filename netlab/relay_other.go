//go:build !linux

package netlab

import "time"

// fineTimer sleeps with time.Sleep: netlab runs only on Linux.
type fineTimer struct{}

func newFineTimer() *fineTimer { return &fineTimer{} }

func (*fineTimer) sleep(d time.Duration) { time.Sleep(d) }

func (*fineTimer) close() {}
