package sockopt

import "golang.org/x/sys/unix"

const (
	keepIdleOpt = unix.TCP_KEEPIDLE
	lingerOpt   = unix.SO_LINGER
	// SO_REUSEPORT_LB spreads connections among the listeners the way
	// Linux SO_REUSEPORT does; plain SO_REUSEPORT on FreeBSD does not.
	reusePortOpt = unix.SO_REUSEPORT_LB
)

func (s socket) setOS(opt Option) error {
	if o, ok := opt.(Congestion); ok {
		if err := unix.SetsockoptString(int(s.fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, string(o)); err != nil {
			return s.sysErr(opt, "setsockopt", err)
		}
		return nil
	}
	return unsupported(opt, "setsockopt")
}

func (s socket) getOS(o Option) (Option, error) {
	if _, ok := o.(Congestion); ok {
		v, err := unix.GetsockoptString(int(s.fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
		if err != nil {
			return Congestion(""), s.sysErr(o, "getsockopt", err)
		}
		return Congestion(v), nil
	}
	return nil, unsupported(o, "getsockopt")
}
