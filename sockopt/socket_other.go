//go:build !linux && !darwin && !freebsd && !windows

package sockopt

// socket is a file descriptor being configured, inside RawConn.Control.
type socket struct {
	fd      uintptr
	network string
	proto   int // unused: no Multipath TCP here
}

func (s socket) set(o Option) error           { return unsupported(o, "setsockopt") }
func (s socket) get(o Option) (Option, error) { return nil, unsupported(o, "getsockopt") }
