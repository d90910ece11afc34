package sockopt

import (
	"errors"
	"fmt"
	"syscall"
)

// Option is one socket option together with the value to set. The
// implementations are the option types of this package (NoDelay,
// UserTimeout, ReceiveBuffer, …); the set is closed. Every Option is a small
// comparable value that prints itself as NAME=value.
type Option interface {
	// Name is the kernel's name of the option, such as "TCP_USER_TIMEOUT".
	Name() string
	// String is the option with its value, such as "TCP_USER_TIMEOUT=5s".
	String() string
	// Validate checks the value without a system call. Its error is an
	// *Error naming the option and the value.
	Validate() error

	info() info
}

// info says where an option belongs. It is the same on every platform.
type info struct {
	roles Role // the roles the option is meaningful in
	// tcpOnly is set for options that a Multipath TCP socket refuses
	// (ENOPROTOOPT), accepts without effect, or does not pass on to the
	// sockets it accepts. See [TCPOnly].
	tcpOnly bool
}

// Role is the part a socket plays. Roles combine as a bit set.
type Role uint8

const (
	// Dialing is a socket that will connect (net.Dialer's Control).
	Dialing Role = 1 << iota
	// Listening is a socket that will listen (net.ListenConfig's Control).
	Listening
	// Accepted is a connection returned by Accept.
	Accepted

	// Connected is any connected socket: dialed or accepted.
	Connected = Dialing | Accepted
	anyRole   = Dialing | Listening | Accepted
)

func (r Role) String() string {
	switch r {
	case Dialing:
		return "dialing"
	case Listening:
		return "listening"
	case Accepted:
		return "accepted"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Error is the error of one option: its validation, or the system call that
// set or read it. It unwraps to the underlying error, so that
// errors.Is(err, unix.EPERM) and errors.Is(err, errors.ErrUnsupported) work
// through it, and through the *net.OpError that net wraps around a failed
// Control function.
type Error struct {
	Option Option
	// Op is "validate", "setsockopt", "getsockopt" or "check".
	Op string
	// Err is the cause: for system calls an *os.SyscallError.
	Err error
	// Hint, when set, says what to do about it (a missing capability, the
	// names the kernel allows).
	Hint string
}

func (e *Error) Error() string {
	s := "sockopt " + e.Option.String() + ": "
	if e.Op != "validate" && e.Op != "" {
		s += e.Op + ": "
	}
	s += e.Err.Error()
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// invalid returns the validation error of o.
func invalid(o Option, format string, args ...any) error {
	return &Error{Option: o, Op: "validate", Err: fmt.Errorf(format, args...)}
}

// unsupported returns the error for an option this platform lacks.
func unsupported(o Option, op string) error {
	return &Error{Option: o, Op: op, Err: fmt.Errorf("%s is not supported on this platform: %w", o.Name(), errors.ErrUnsupported)}
}

// Validate checks every option's value, and that no two options set the same
// socket option to different values. It makes no system call.
func Validate(opts ...Option) error {
	for i, o := range opts {
		if o == nil {
			return errors.New("sockopt: nil Option")
		}
		if err := o.Validate(); err != nil {
			return err
		}
		for _, p := range opts[:i] {
			if p.Name() == o.Name() && p != o {
				return &Error{Option: o, Op: "validate", Err: fmt.Errorf("conflicts with %s", p)}
			}
		}
	}
	return nil
}

// Check reports an error naming the first option that has no meaning on a
// socket in role r, such as FastOpenConnect on a listening socket or
// DeferAccept on a dialed one.
func Check(r Role, opts ...Option) error {
	for _, o := range opts {
		if o.info().roles&r == 0 {
			return &Error{Option: o, Op: "check", Err: fmt.Errorf("%s has no effect on a %s socket", o.Name(), r)}
		}
	}
	return nil
}

// TCPOnly reports whether o needs a plain TCP socket: a Multipath TCP socket
// (Linux MPTCP, which Go uses by default for listeners) refuses it, accepts
// it without effect, or does not carry it to the connections it accepts.
// Callers that must honour o turn MPTCP off (net.Dialer.SetMultipathTCP,
// net.ListenConfig.SetMultipathTCP).
func TCPOnly(o Option) bool { return o.info().tcpOnly }

// Control returns a function for the Control field of net.Dialer and
// net.ListenConfig that sets opts, in order, on the new socket. The first
// failure aborts the dial or listen; net wraps it in a *net.OpError whose
// chain still reaches the *Error and the errno. If opts do not pass
// [Validate], every call returns that error.
func Control(opts ...Option) func(network, address string, c syscall.RawConn) error {
	opts = append([]Option(nil), opts...)
	verr := Validate(opts...)
	return func(network, address string, c syscall.RawConn) error {
		if verr != nil {
			return verr
		}
		return setRaw(c, network, opts)
	}
}

// Apply sets opts, in order, on an existing socket, such as a conn returned
// by Accept. It stops at the first failure and returns it.
func Apply(c syscall.Conn, opts ...Option) error {
	if err := Validate(opts...); err != nil {
		return err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("sockopt: %w", err)
	}
	return setRaw(rc, "", opts)
}

// setRaw runs set for every option on the socket behind rc. network is the
// network net passes to Control ("tcp4", "tcp6", …), or "" when unknown.
func setRaw(rc syscall.RawConn, network string, opts []Option) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		s := socket{fd: fd, network: network}
		for _, o := range opts {
			if err = s.set(o); err != nil {
				return
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("sockopt: %w", cerr)
	}
	return err
}

// Get reads the effective value of the socket option that o names from c
// and returns it as the same type; o's own value is ignored. The kernel's
// value can differ from the one set: see [Verify].
func Get(c syscall.Conn, o Option) (Option, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("sockopt: %w", err)
	}
	var got Option
	cerr := rc.Control(func(fd uintptr) {
		s := socket{fd: fd}
		got, err = s.get(o)
	})
	if cerr != nil {
		return nil, fmt.Errorf("sockopt: %w", cerr)
	}
	return got, err
}
