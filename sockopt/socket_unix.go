//go:build darwin || freebsd || linux

package sockopt

import (
	"os"
	"time"
	"unsafe"

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

// getsockopt is getsockopt(2) into the *n bytes at p; it sets *n to the
// length the kernel wrote. x/sys/unix exports no such form: its typed
// getters allocate what they return, and GetsockoptString stops at the
// first NUL byte.
func getsockopt(fd uintptr, level, name int, p unsafe.Pointer, n *uint32) error {
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), uintptr(name), uintptr(p), uintptr(unsafe.Pointer(n)), 0)
	if errno != 0 {
		return errno
	}
	return nil
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

// setCommon sets the options that every unix spells alike. done is false
// for the others.
func (s socket) setCommon(opt Option) (done bool, err error) {
	switch o := opt.(type) {
	case NoDelay:
		return true, s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(bool(o)))
	case KeepAlive:
		return true, s.setInt(opt, unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolInt(bool(o)))
	case KeepAliveIdle:
		return true, s.setInt(opt, unix.IPPROTO_TCP, keepIdleOpt, int(time.Duration(o)/time.Second))
	case KeepAliveInterval:
		return true, s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(time.Duration(o)/time.Second))
	case KeepAliveCount:
		return true, s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, int(o))
	case ReceiveBuffer:
		return true, s.setInt(opt, unix.SOL_SOCKET, unix.SO_RCVBUF, int(o))
	case SendBuffer:
		return true, s.setInt(opt, unix.SOL_SOCKET, unix.SO_SNDBUF, int(o))
	case ReuseAddr:
		return true, s.setInt(opt, unix.SOL_SOCKET, unix.SO_REUSEADDR, boolInt(bool(o)))
	case ReusePort:
		return true, s.setInt(opt, unix.SOL_SOCKET, reusePortOpt, boolInt(bool(o)))
	case MaxSegment:
		return true, s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_MAXSEG, int(o))
	case Linger:
		l := unix.Linger{}
		if o >= 0 {
			l = unix.Linger{Onoff: 1, Linger: int32(time.Duration(o) / time.Second)}
		}
		if err := unix.SetsockoptLinger(int(s.fd), unix.SOL_SOCKET, lingerOpt, &l); err != nil {
			return true, s.sysErr(opt, "setsockopt", err)
		}
		return true, nil
	case RawOption:
		if o.isInt {
			return true, s.setInt(opt, o.level, o.name, o.n)
		}
		if err := unix.SetsockoptString(int(s.fd), o.level, o.name, o.value); err != nil {
			return true, s.sysErr(opt, "setsockopt", err)
		}
		return true, nil
	case TOS:
		domain, dual, err := s.family()
		if err != nil {
			return true, s.sysErr(opt, "getsockopt", err)
		}
		if domain != unix.AF_INET6 || dual {
			if err := s.setInt(opt, unix.IPPROTO_IP, unix.IP_TOS, int(o)); err != nil {
				return true, err
			}
		}
		if domain == unix.AF_INET6 {
			return true, s.setInt(opt, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, int(o))
		}
		return true, nil
	}
	return false, nil
}

// getCommon reads the options that every unix spells alike. done is false
// for the others.
func (s socket) getCommon(o Option) (got Option, done bool, err error) {
	intOpt := func(level, opt int) (int, error) { return s.getInt(o, level, opt) }
	switch o := o.(type) {
	case RawOption:
		got, err := s.getRaw(o)
		return got, true, err
	case NoDelay:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_NODELAY)
		return NoDelay(v != 0), true, err
	case KeepAlive:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		return KeepAlive(v != 0), true, err
	case KeepAliveIdle:
		v, err := intOpt(unix.IPPROTO_TCP, keepIdleOpt)
		return KeepAliveIdle(time.Duration(v) * time.Second), true, err
	case KeepAliveInterval:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		return KeepAliveInterval(time.Duration(v) * time.Second), true, err
	case KeepAliveCount:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
		return KeepAliveCount(v), true, err
	case ReceiveBuffer:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_RCVBUF)
		return ReceiveBuffer(v), true, err
	case SendBuffer:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_SNDBUF)
		return SendBuffer(v), true, err
	case ReuseAddr:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_REUSEADDR)
		return ReuseAddr(v != 0), true, err
	case ReusePort:
		v, err := intOpt(unix.SOL_SOCKET, reusePortOpt)
		return ReusePort(v != 0), true, err
	case FastOpen:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_FASTOPEN)
		return FastOpen(v), true, err
	case MaxSegment:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_MAXSEG)
		return MaxSegment(v), true, err
	case Linger:
		l, err := unix.GetsockoptLinger(int(s.fd), unix.SOL_SOCKET, lingerOpt)
		if err != nil {
			return LingerOff, true, s.sysErr(o, "getsockopt", err)
		}
		if l.Onoff == 0 {
			return LingerOff, true, nil
		}
		return Linger(time.Duration(l.Linger) * time.Second), true, nil
	}
	return nil, false, nil
}

// getRaw reads a raw option: an int for RawInt, else up to o.readLen()
// bytes.
func (s socket) getRaw(o RawOption) (RawOption, error) {
	got := RawOption{level: o.level, name: o.name, isInt: o.isInt}
	if o.isInt {
		v, err := s.getInt(o, o.level, o.name)
		got.n = v
		return got, err
	}
	buf := make([]byte, o.readLen())
	n := uint32(len(buf))
	if err := getsockopt(s.fd, o.level, o.name, unsafe.Pointer(&buf[0]), &n); err != nil {
		return got, s.sysErr(o, "getsockopt", err)
	}
	got.value = string(buf[:min(int(n), len(buf))])
	return got, nil
}
