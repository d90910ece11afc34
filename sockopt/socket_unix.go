//go:build darwin || freebsd || linux

package sockopt

import (
	"os"

	"golang.org/x/sys/unix"
)

// socket is a file descriptor being configured, inside RawConn.Control.
type socket struct {
	fd      uintptr
	network string // as passed to Control, or "" when unknown
	proto   int    // SO_PROTOCOL when already read, else 0
}

func (s socket) sysErr(o Option, op string, err error) error {
	e := &Error{Option: o, Op: op, Err: os.NewSyscallError(op, err)}
	if errno, ok := err.(unix.Errno); ok {
		e.Hint = s.hint(o, errno)
	}
	return e
}

func (s socket) setInt(o Option, level, opt, v int) error {
	if err := unix.SetsockoptInt(int(s.fd), level, opt, v); err != nil {
		return s.sysErr(o, "setsockopt", err)
	}
	return nil
}

func (s socket) getInt(o Option, level, opt int) (int, error) {
	v, err := unix.GetsockoptInt(int(s.fd), level, opt)
	if err != nil {
		return 0, s.sysErr(o, "getsockopt", err)
	}
	return v, nil
}
