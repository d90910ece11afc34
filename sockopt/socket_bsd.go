//go:build darwin || freebsd

package sockopt

import (
	"strings"

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

func (s socket) set(opt Option) error {
	if done, err := s.setCommon(opt); done {
		return err
	}
	if o, ok := opt.(FastOpen); ok {
		// The BSDs take an on/off switch; the queue is the listen backlog.
		return s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_FASTOPEN, boolInt(o > 0))
	}
	return s.setOS(opt)
}

func (s socket) get(o Option) (Option, error) {
	if got, done, err := s.getCommon(o); done {
		return got, err
	}
	if _, ok := o.(TOS); ok {
		domain, _, err := s.family()
		if err != nil {
			return TOS(0), s.sysErr(o, "getsockopt", err)
		}
		level, opt := unix.IPPROTO_IP, unix.IP_TOS
		if domain == unix.AF_INET6 {
			level, opt = unix.IPPROTO_IPV6, unix.IPV6_TCLASS
		}
		v, err := s.getInt(o, level, opt)
		return TOS(v), err
	}
	return s.getOS(o)
}
