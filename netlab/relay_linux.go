package netlab

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fineTimer sleeps precisely without holding a P: a timerfd, whose expiry
// the kernel signals within microseconds, read through Go's poller. (A Go
// timer fires up to a millisecond late in an idle process, since the
// poller sleeps in whole milliseconds; nanosleep is precise but keeps the
// goroutine's P, which with GOMAXPROCS=2 starves the rest of the relay.)
type fineTimer struct {
	f *os.File // nil: timerfd unavailable, sleep with time.Sleep
}

func newFineTimer() *fineTimer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return &fineTimer{}
	}
	return &fineTimer{f: os.NewFile(uintptr(fd), "timerfd")}
}

func (t *fineTimer) sleep(d time.Duration) {
	if t.f == nil || d <= 0 {
		time.Sleep(d)
		return
	}
	rc, err := t.f.SyscallConn()
	if err != nil {
		time.Sleep(d)
		return
	}
	var serr error
	rc.Control(func(fd uintptr) {
		its := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
		serr = unix.TimerfdSettime(int(fd), 0, &its, nil)
	})
	if serr != nil {
		time.Sleep(d)
		return
	}
	var buf [8]byte
	t.f.Read(buf[:]) // the expiry count; an error only if closed
}

func (t *fineTimer) close() {
	if t.f != nil {
		t.f.Close()
	}
}
