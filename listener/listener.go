package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	"github.com/nettune/nettune/sockopt"
)

// ErrBacklogTruncated is wrapped by the error of Listen when the kernel
// kept a shorter accept queue than [Backlog] asked for (it truncates to
// net.core.somaxconn) and [StrictBacklog] is on.
var ErrBacklogTruncated = errors.New("listener: backlog truncated by net.core.somaxconn")

// errUnsupported is errors.ErrUnsupported, named for the option errors.
var errUnsupported = errors.ErrUnsupported

// OptionError is the error of [New] for an option with a bad value, one
// that has no meaning where it was given, or two options that conflict. It
// unwraps to the cause, such as a *sockopt.Error.
type OptionError struct {
	Option Option // the offending option
	Err    error
}

// Error returns "listener: <option>: <cause>".
func (e *OptionError) Error() string { return "listener: " + e.Option.String() + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *OptionError) Unwrap() error { return e.Err }

// config is what the options build; New freezes it into a Config.
type config struct {
	listen       []sockopt.Option // on the listening socket, in order
	conn         []sockopt.Option // on every accepted conn, in order
	backlog      int              // 0: Go's (somaxconn)
	strict       bool
	keepAlive    *net.KeepAliveConfig // nil: Go's default
	keepAliveOpt keepAlive
	mptcp        *bool // nil: Go decides, unless TCP-only options
}

// Config is a frozen listener configuration made by [New]. Its Listen and
// ListenGroup methods may be called any number of times, and concurrently:
// a Config never changes after New.
type Config struct {
	opts    []Option
	listen  []sockopt.Option
	conn    []sockopt.Option
	backlog int
	strict  bool
	lc      net.ListenConfig // Control, KeepAlive and MPTCP set
	tcpOnly bool             // MPTCP was turned off for TCP-only options
	// keepAlive is the KeepAlive option, or nil.
	keepAlive *net.KeepAliveConfig
}

// New returns a Config built from opts: it starts from Go's defaults,
// applies each option (which checks its own value), then checks the set:
// socket options must fit their socket (sockopt.Check with the listening
// and the accepted role), must not conflict, and Multipath TCP must not be
// asked for together with TCP-only options. It makes no system call. The
// error is an *[OptionError] naming the option.
func New(opts ...Option) (*Config, error) {
	var c config
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("listener: nil Option")
		}
		if err := o.apply(&c); err != nil {
			return nil, err
		}
	}
	if err := validateSet(&c, opts); err != nil {
		return nil, err
	}
	cfg := &Config{
		opts:    append([]Option(nil), opts...),
		listen:  dedupe(c.listen),
		conn:    dedupe(c.conn),
		backlog: c.backlog,
		strict:  c.strict,
	}
	if len(cfg.listen) > 0 {
		cfg.lc.Control = sockopt.ListenControl(cfg.listen...)
	}
	if c.keepAlive != nil {
		cfg.keepAlive = c.keepAlive
		cfg.lc.KeepAliveConfig = *c.keepAlive
		if !c.keepAlive.Enable {
			cfg.lc.KeepAlive = -1 // Go would turn it on otherwise
		}
	}
	for _, o := range append(append([]sockopt.Option(nil), cfg.listen...), cfg.conn...) {
		if sockopt.TCPOnly(o) {
			cfg.tcpOnly = true
		}
	}
	switch {
	case c.mptcp != nil:
		cfg.lc.SetMultipathTCP(*c.mptcp)
	case cfg.tcpOnly:
		cfg.lc.SetMultipathTCP(false)
	}
	return cfg, nil
}

// validateSet checks what no single option can: conflicts between them.
func validateSet(c *config, opts []Option) error {
	find := func(o sockopt.Option, conn bool) Option {
		for _, op := range opts {
			switch op := op.(type) {
			case sockoptOption:
				if !conn && op.o == o {
					return op
				}
			case connSockopt:
				if conn && op.o == o {
					return op
				}
			}
		}
		return nil
	}
	for _, set := range []struct {
		opts []sockopt.Option
		conn bool
	}{{c.listen, false}, {c.conn, true}} {
		if err := sockopt.Validate(set.opts...); err != nil {
			var se *sockopt.Error
			if errors.As(err, &se) {
				if o := find(se.Option, set.conn); o != nil {
					return &OptionError{Option: o, Err: err}
				}
			}
			return fmt.Errorf("listener: %w", err)
		}
	}
	if c.keepAlive != nil {
		for _, o := range c.conn {
			switch o.(type) {
			case sockopt.KeepAlive, sockopt.KeepAliveIdle, sockopt.KeepAliveInterval, sockopt.KeepAliveCount:
				return &OptionError{Option: c.keepAliveOpt, Err: fmt.Errorf("conflicts with %v", connSockopt{o})}
			}
		}
	}
	if c.mptcp != nil && *c.mptcp {
		for _, set := range []struct {
			opts []sockopt.Option
			wrap func(sockopt.Option) Option
		}{
			{c.listen, func(o sockopt.Option) Option { return sockoptOption{o} }},
			{c.conn, func(o sockopt.Option) Option { return connSockopt{o} }},
		} {
			for _, o := range set.opts {
				if sockopt.TCPOnly(o) {
					return &OptionError{Option: multipath(true), Err: fmt.Errorf(
						"conflicts with %v: a Multipath TCP socket refuses it, ignores it or does not pass it on to accepted connections", set.wrap(o))}
				}
			}
		}
	}
	return nil
}

// dedupe drops repeats of the same option with the same value (Validate
// has already refused different values).
func dedupe(opts []sockopt.Option) []sockopt.Option {
	var out []sockopt.Option
	for _, o := range opts {
		dup := false
		for _, p := range out {
			if p == o {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, o)
		}
	}
	return out
}

// String lists the options the Config was made with.
func (c *Config) String() string {
	parts := make([]string, len(c.opts))
	for i, o := range c.opts {
		parts[i] = o.String()
	}
	return "listener.Config{" + strings.Join(parts, ", ") + "}"
}

// ListenConfig returns the standard library configuration underneath c:
// its Control sets the listening socket's options, its KeepAliveConfig is
// the [KeepAlive] option and its Multipath TCP setting is c's. It does not
// carry what net.ListenConfig cannot express: the [Backlog], and the
// [ConnSockopt] options, which need the Accept of a [Listener]. Each call
// returns a fresh copy.
func (c *Config) ListenConfig() net.ListenConfig { return c.lc }

// Listen announces on the local TCP address, like net.ListenConfig.Listen,
// with c's options: socket options are set before bind; then the backlog
// is set and read back, and the protocol of the socket checked. network
// must be "tcp", "tcp4" or "tcp6". Errors are *net.OpError values whose
// chain reaches the cause, so errors.Is(err, syscall.EPERM) and
// errors.As(err, new(*sockopt.Error)) work.
func (c *Config) Listen(ctx context.Context, network, address string) (*Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("listener: network %q is not one of tcp, tcp4, tcp6: %w", network, net.UnknownNetworkError(network))}
	}
	lc := c.lc
	ln, err := lc.Listen(ctx, network, address)
	if err != nil {
		return nil, err
	}
	tl := ln.(*net.TCPListener)
	l := &Listener{tl: tl, network: network, conn: c.conn, asked: c.backlog, keepAlive: c.keepAlive}
	if err := c.finishListen(l); err != nil {
		tl.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: tl.Addr(), Err: err}
	}
	return l, nil
}

// finishListen sets the backlog and reads back what the kernel kept.
func (c *Config) finishListen(l *Listener) error {
	rc, err := l.tl.SyscallConn()
	if err != nil {
		return fmt.Errorf("listener: %w", err)
	}
	st, err := relisten(rc, c.backlog)
	if err != nil {
		return err
	}
	l.backlog, l.mptcp = st.backlog, st.mptcp
	if c.tcpOnly && st.mptcp {
		return errors.New("listener: the listening socket is Multipath TCP although Multipath TCP was turned off for TCP-only options")
	}
	if c.backlog > 0 && st.backlog < c.backlog && c.strict {
		return fmt.Errorf("%w: asked %d, the kernel kept %d", ErrBacklogTruncated, c.backlog, st.backlog)
	}
	return nil
}

// Listener is a TCP listener whose Accept sets per-connection options on
// every connection it returns. It is safe for concurrent use, like
// net.Listener.
type Listener struct {
	tl      *net.TCPListener
	network string
	conn    []sockopt.Option
	backlog int // read back after listen; 0 if unknown
	asked   int
	mptcp   bool
	// keepAlive is the KeepAlive option, for connections taken by Drain.
	keepAlive *net.KeepAliveConfig
	draining  atomic.Bool // set by Drain: Accept returns net.ErrClosed
}

// Accept waits for the next connection, sets the [ConnSockopt] options on
// it and returns it; the net.Conn is a *net.TCPConn. It implements
// net.Listener.
//
// If an option cannot be set, Accept closes that connection (the client
// sees it closed) and returns a *net.OpError whose Err is a
// *[ConnOptionError]: its Temporary method reports true, so that servers
// that retry temporary Accept errors (net/http, gRPC) keep serving, and
// errors.Is reaches the errno. Accept never returns a connection on which
// an option is missing.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptTCP is [Listener.Accept] returning the concrete type.
func (l *Listener) AcceptTCP() (*net.TCPConn, error) {
	if l.draining.Load() {
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.tl.Addr(), Err: net.ErrClosed}
	}
	c, err := l.tl.AcceptTCP()
	if err != nil {
		if l.draining.Load() {
			err = &net.OpError{Op: "accept", Net: l.network, Addr: l.tl.Addr(), Err: net.ErrClosed}
		}
		return nil, err
	}
	if err := l.setConnOptions(c); err != nil {
		return nil, err
	}
	return c, nil
}

// setConnOptions sets the per-connection options on c, or closes it and
// returns the accept error.
func (l *Listener) setConnOptions(c *net.TCPConn) error {
	if len(l.conn) == 0 {
		return nil
	}
	if err := sockopt.Apply(c, l.conn...); err != nil {
		remote := c.RemoteAddr()
		c.Close()
		return &net.OpError{Op: "accept", Net: l.network, Source: l.tl.Addr(), Addr: remote, Err: &ConnOptionError{Remote: remote, Err: err}}
	}
	return nil
}

// Close closes the listener. Connections waiting in its accept queue are
// reset by the kernel; in a reuse-port group see [Group] for how to avoid
// that. Accepted connections stay open.
func (l *Listener) Close() error { return l.tl.Close() }

// Addr returns the listener's network address.
func (l *Listener) Addr() net.Addr { return l.tl.Addr() }

// TCPListener returns the standard listener underneath, for SetDeadline,
// File and SyscallConn. Connections accepted from it directly do not get
// the [ConnSockopt] options.
func (l *Listener) TCPListener() *net.TCPListener { return l.tl }

// Backlog reports the length of the accept queue as the kernel keeps it,
// read back after listen (on Linux tcpi_sacked of the listening socket's
// TCP_INFO is sk_max_ack_backlog), and the length [Backlog] asked for (0
// if none). got < asked means net.core.somaxconn truncated it: raise that
// sysctl. got is 0 where it cannot be read back (outside Linux).
func (l *Listener) Backlog() (got, asked int) { return l.backlog, l.asked }

// MultipathTCP reports whether the listening socket is a Multipath TCP
// socket, from its SO_PROTOCOL. Connections it accepts from clients that
// do not speak Multipath TCP are plain TCP sockets.
func (l *Listener) MultipathTCP() bool { return l.mptcp }

// ConnOptionError is the cause of an Accept error when a [ConnSockopt]
// option could not be set on an accepted connection. The connection was
// closed. It is temporary: the listener keeps working.
type ConnOptionError struct {
	Remote net.Addr // the client of the closed connection
	Err    error    // the *sockopt.Error
}

// Error says that the connection was closed and why.
func (e *ConnOptionError) Error() string {
	return "listener: connection closed, per-connection option not set: " + e.Err.Error()
}

// Unwrap returns the *sockopt.Error.
func (e *ConnOptionError) Unwrap() error { return e.Err }

// Temporary reports true: the listener keeps working, so servers that
// back off and retry temporary Accept errors (net/http, gRPC) go on.
func (e *ConnOptionError) Temporary() bool { return true }

// Timeout reports false.
func (e *ConnOptionError) Timeout() bool { return false }

var _ net.Listener = (*Listener)(nil)
