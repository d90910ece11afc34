//go:build !linux

package sockopt

// socket is a file descriptor being configured, inside RawConn.Control.
type socket struct {
	fd      uintptr
	network string
}

func (s socket) set(o Option) error           { return unsupported(o, "setsockopt") }
func (s socket) get(o Option) (Option, error) { return nil, unsupported(o, "getsockopt") }

// Multipath TCP exists only on Linux.
func (s socket) checkMPTCP([]Option, mptcpQuirk) error { return nil }
func (s socket) isMPTCP() (bool, error)                { return false, nil }
