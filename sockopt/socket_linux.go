package sockopt

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The options whose names differ between the unixes.
const (
	keepIdleOpt  = unix.TCP_KEEPIDLE
	lingerOpt    = unix.SO_LINGER
	reusePortOpt = unix.SO_REUSEPORT
)

// ipprotoMPTCP is IPPROTO_MPTCP, what SO_PROTOCOL reports on a Multipath
// TCP socket.
const ipprotoMPTCP = 262

// protocol returns SO_PROTOCOL: unix.IPPROTO_TCP or ipprotoMPTCP for
// stream sockets.
func (s socket) protocol() (int, error) {
	return unix.GetsockoptInt(int(s.fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
}

// family returns the address family of the socket and, for AF_INET6,
// whether it is dual-stack (IPV6_V6ONLY off), so that it may carry
// IPv4-mapped traffic.
func (s socket) family() (domain int, dual bool, err error) {
	domain, err = unix.GetsockoptInt(int(s.fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || domain != unix.AF_INET6 {
		return domain, false, err
	}
	v6only, err := unix.GetsockoptInt(int(s.fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	return domain, v6only == 0, err
}

// checkMPTCP fails for the first option whose quirks intersect forbid when
// the socket is Multipath TCP. It costs one getsockopt, and none when no
// option has such a quirk. It returns SO_PROTOCOL when it read it, else 0.
func (s socket) checkMPTCP(opts []Option, forbid mptcpQuirk) (int, error) {
	var first Option
	for _, o := range opts {
		if o.info().mptcp&forbid != 0 {
			first = o
			break
		}
	}
	if first == nil {
		return 0, nil
	}
	p, err := s.protocol()
	if err != nil {
		return 0, &Error{Option: first, Op: "getsockopt", Err: os.NewSyscallError("getsockopt SO_PROTOCOL", err)}
	}
	if p != ipprotoMPTCP {
		return p, nil
	}
	for _, o := range opts {
		q := o.info().mptcp & forbid
		if q == 0 {
			continue
		}
		if q == mptcpRefusedV6 {
			d, _, err := s.family()
			if err == nil && d != unix.AF_INET6 {
				continue
			}
		}
		return p, mptcpError(o)
	}
	return p, nil
}

// mptcpHint says what to do about an option a Multipath TCP socket does
// not honour. Multipath TCP exists only on Linux.
const mptcpHint = "the socket is Multipath TCP (Go's default for listeners since go 1.24 in go.mod); " +
	"call SetMultipathTCP(false) on the net.Dialer or net.ListenConfig, or set GODEBUG=multipathtcp=0"

func mptcpError(o Option) error {
	return &Error{Option: o, Op: "check", Err: ErrMPTCP, Hint: mptcpHint}
}

func (s socket) set(opt Option) error {
	if done, err := s.setCommon(opt); done {
		return err
	}
	fd := int(s.fd)
	switch o := opt.(type) {
	case UserTimeout:
		return s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(time.Duration(o)/time.Millisecond))
	case ReceiveBufferForce:
		return s.setInt(opt, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, int(o))
	case SendBufferForce:
		return s.setInt(opt, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, int(o))
	case FastOpen:
		return s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_FASTOPEN, int(o))
	case FastOpenConnect:
		return s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT, boolInt(bool(o)))
	case DeferAccept:
		return s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, int(time.Duration(o)/time.Second))
	case Congestion:
		if err := unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, string(o)); err != nil {
			return s.sysErr(opt, "setsockopt", err)
		}
		// A Multipath TCP dialing socket returns nil for names it does
		// not know: there, read the value back so that success means
		// success. Plain TCP reports unknown names itself (ENOENT).
		p := s.proto
		if p == 0 {
			var err error
			if p, err = s.protocol(); err != nil {
				return s.sysErr(opt, "getsockopt", err)
			}
		}
		if p != ipprotoMPTCP {
			return nil
		}
		got, err := unix.GetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION)
		if err != nil {
			return s.sysErr(opt, "getsockopt", err)
		}
		if got != string(o) {
			return &Error{Option: opt, Op: "setsockopt",
				Err:  fmt.Errorf("the kernel kept %q: a Multipath TCP socket accepts unknown names without error: %w", got, ErrMPTCP),
				Hint: congestionHint(o, unix.ENOENT)}
		}
		return nil
	case NotSentLowat:
		return s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, int(o))
	case QuickAck:
		return s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_QUICKACK, boolInt(bool(o)))
	case WindowClamp:
		return s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP, int(o))
	case Mark:
		return s.setInt(opt, unix.SOL_SOCKET, unix.SO_MARK, int(o))
	case Priority:
		return s.setInt(opt, unix.SOL_SOCKET, unix.SO_PRIORITY, int(o))
	case BindToDevice:
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, string(o)); err != nil {
			return s.sysErr(opt, "setsockopt", err)
		}
		return nil
	case BusyPoll:
		return s.setInt(opt, unix.SOL_SOCKET, unix.SO_BUSY_POLL, int(time.Duration(o)/time.Microsecond))
	case IncomingCPU:
		return s.setInt(opt, unix.SOL_SOCKET, unix.SO_INCOMING_CPU, int(o))
	case BindAddressNoPort:
		return s.setInt(opt, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, boolInt(bool(o)))
	}
	return unsupported(opt, "setsockopt")
}

func (s socket) get(o Option) (Option, error) {
	if got, done, err := s.getCommon(o); done {
		return got, err
	}
	fd := int(s.fd)
	intOpt := func(level, opt int) (int, error) { return s.getInt(o, level, opt) }
	switch o.(type) {
	case UserTimeout:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
		return UserTimeout(time.Duration(v) * time.Millisecond), err
	case ReceiveBufferForce:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_RCVBUF)
		return ReceiveBufferForce(v), err
	case SendBufferForce:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_SNDBUF)
		return SendBufferForce(v), err
	case FastOpenConnect:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT)
		return FastOpenConnect(v != 0), err
	case DeferAccept:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
		return DeferAccept(time.Duration(v) * time.Second), err
	case Congestion:
		v, err := unix.GetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION)
		if err != nil {
			return Congestion(""), s.sysErr(o, "getsockopt", err)
		}
		return Congestion(v), nil
	case NotSentLowat:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
		return NotSentLowat(v), err
	case QuickAck:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_QUICKACK)
		return QuickAck(v != 0), err
	case WindowClamp:
		v, err := intOpt(unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP)
		return WindowClamp(v), err
	case TOS:
		domain, dual, err := s.family()
		if err != nil {
			return TOS(0), s.sysErr(o, "getsockopt", err)
		}
		if domain == unix.AF_INET6 && !(dual && s.peerIsV4Mapped()) {
			v, err := intOpt(unix.IPPROTO_IPV6, unix.IPV6_TCLASS)
			return TOS(v), err
		}
		v, err := intOpt(unix.IPPROTO_IP, unix.IP_TOS)
		return TOS(v), err
	case Mark:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_MARK)
		return Mark(uint32(v)), err
	case Priority:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_PRIORITY)
		return Priority(v), err
	case BindToDevice:
		v, err := unix.GetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
		if err != nil {
			return BindToDevice(""), s.sysErr(o, "getsockopt", err)
		}
		return BindToDevice(v), nil
	case BusyPoll:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_BUSY_POLL)
		return BusyPoll(time.Duration(v) * time.Microsecond), err
	case IncomingCPU:
		v, err := intOpt(unix.SOL_SOCKET, unix.SO_INCOMING_CPU)
		return IncomingCPU(v), err
	case BindAddressNoPort:
		v, err := intOpt(unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT)
		return BindAddressNoPort(v != 0), err
	}
	return nil, unsupported(o, "getsockopt")
}

// peerIsV4Mapped reports whether a dual-stack IPv6 socket is connected to
// an IPv4-mapped address, in which case its traffic follows IP_TOS.
func (s socket) peerIsV4Mapped() bool {
	sa, err := unix.Getpeername(int(s.fd))
	if err != nil {
		return false
	}
	in6, ok := sa.(*unix.SockaddrInet6)
	if !ok {
		return false
	}
	a := in6.Addr
	for _, b := range a[:10] {
		if b != 0 {
			return false
		}
	}
	return a[10] == 0xff && a[11] == 0xff
}

// hint says what to do about errno from o, or "".
func (s socket) hint(o Option, errno unix.Errno) string {
	switch errno {
	case unix.EPERM, unix.EACCES:
		switch o := o.(type) {
		case ReceiveBufferForce, SendBufferForce:
			return "needs CAP_NET_ADMIN"
		case Mark:
			return "needs CAP_NET_ADMIN, or CAP_NET_RAW on kernels since 5.17"
		case Priority:
			return "priorities above 6 need CAP_NET_ADMIN, or CAP_NET_RAW on recent kernels"
		case BusyPoll:
			return "older kernels need CAP_NET_ADMIN to raise SO_BUSY_POLL above net.core.busy_poll"
		case BindToDevice:
			return "kernels before 5.7 need CAP_NET_RAW for SO_BINDTODEVICE"
		case Congestion:
			return congestionHint(o, errno)
		}
	case unix.ENOENT:
		if o, ok := o.(Congestion); ok {
			return congestionHint(o, errno)
		}
	case unix.ENODEV:
		if _, ok := o.(BindToDevice); ok {
			return "no network interface has that name"
		}
	case unix.ENOPROTOOPT, unix.EOPNOTSUPP:
		if p, err := s.protocol(); err == nil && p == ipprotoMPTCP {
			return mptcpHint
		}
	}
	return ""
}

// congestionHint names the algorithms the kernel has and allows. It reads
// /proc, so it runs only on an error path.
func congestionHint(o Congestion, errno unix.Errno) string {
	avail := readProcLine("/proc/sys/net/ipv4/tcp_available_congestion_control")
	allowed := readProcLine("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
	if errno == unix.EPERM {
		return fmt.Sprintf("%q is not in net.ipv4.tcp_allowed_congestion_control [%s]; others need CAP_NET_ADMIN", string(o), allowed)
	}
	return fmt.Sprintf("net.ipv4.tcp_available_congestion_control is [%s], tcp_allowed_congestion_control is [%s]; a missing algorithm may need its module loaded (tcp_%s)", avail, allowed, string(o))
}

func readProcLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "unknown"
		}
		return "unreadable"
	}
	return strings.TrimSpace(string(b))
}

func (s socket) isMPTCP() (bool, error) {
	p, err := s.protocol()
	if err != nil {
		return false, fmt.Errorf("sockopt: %w", os.NewSyscallError("getsockopt SO_PROTOCOL", err))
	}
	return p == ipprotoMPTCP, nil
}
