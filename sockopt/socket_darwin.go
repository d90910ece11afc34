package sockopt

import "golang.org/x/sys/unix"

const (
	keepIdleOpt  = unix.TCP_KEEPALIVE // darwin's name for TCP_KEEPIDLE
	lingerOpt    = unix.SO_LINGER_SEC // SO_LINGER counts clock ticks on darwin
	reusePortOpt = unix.SO_REUSEPORT
)

func (s socket) setOS(opt Option) error {
	if o, ok := opt.(NotSentLowat); ok {
		return s.setInt(opt, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, int(o))
	}
	return unsupported(opt, "setsockopt")
}

func (s socket) getOS(o Option) (Option, error) {
	if _, ok := o.(NotSentLowat); ok {
		v, err := s.getInt(o, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
		return NotSentLowat(v), err
	}
	return nil, unsupported(o, "getsockopt")
}
