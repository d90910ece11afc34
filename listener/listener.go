package listener

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nettune/nettune/sockopt"
)

// ErrBacklogTruncated is wrapped by the error of Listen when the kernel
// kept a shorter accept queue than [Backlog] asked for (it truncates to
// net.core.somaxconn) and [StrictBacklog] is on.
var ErrBacklogTruncated = errors.New("listener: backlog truncated by net.core.somaxconn")

// errUnsupported is errors.ErrUnsupported, named for the option errors.
var errUnsupported = errors.ErrUnsupported

// OptionError is the error of [New] for an option with a bad value, one
// that has no meaning where it was given, or two options that conflict.
// [Config.Listen] also returns one, inside its *net.OpError, for a
// per-connection option the kernel refuses. It unwraps to the cause, such
// as a *sockopt.Error.
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
	errorLog     *log.Logger
}

// Config is a frozen listener configuration made by [New]. Its Listen and
// ListenGroup methods may be called any number of times, and concurrently:
// a Config never changes after New.
type Config struct {
	opts   []Option
	listen []sockopt.Option
	// conn are the options set on every accepted conn: the KeepAlive
	// option's socket options, then the ConnSockopt ones; connFrom[i] is
	// the Option that conn[i] comes from.
	conn     []sockopt.Option
	connFrom []Option
	backlog  int
	strict   bool
	lc       net.ListenConfig // Control, KeepAlive and MPTCP set
	tcpOnly  bool             // MPTCP was turned off for TCP-only options
	// keepAlive is the KeepAlive option, or nil.
	keepAlive *net.KeepAliveConfig
	errorLog  *log.Logger // nil: the standard logger
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
		opts:     append([]Option(nil), opts...),
		listen:   dedupe(c.listen),
		backlog:  c.backlog,
		strict:   c.strict,
		errorLog: c.errorLog,
	}
	if c.keepAlive != nil {
		// Go sets keepalive on accepted conns itself and ignores the
		// errors: the Listener sets it as a per-connection option.
		for _, o := range keepAliveOptions(*c.keepAlive) {
			cfg.conn = append(cfg.conn, o)
			cfg.connFrom = append(cfg.connFrom, c.keepAliveOpt)
		}
	}
	for _, o := range dedupe(c.conn) {
		cfg.conn = append(cfg.conn, o)
		cfg.connFrom = append(cfg.connFrom, connSockopt{o})
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

// keepAliveOptions returns the socket options that cfg stands for, with
// net.KeepAliveConfig's meaning: keepalive off when Enable is false,
// otherwise Go's default for a zero field and nothing (the system's value)
// for a negative one.
func keepAliveOptions(cfg net.KeepAliveConfig) []sockopt.Option {
	if !cfg.Enable {
		return []sockopt.Option{sockopt.KeepAlive(false)}
	}
	opts := []sockopt.Option{sockopt.KeepAlive(true)}
	if cfg.Idle >= 0 {
		opts = append(opts, sockopt.KeepAliveIdle(cmp.Or(cfg.Idle, goKeepAliveIdle)))
	}
	if cfg.Interval >= 0 {
		opts = append(opts, sockopt.KeepAliveInterval(cmp.Or(cfg.Interval, goKeepAliveInterval)))
	}
	if cfg.Count >= 0 {
		opts = append(opts, sockopt.KeepAliveCount(cmp.Or(cfg.Count, goKeepAliveCount)))
	}
	return opts
}

// Go's keepalive defaults, documented at net.KeepAliveConfig.
const (
	goKeepAliveIdle     = 15 * time.Second
	goKeepAliveInterval = 15 * time.Second
	goKeepAliveCount    = 9
)

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
// the [KeepAlive] option (which net's Accept sets without checking errors)
// and its Multipath TCP setting is c's. It does not carry what
// net.ListenConfig cannot express: the [Backlog], and the [ConnSockopt]
// options, which need the Accept of a [Listener]. Each call returns a
// fresh copy.
func (c *Config) ListenConfig() net.ListenConfig { return c.lc }

// Listen announces on the local TCP address, like net.ListenConfig.Listen,
// with c's options: socket options are set before bind; then the backlog
// is set and read back, and the protocol of the socket checked. Last, the
// per-connection options ([ConnSockopt], and [KeepAlive]'s) are set once
// on a new socket of the listener's family and protocol, which is then
// closed: an option the kernel refuses (an unknown congestion control, a
// missing privilege) fails Listen rather than every Accept. network must
// be "tcp", "tcp4" or "tcp6". Errors are *net.OpError values whose chain
// reaches the cause, so errors.Is(err, syscall.EPERM) and
// errors.As(err, new(*sockopt.Error)) work; for a per-connection option
// the chain also holds an *[OptionError] naming it.
func (c *Config) Listen(ctx context.Context, network, address string) (*Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("listener: network %q is not one of tcp, tcp4, tcp6: %w", network, net.UnknownNetworkError(network))}
	}
	lc := c.lc
	if c.keepAlive != nil {
		lc.KeepAlive, lc.KeepAliveConfig = -1, net.KeepAliveConfig{} // set by Accept, in c.conn
	}
	ln, err := lc.Listen(ctx, network, address)
	if err != nil {
		return nil, err
	}
	tl := ln.(*net.TCPListener)
	l := &Listener{tl: tl, network: network, conn: c.conn, asked: c.backlog, errorLog: c.errorLog}
	if err := c.finishListen(ctx, l); err != nil {
		tl.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: tl.Addr(), Err: err}
	}
	return l, nil
}

// finishListen sets the backlog, reads back what the kernel kept and
// tries the per-connection options.
func (c *Config) finishListen(ctx context.Context, l *Listener) error {
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
	ipv6 := st.ipv6
	if !st.domainKnown {
		a := l.tl.Addr().(*net.TCPAddr).AddrPort().Addr()
		ipv6 = a.Is6() && !a.Is4In6()
	}
	return c.tryConnOptions(ctx, ipv6, st.mptcp)
}

// errTried ends the throw-away listen of tryConnOptions once its socket
// has been tried.
var errTried = errors.New("listener: per-connection options tried")

// rawConn gives sockopt.Apply the socket of a Control function.
type rawConn struct{ rc syscall.RawConn }

func (r rawConn) SyscallConn() (syscall.RawConn, error) { return r.rc, nil }

// tryConnOptions sets the per-connection options on a new socket like the
// ones the listener will accept (IPv6 or IPv4; Multipath TCP and plain TCP
// when mptcp, since an MPTCP listener accepts both), made through
// net.ListenConfig's Control and closed before bind. It returns an
// *OptionError naming the option the kernel refused.
func (c *Config) tryConnOptions(ctx context.Context, ipv6, mptcp bool) error {
	if len(c.conn) == 0 {
		return nil
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(mptcp) // Go falls back to plain TCP after errTried: both are tried
	var failed error
	lc.Control = func(_, _ string, rc syscall.RawConn) error {
		if err := sockopt.Apply(rawConn{rc}, c.conn...); err != nil && failed == nil {
			failed = err
		}
		return errTried
	}
	network, address := "tcp4", "127.0.0.1:0"
	if ipv6 {
		network, address = "tcp6", "[::1]:0"
	}
	ln, err := lc.Listen(ctx, network, address)
	if err == nil { // cannot happen: Control always fails
		ln.Close()
		return errors.New("listener: the socket for trying the per-connection options was not stopped before bind")
	}
	if failed != nil {
		var se *sockopt.Error
		if errors.As(failed, &se) {
			for i, o := range c.conn {
				if o == se.Option {
					return &OptionError{Option: c.connFrom[i], Err: fmt.Errorf(
						"refused on a new socket like the accepted ones, so every Accept would fail: %w", failed)}
				}
			}
		}
		return fmt.Errorf("listener: per-connection options: %w", failed)
	}
	if !errors.Is(err, errTried) {
		return fmt.Errorf("listener: making a socket to try the per-connection options on: %w", err)
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
	// errorLog logs the conns closed because an option failed; nil: the
	// standard logger.
	errorLog *log.Logger
	draining atomic.Bool // set by Drain: Accept returns net.ErrClosed
}

// Accept waits for the next connection, sets the per-connection options
// ([ConnSockopt], and [KeepAlive]'s) on it and returns it; the net.Conn is
// a *net.TCPConn. It implements net.Listener.
//
// Accept never returns a connection on which an option is missing. If an
// option cannot be set on a connection (Listen has set them all once on a
// test socket, so this is a failure that depends on the connection or the
// moment, such as a shortage of memory or a capability dropped since),
// Accept closes that connection, so the client sees it closed, logs the
// error to the [ErrorLog], and waits for the next connection. It does not
// return that error: net/http and gRPC sleep 5 ms to 1 s after every
// temporary Accept error, which would hold up the other clients, and many
// accept loops stop at any error.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptTCP is [Listener.Accept] returning the concrete type.
func (l *Listener) AcceptTCP() (*net.TCPConn, error) {
	for {
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
			l.log(err)
			continue
		}
		return c, nil
	}
}

// log writes err to the ErrorLog.
func (l *Listener) log(err error) {
	if l.errorLog != nil {
		l.errorLog.Print(err)
		return
	}
	log.Print(err)
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

// ConnOptionError says that an accepted connection was closed because a
// per-connection option ([ConnSockopt], or one of [KeepAlive]'s) could not
// be set on it. Accept logs it, inside a *net.OpError, to the [ErrorLog]
// and goes on to the next connection; [Listener.Drain] returns it.
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

// Temporary reports true: the listener keeps working.
func (e *ConnOptionError) Temporary() bool { return true }

// Timeout reports false.
func (e *ConnOptionError) Timeout() bool { return false }

var _ net.Listener = (*Listener)(nil)
