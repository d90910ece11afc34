package sockopt

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Option is one socket option together with the value to set. The
// implementations are the option types of this package (NoDelay,
// UserTimeout, ReceiveBuffer, …, and [RawOption] for the others); the set
// is closed. Every Option is a small comparable value that prints itself
// as NAME=value.
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
	// mptcp says how a Multipath TCP socket treats the option, as
	// measured on Linux 6.x. Any bit makes the option TCP-only: see
	// [TCPOnly].
	mptcp mptcpQuirk
	// afterConnect is set for options that Go itself sets on every TCP
	// connection it dials or accepts. See [AfterConnect].
	afterConnect bool
}

// mptcpQuirk is a set of ways Multipath TCP mistreats an option.
type mptcpQuirk uint8

const (
	// mptcpRefused: setsockopt fails with ENOPROTOOPT.
	mptcpRefused mptcpQuirk = 1 << iota
	// mptcpRefusedV6: refused on an AF_INET6 socket only (EOPNOTSUPP).
	mptcpRefusedV6
	// mptcpNoEffect: setsockopt succeeds, but a dialed connection that
	// falls back to plain TCP does not keep the value.
	mptcpNoEffect
	// mptcpNotInherited: set on an MPTCP listener, the value does not
	// reach the connections it accepts from plain TCP clients.
	mptcpNotInherited
)

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

// String returns "dialing", "listening" or "accepted", joined with "|"
// for a combination such as [Connected].
func (r Role) String() string {
	var parts []string
	for _, x := range []struct {
		r    Role
		name string
	}{{Dialing, "dialing"}, {Listening, "listening"}, {Accepted, "accepted"}} {
		if r&x.r != 0 {
			parts = append(parts, x.name)
			r &^= x.r
		}
	}
	if r != 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("Role(%d)", uint8(r)))
	}
	return strings.Join(parts, "|")
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

// Error returns "sockopt NAME=value: op: cause (hint)".
func (e *Error) Error() string {
	s := "sockopt: "
	if e.Option != nil {
		s = "sockopt " + e.Option.String() + ": "
	}
	var sys *os.SyscallError
	if e.Op != "validate" && e.Op != "" && !errors.As(e.Err, &sys) { // a SyscallError names the call itself
		s += e.Op + ": "
	}
	s += e.Err.Error()
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns the cause, so errors.Is reaches the errno.
func (e *Error) Unwrap() error { return e.Err }

// invalid returns the validation error of o.
func invalid[T Option](o T, format string, args ...any) error {
	return &Error{Option: o, Op: "validate", Err: fmt.Errorf(format, args...)}
}

// unsupported returns the error for an option this platform lacks.
func unsupported(o Option, op string) error {
	return &Error{Option: o, Op: op, Err: fmt.Errorf("%s is not supported on this platform: %w", o.Name(), errors.ErrUnsupported)}
}

var errNilOption = errors.New("sockopt: nil Option")

// Validate checks every option's value, and that no two options set the same
// socket option to different values. It makes no system call.
func Validate(opts ...Option) error {
	for i, o := range opts {
		if o == nil {
			return errNilOption
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
// DeferAccept on a dialed one, or that Go undoes in that role: for Dialing
// and Listening, the options for which [AfterConnect] is true.
func Check(r Role, opts ...Option) error {
	for _, o := range opts {
		if o == nil {
			return errNilOption
		}
		in := o.info()
		if in.roles&r == 0 {
			return &Error{Option: o, Op: "check", Err: fmt.Errorf("%s has no effect on a %s socket", o.Name(), r)}
		}
		if in.afterConnect && r&(Dialing|Listening) != 0 {
			return afterConnectError(o)
		}
	}
	return nil
}

func afterConnectError(o Option) error {
	return &Error{Option: o, Op: "check",
		Err:  fmt.Errorf("%s set before connect or listen is undone on the connection (by Go, or for TCP_QUICKACK by the kernel)", o.Name()),
		Hint: "apply it with Apply to the conn that Dial or Accept returns"}
}

// AfterConnect reports whether o takes effect only when applied to a
// connection that already exists, with [Apply] on the conn that Dial or
// Accept returns. It is true for TCP_NODELAY, SO_KEEPALIVE and the
// keepalive timers, which Go sets on every TCP connection it creates (Linux
// passes a listener's values to accepted sockets only for Go to overwrite
// them), and for TCP_QUICKACK, which the kernel resets during the
// handshake: a value set in a Control function is lost. [Control] refuses
// these options.
func AfterConnect(o Option) bool { return o != nil && o.info().afterConnect }

// TCPOnly reports whether o needs a plain TCP socket: a Multipath TCP socket
// (Linux MPTCP, which Go uses by default for listeners) refuses it, accepts
// it without effect, or does not carry it to the connections it accepts.
// Callers that must honour o turn MPTCP off (net.Dialer.SetMultipathTCP,
// net.ListenConfig.SetMultipathTCP).
func TCPOnly(o Option) bool { return o != nil && o.info().mptcp != 0 }

// ErrMPTCP is the cause of an [*Error] for an option that a Multipath TCP
// socket refuses, accepts without effect, or does not pass to the
// connections it accepts. Turn Multipath TCP off for such sockets with
// net.Dialer.SetMultipathTCP(false) or net.ListenConfig.SetMultipathTCP(false).
//
// It is always wrapped in an [*Error], whose message names the package
// and the option, so its own text does not repeat "sockopt: ".
var ErrMPTCP = errors.New("not honoured on a Multipath TCP socket")

// Control returns a function for the Control field of net.Dialer and
// net.ListenConfig that sets opts, in order, on the new socket. The first
// failure aborts the dial or listen; net wraps it in a *net.OpError whose
// chain still reaches the *Error and the errno. If opts do not pass
// [Validate], or hold an option for which [AfterConnect] is true, every
// call returns that error.
//
// When opts hold an option for which [TCPOnly] is true, the function first
// reads SO_PROTOCOL (one getsockopt) and fails with an error wrapping
// [ErrMPTCP] on a Multipath TCP socket, rather than report the option set.
// Control does not know whether the socket will dial or listen, so it
// refuses every such option; [DialControl] and [ListenControl] refuse only
// those that fail in their role.
func Control(opts ...Option) func(network, address string, c syscall.RawConn) error {
	return control(0, opts)
}

// DialControl is [Control] for net.Dialer: it also fails, at every call,
// when an option has no effect on a dialing socket ([Check]), and on a
// Multipath TCP socket it refuses only the options that MPTCP refuses or
// drops on dialed connections.
func DialControl(opts ...Option) func(network, address string, c syscall.RawConn) error {
	return control(Dialing, opts)
}

// ListenControl is [Control] for net.ListenConfig: it also fails, at every
// call, when an option has no effect on a listening socket ([Check]), and
// on a Multipath TCP socket it refuses only the options that MPTCP refuses
// or does not pass to accepted connections.
func ListenControl(opts ...Option) func(network, address string, c syscall.RawConn) error {
	return control(Listening, opts)
}

// forbidden returns the Multipath TCP quirks that make an option fail in
// role r (0: role unknown).
func forbidden(r Role) mptcpQuirk {
	switch r {
	case Dialing:
		return mptcpRefused | mptcpRefusedV6 | mptcpNoEffect
	case Listening:
		return mptcpRefused | mptcpRefusedV6 | mptcpNotInherited
	case Accepted, Connected:
		return mptcpRefused | mptcpRefusedV6 | mptcpNoEffect
	}
	return mptcpRefused | mptcpRefusedV6 | mptcpNoEffect | mptcpNotInherited
}

func control(r Role, opts []Option) func(network, address string, c syscall.RawConn) error {
	opts = append([]Option(nil), opts...)
	verr := Validate(opts...)
	if verr == nil && r != 0 {
		verr = Check(r, opts...)
	}
	for _, o := range opts {
		if verr == nil && o.info().afterConnect {
			verr = afterConnectError(o)
		}
	}
	forbid := forbidden(r)
	return func(network, address string, c syscall.RawConn) error {
		if verr != nil {
			return verr
		}
		return setRaw(c, network, opts, forbid)
	}
}

// Apply sets opts, in order, on an existing socket, such as a conn returned
// by Accept. c is the conn or listener, as described under Sockets in the
// package documentation: a syscall.Conn (*net.TCPConn, *net.TCPListener),
// a syscall.RawConn, or a conn with a NetConn() net.Conn method that leads
// to one (*tls.Conn). It stops at the first failure and returns it. Like
// [Control], it fails with [ErrMPTCP] for an option that a Multipath TCP
// socket refuses or ignores.
func Apply(c any, opts ...Option) error {
	if err := Validate(opts...); err != nil {
		return err
	}
	rc, err := rawConnOf(c)
	if err != nil {
		return err
	}
	return setRaw(rc, "", opts, forbidden(Connected))
}

// maxUnwrap bounds the NetConn chain rawConnOf follows, so that a conn
// whose NetConn returns itself cannot loop forever.
const maxUnwrap = 16

// rawConnOf returns the socket behind c: c itself when it is a
// syscall.RawConn, c.SyscallConn() when it is a syscall.Conn, and else the
// socket behind c.NetConn(), the method by which *tls.Conn and other
// wrapping conns hand out the conn they wrap.
func rawConnOf(c any) (syscall.RawConn, error) {
	for range maxUnwrap {
		switch x := c.(type) {
		case syscall.RawConn:
			return x, nil
		case syscall.Conn:
			rc, err := x.SyscallConn()
			if err != nil {
				return nil, fmt.Errorf("sockopt: %w", err)
			}
			return rc, nil
		case interface{ NetConn() net.Conn }:
			next := x.NetConn()
			if next == nil {
				return nil, fmt.Errorf("sockopt: %T wraps no conn (NetConn returned nil)", c)
			}
			c = next
		default:
			return nil, fmt.Errorf("sockopt: %T has no socket: want a syscall.Conn (*net.TCPConn, *net.TCPListener), a syscall.RawConn, or a conn with NetConn() net.Conn (*tls.Conn)", c)
		}
	}
	return nil, fmt.Errorf("sockopt: %T: more than %d conns wrapped in one another", c, maxUnwrap)
}

// setRaw runs set for every option on the socket behind rc. network is the
// network net passes to Control ("tcp4", "tcp6", …), or "" when unknown.
func setRaw(rc syscall.RawConn, network string, opts []Option, forbid mptcpQuirk) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		s := socket{fd: fd, network: network}
		if s.proto, err = s.checkMPTCP(opts, forbid); err != nil {
			return
		}
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

// Get reads the effective value of the socket option that o names from c,
// a conn or listener as for [Apply], and returns it as the same type; o's
// own value is ignored, except that a [Raw] option reads as many bytes as
// its value holds (up to 1024 when it holds none). The kernel's value can
// differ from the one set: see [Verify].
//
//	idle, err := sockopt.Get(conn, sockopt.KeepAliveIdle(0)) // idle is a KeepAliveIdle
func Get[T Option](c any, o T) (T, error) {
	var zero T
	if Option(o) == nil {
		return zero, errNilOption
	}
	rc, err := rawConnOf(c)
	if err != nil {
		return zero, err
	}
	var got Option
	cerr := rc.Control(func(fd uintptr) {
		got, err = socket{fd: fd}.get(o)
	})
	if cerr != nil {
		return zero, fmt.Errorf("sockopt: %w", cerr)
	}
	if err != nil {
		return zero, err
	}
	return got.(T), nil
}

// IsMPTCP reports whether c, a conn or listener as for [Apply], is a
// Multipath TCP socket, from SO_PROTOCOL.
// A dialed MPTCP connection whose peer fell back to plain TCP still is.
// On platforms without Multipath TCP it returns false and nil.
func IsMPTCP(c any) (bool, error) {
	rc, err := rawConnOf(c)
	if err != nil {
		return false, err
	}
	var mp bool
	cerr := rc.Control(func(fd uintptr) {
		mp, err = socket{fd: fd}.isMPTCP()
	})
	if cerr != nil {
		return false, fmt.Errorf("sockopt: %w", cerr)
	}
	return mp, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
