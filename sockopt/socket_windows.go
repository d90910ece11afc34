package sockopt

import (
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// socket is a socket handle being configured, inside RawConn.Control.
type socket struct {
	fd      uintptr
	network string
	proto   int // unused: no Multipath TCP here
}

func (s socket) h() windows.Handle { return windows.Handle(s.fd) }

func (s socket) setInt(o Option, level, opt, v int) error {
	if err := windows.SetsockoptInt(s.h(), level, opt, v); err != nil {
		return &Error{Option: o, Op: "setsockopt", Err: os.NewSyscallError("setsockopt", err)}
	}
	return nil
}

func (s socket) getInt(o Option, level, opt int) (int, error) {
	v, err := windows.GetsockoptInt(s.h(), level, opt)
	if err != nil {
		return 0, &Error{Option: o, Op: "getsockopt", Err: os.NewSyscallError("getsockopt", err)}
	}
	return v, nil
}

func (s socket) set(opt Option) error {
	switch o := opt.(type) {
	case NoDelay:
		return s.setInt(opt, windows.IPPROTO_TCP, windows.TCP_NODELAY, boolInt(bool(o)))
	case KeepAlive:
		return s.setInt(opt, windows.SOL_SOCKET, windows.SO_KEEPALIVE, boolInt(bool(o)))
	case KeepAliveIdle:
		return s.setInt(opt, windows.IPPROTO_TCP, windows.TCP_KEEPIDLE, int(time.Duration(o)/time.Second))
	case KeepAliveInterval:
		return s.setInt(opt, windows.IPPROTO_TCP, windows.TCP_KEEPINTVL, int(time.Duration(o)/time.Second))
	case KeepAliveCount:
		return s.setInt(opt, windows.IPPROTO_TCP, windows.TCP_KEEPCNT, int(o))
	case ReceiveBuffer:
		return s.setInt(opt, windows.SOL_SOCKET, windows.SO_RCVBUF, int(o))
	case SendBuffer:
		return s.setInt(opt, windows.SOL_SOCKET, windows.SO_SNDBUF, int(o))
	case ReuseAddr:
		return s.setInt(opt, windows.SOL_SOCKET, windows.SO_REUSEADDR, boolInt(bool(o)))
	case RawOption:
		if o.isInt {
			return s.setInt(opt, o.level, o.name, o.n)
		}
		var p *byte
		if o.value != "" {
			p = unsafe.StringData(o.value) // setsockopt only reads it
		}
		if err := windows.Setsockopt(s.h(), int32(o.level), int32(o.name), p, int32(len(o.value))); err != nil {
			return &Error{Option: opt, Op: "setsockopt", Err: os.NewSyscallError("setsockopt", err)}
		}
		return nil
	case Linger:
		l := windows.Linger{}
		if o >= 0 {
			secs := int32(time.Duration(o) / time.Second)
			if secs > 0xffff {
				return invalid(o, "exceeds the Windows maximum of 65535s")
			}
			l = windows.Linger{Onoff: 1, Linger: secs}
		}
		if err := windows.SetsockoptLinger(s.h(), windows.SOL_SOCKET, windows.SO_LINGER, &l); err != nil {
			return &Error{Option: opt, Op: "setsockopt", Err: os.NewSyscallError("setsockopt", err)}
		}
		return nil
	}
	return unsupported(opt, "setsockopt")
}

func (s socket) get(o Option) (Option, error) {
	intOpt := func(level, opt int) (int, error) { return s.getInt(o, level, opt) }
	switch o := o.(type) {
	case RawOption:
		return s.getRaw(o)
	case NoDelay:
		v, err := intOpt(windows.IPPROTO_TCP, windows.TCP_NODELAY)
		return NoDelay(v != 0), err
	case KeepAlive:
		v, err := intOpt(windows.SOL_SOCKET, windows.SO_KEEPALIVE)
		return KeepAlive(v != 0), err
	case KeepAliveIdle:
		v, err := intOpt(windows.IPPROTO_TCP, windows.TCP_KEEPIDLE)
		return KeepAliveIdle(time.Duration(v) * time.Second), err
	case KeepAliveInterval:
		v, err := intOpt(windows.IPPROTO_TCP, windows.TCP_KEEPINTVL)
		return KeepAliveInterval(time.Duration(v) * time.Second), err
	case KeepAliveCount:
		v, err := intOpt(windows.IPPROTO_TCP, windows.TCP_KEEPCNT)
		return KeepAliveCount(v), err
	case ReceiveBuffer:
		v, err := intOpt(windows.SOL_SOCKET, windows.SO_RCVBUF)
		return ReceiveBuffer(v), err
	case SendBuffer:
		v, err := intOpt(windows.SOL_SOCKET, windows.SO_SNDBUF)
		return SendBuffer(v), err
	case ReuseAddr:
		v, err := intOpt(windows.SOL_SOCKET, windows.SO_REUSEADDR)
		return ReuseAddr(v != 0), err
	case Linger:
		// struct linger on Windows is two u_shorts.
		var l [2]uint16
		n := int32(unsafe.Sizeof(l))
		if err := windows.Getsockopt(s.h(), windows.SOL_SOCKET, windows.SO_LINGER, (*byte)(unsafe.Pointer(&l)), &n); err != nil {
			return LingerOff, &Error{Option: o, Op: "getsockopt", Err: os.NewSyscallError("getsockopt", err)}
		}
		if l[0] == 0 {
			return LingerOff, nil
		}
		return Linger(time.Duration(l[1]) * time.Second), nil
	}
	return nil, unsupported(o, "getsockopt")
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
	n := int32(len(buf))
	if err := windows.Getsockopt(s.h(), int32(o.level), int32(o.name), &buf[0], &n); err != nil {
		return got, &Error{Option: o, Op: "getsockopt", Err: os.NewSyscallError("getsockopt", err)}
	}
	got.value = string(buf[:min(int(n), len(buf))])
	return got, nil
}
