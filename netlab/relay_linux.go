package netlab

import (
	"time"

	"golang.org/x/sys/unix"
)

// preciseSleep blocks the calling thread for d in nanosleep, which the
// kernel ends within tens of microseconds, unlike a Go timer in an idle
// process.
func preciseSleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
