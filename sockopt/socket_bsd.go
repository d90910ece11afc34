//go:build darwin || freebsd

package sockopt

import (
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// hint has nothing to add on the BSDs.
func (s socket) hint(Option, unix.Errno) string { return "" }

// family returns the address family and, for AF_INET6, whether the socket
// is dual-stack.
func (s socket) family() (domain int, dual bool, err error) {
	switch {
	case strings.HasSuffix(s.network, "4"):
		domain = unix.AF_INET
	case strings.HasSuffix(s.network, "6"):
		domain = unix.AF_INET6
	default:
		sa, err := unix.Getsockname(int(s.fd))
		if err != nil {
			return 0, false, err
		}
		domain = unix.AF_INET
		if _, ok := sa.(*unix.SockaddrInet6); ok {
			domain = unix.AF_INET6
		}
	}
	if domain != unix.AF_INET6 {
		return domain, false, nil
	}
	v6only, err := unix.GetsockoptInt(int(s.fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	return domain, v6only == 0, err
}

func (s socket) set(o Option) error {
	switch o := o.(type) {
	case NoDelay:
		return s.setInt(o, unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(bool(o)))
	case KeepAlive:
		return s.setInt(o, unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolInt(bool(o)))
	case KeepAliveIdle:
		return s.setInt(o, unix.IPPROTO_TCP, keepIdleOpt, int(time.Duration(o)/time.Second))
	case KeepAliveInterval:
		return s.setInt(o, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(time.Duration(o)/time.Second))
	case KeepAliveCount:
		return s.setInt(o, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, int(o))
	case ReceiveBuffer:
		return s.setInt(o, unix.SOL_SOCKET, unix.SO_RCVBUF, int(o))
	case SendBuffer:
		return s.setInt(o, unix.SOL_SOCKET, unix.SO_SNDBUF, int(o))
	case ReuseAddr:
		return s.setInt(o, unix.SOL_SOCKET, unix.SO_REUSEADDR, boolInt(bool(o)))
	case ReusePort:
		return s.setInt(o, unix.SOL_SOCKET, reusePortOpt, boolInt(bool(o)))
	case FastOpen:
		// The BSDs take an on/off switch; the queue is the listen backlog.
		return s.setInt(o, unix.IPPROTO_TCP, unix.TCP_FASTOPEN, boolInt(o > 0))
	case MaxSegment:
		return s.setInt(o, unix.IPPROTO_TCP, unix.TCP_MAXSEG, int(o))
	case Linger:
		l := unix.Linger{}
		if o >= 0 {
			l = unix.Linger{Onoff: 1, Linger: int32(time.Duration(o) / time.Second)}
		}
		if err := unix.SetsockoptLinger(int(s.fd), unix.SOL_SOCKET, lingerOpt, &l); err != nil {
			return s.sysErr(o, "setsockopt", err)
		}
		return nil
	case TOS:
		domain, dual, err := s.family()
		if err != nil {
			return s.sysErr(o, "getsockname", err)
		}
		if domain != unix.AF_INET6 || dual {
			if err := s.setInt(o, unix.IPPROTO_IP, unix.IP_TOS, int(o)); err != nil {
				return err
			}
		}
		if domain == unix.AF_INET6 {
			return s.setInt(o, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, int(o))
		}
		return nil
	}
	return s.setOS(o)
}

func (s socket) get(o Option) (Option, error) {
	intOpt := func(level, opt int) (int, error) { return s.getInt(o, level, opt) }
	switch o.(type) {
	case NoDelay:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_NODELAY)
		return NoDelay(v != 0), err
	case KeepAlive:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		return KeepAlive(v != 0), err
	case KeepAliveIdle:
		v, err := intOpt(unix.IPPROTO_TCP, keepIdleOpt)
		return KeepAliveIdle(time.Duration(v) * time.Second), err
	case KeepAliveInterval:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		return KeepAliveInterval(time.Duration(v) * time.Second), err
	case KeepAliveCount:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
		return KeepAliveCount(v), err
	case ReceiveBuffer:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_RCVBUF)
		return ReceiveBuffer(v), err
	case SendBuffer:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_SNDBUF)
		return SendBuffer(v), err
	case ReuseAddr:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_REUSEADDR)
		return ReuseAddr(v != 0), err
	case ReusePort:
		v, err := intOpt(unix.SOL_SOCKET, reusePortOpt)
		return ReusePort(v != 0), err
	case FastOpen:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_FASTOPEN)
		return FastOpen(v), err
	case MaxSegment:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_MAXSEG)
		return MaxSegment(v), err
	case Linger:
		l, err := unix.GetsockoptLinger(int(s.fd), unix.SOL_SOCKET, lingerOpt)
		if err != nil {
			return LingerOff, s.sysErr(o, "getsockopt", err)
		}
		if l.Onoff == 0 {
			return LingerOff, nil
		}
		return Linger(time.Duration(l.Linger) * time.Second), nil
	case TOS:
		domain, _, err := s.family()
		if err != nil {
			return TOS(0), s.sysErr(o, "getsockname", err)
		}
		if domain == unix.AF_INET6 {
			v, err := intOpt(unix.IPPROTO_IPV6, unix.IPV6_TCLASS)
			return TOS(v), err
		}
		v, err := intOpt(unix.IPPROTO_IP, unix.IP_TOS)
		return TOS(v), err
	}
	return s.getOS(o)
}
