package sockopt

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// socket is a file descriptor being configured, inside RawConn.Control.
type socket struct {
	fd      uintptr
	network string // as passed to Control, or "" when unknown
}

func (s socket) setInt(o Option, level, opt, v int) error {
	if err := unix.SetsockoptInt(int(s.fd), level, opt, v); err != nil {
		return &Error{Option: o, Op: "setsockopt", Err: os.NewSyscallError("setsockopt", err)}
	}
	return nil
}

func (s socket) getInt(o Option, level, opt int) (int, error) {
	v, err := unix.GetsockoptInt(int(s.fd), level, opt)
	if err != nil {
		return 0, &Error{Option: o, Op: "getsockopt", Err: os.NewSyscallError("getsockopt", err)}
	}
	return v, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s socket) set(o Option) error {
	switch o := o.(type) {
	case NoDelay:
		return s.setInt(o, unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(bool(o)))
	case UserTimeout:
		return s.setInt(o, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(time.Duration(o)/time.Millisecond))
	case ReceiveBuffer:
		return s.setInt(o, unix.SOL_SOCKET, unix.SO_RCVBUF, int(o))
	}
	return unsupported(o, "setsockopt")
}

func (s socket) get(o Option) (Option, error) {
	switch o.(type) {
	case NoDelay:
		v, err := s.getInt(o, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		return NoDelay(v != 0), err
	case UserTimeout:
		v, err := s.getInt(o, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
		return UserTimeout(time.Duration(v) * time.Millisecond), err
	case ReceiveBuffer:
		v, err := s.getInt(o, unix.SOL_SOCKET, unix.SO_RCVBUF)
		return ReceiveBuffer(v), err
	}
	return nil, unsupported(o, "getsockopt")
}
