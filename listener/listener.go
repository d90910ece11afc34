package listener

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"sync/atomic"
	"syscall"

	"github.com/nettune/nettune/internal/opterr"
	"github.com/nettune/nettune/internal/optset"
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
// per-connection option the kernel refuses, for [FastOpen] when setting
// the queue fails and for a [Control] function's error. It unwraps to the
// cause, such as a *sockopt.Error.
type OptionError struct {
	// Option is the option refused; nil when no single option is.
	Option Option
	// Conflicts lists the options that Option cannot be combined with, if
	// that is why it was refused.
	Conflicts []Option
	// Err says what is wrong.
	Err error
}

// Error returns "<option>: <Err>", followed by " (conflicts with <a>, <b>)"
// when Conflicts is set, such as "listener.Backlog(-1): must be between 0
// (Go's default) and 2147483647".
func (e *OptionError) Error() string {
	return opterr.Message("listener", e.Option, e.Option == nil, e.Conflicts, e.Err)
}

// Unwrap returns Err.
func (e *OptionError) Unwrap() error { return e.Err }

// config is what the options build; New freezes it into a Config.
type config struct {
	listen        []optset.Entry[Option] // on the listening socket, in order
	conn          []optset.Entry[Option] // on every accepted conn, in order
	fastOpen      Option                 // the last FastOpen or FastOpenQueue, or nil
	fastOpenQueue int                    // 0: off; fastOpenBacklog: the backlog
	backlog       int                    // 0: Go's (somaxconn)
	strict        bool
	keepAlive     *net.KeepAliveConfig // nil: Go's default
	keepAliveOpt  Option
	mptcp         *bool // nil: Go decides, unless TCP-only options
	errorLog      *log.Logger
	control       []optset.ControlFunc // the Control options' run, in order
	connControl   []connControlOption
}

// Config is a frozen listener configuration made by [New]. Its Listen and
// ListenGroup methods may be called any number of times, and concurrently:
// a Config never changes after New.
type Config struct {
	opts   []Option
	listen []sockopt.Option
	// conn are the options set on every accepted conn: the KeepAliveConfig
	// option's socket options, then the ConnSockopt ones; connFrom[i] is
	// the Option that conn[i] comes from.
	conn        []sockopt.Option
	connFrom    []Option
	connControl []connControlOption
	control     []optset.ControlFunc
	// fastOpen is FastOpen(true) or FastOpenQueue(0), set after listen to
	// the backlog read back; nil otherwise.
	fastOpen Option
	backlog  int
	strict   bool
	lc       net.ListenConfig // Control, KeepAlive and MPTCP set
	tcpOnly  bool             // MPTCP was turned off for TCP-only options
	// keepAlive is the KeepAliveConfig option, or nil.
	keepAlive *net.KeepAliveConfig
	errorLog  *log.Logger // nil: the standard logger
}

// New returns a Config built from opts: it starts from Go's defaults,
// applies each option (which checks its own value), then checks the set:
// socket options must fit their socket (sockopt.Check with the listening
// and the accepted role), must not conflict, and Multipath TCP must not be
// asked for together with TCP-only options. It makes no system call. Every
// error it returns is an *[OptionError] naming the option.
func New(opts ...Option) (*Config, error) {
	c, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	listen := c.listenSet()
	if err := checkSet(c, listen); err != nil {
		return nil, err
	}
	cfg := &Config{
		opts:        append([]Option(nil), opts...),
		backlog:     c.backlog,
		strict:      c.strict,
		errorLog:    c.errorLog,
		control:     c.control,
		connControl: c.connControl,
	}
	cfg.listen = c.listenSockopts(listen)
	if c.fastOpenQueue == fastOpenBacklog && canSetBacklog {
		cfg.fastOpen = c.fastOpen // set after listen, to the backlog
	}
	cfg.setConnOptions(c)
	cfg.lc = cfg.netListenConfig(c, listen)
	return cfg, nil
}

// applyOptions applies opts in order to a zero config.
func applyOptions(opts []Option) (*config, error) {
	c := new(config)
	err := optset.Apply(opts, &OptionError{Err: errNilOption}, func(o Option) error { return o.apply(c) })
	if err != nil {
		return nil, err
	}
	return c, nil
}

var errNilOption = errors.New("nil Option")

// listenSet returns the listening socket's options with the one that Fast
// Open stands for: TCP_FASTOPEN with the queue asked for, or 1 (on) where
// the queue is the backlog; on Linux that one is set after listen instead
// and stays here for the checks of the set only.
func (c *config) listenSet() []optset.Entry[Option] {
	set := c.listen
	if c.fastOpen != nil {
		q := max(c.fastOpenQueue, 0)
		if c.fastOpenQueue == fastOpenBacklog {
			q = 1
		}
		set = append(set[:len(set):len(set)], optset.Entry[Option]{Sockopt: sockopt.FastOpen(q), From: c.fastOpen})
	}
	return set
}

// listenSockopts returns the socket options set before listen.
func (c *config) listenSockopts(set []optset.Entry[Option]) []sockopt.Option {
	var opts []sockopt.Option
	for _, e := range set {
		if e.From == c.fastOpen && c.fastOpenQueue == fastOpenBacklog && canSetBacklog {
			continue // set after listen
		}
		opts = append(opts, e.Sockopt)
	}
	return optset.Dedupe(opts)
}

// checkSet checks what no single option can: conflicts between them.
func checkSet(c *config, listen []optset.Entry[Option]) error {
	for _, set := range [][]optset.Entry[Option]{listen, c.conn} {
		if o, err := optset.Validate(set); err != nil {
			return &OptionError{Option: o, Err: err}
		}
	}
	if c.fastOpen != nil {
		isFastOpen := func(o sockopt.Option) bool { _, ok := o.(sockopt.FastOpen); return ok }
		if conflicts := optset.Matching(c.listen, isFastOpen); len(conflicts) > 0 {
			return &OptionError{Option: c.fastOpen, Conflicts: conflicts, Err: errors.New("TCP Fast Open configured two ways")}
		}
	}
	if ka := optset.Matching(c.conn, optset.IsKeepAlive); c.keepAlive != nil && len(ka) > 0 {
		return &OptionError{Option: c.keepAliveOpt, Conflicts: ka, Err: optset.ErrKeepAliveConflict}
	}
	if c.mptcp != nil && *c.mptcp {
		tcpOnly := append(optset.Matching(listen, sockopt.TCPOnly), optset.Matching(c.conn, sockopt.TCPOnly)...)
		if len(tcpOnly) > 0 {
			return &OptionError{Option: multipath(true), Conflicts: tcpOnly, Err: optset.ErrMPTCPConflict}
		}
	}
	return nil
}

// setConnOptions fills in the per-connection options: the KeepAliveConfig
// option's (Go sets keepalive on accepted conns itself and ignores the
// errors, so the Listener sets it as a per-connection option), then the
// ConnSockopt ones.
func (cfg *Config) setConnOptions(c *config) {
	if c.keepAlive != nil {
		cfg.keepAlive = c.keepAlive
		for _, o := range optset.KeepAliveOptions(*c.keepAlive) {
			cfg.conn = append(cfg.conn, o)
			cfg.connFrom = append(cfg.connFrom, c.keepAliveOpt)
		}
	}
	var conn []sockopt.Option
	for _, e := range c.conn {
		conn = append(conn, e.Sockopt)
	}
	for _, o := range optset.Dedupe(conn) {
		cfg.conn = append(cfg.conn, o)
		cfg.connFrom = append(cfg.connFrom, connSockopt{o})
	}
}

// netListenConfig returns the net.ListenConfig underneath cfg: Control,
// keepalive and the Multipath TCP setting.
func (cfg *Config) netListenConfig(c *config, listen []optset.Entry[Option]) net.ListenConfig {
	var lc net.ListenConfig
	lc.Control = optset.Chain(optset.Sockopts(sockopt.ListenControl, cfg.listen), cfg.control)
	if c.keepAlive != nil {
		lc.KeepAliveConfig = *c.keepAlive
		if !c.keepAlive.Enable {
			lc.KeepAlive = -1 // Go would turn it on otherwise
		}
	}
	cfg.tcpOnly = len(optset.Matching(listen, sockopt.TCPOnly)) > 0 || len(optset.Matching(c.conn, sockopt.TCPOnly)) > 0
	switch {
	case c.mptcp != nil:
		lc.SetMultipathTCP(*c.mptcp)
	case cfg.tcpOnly:
		lc.SetMultipathTCP(false)
	}
	return lc
}

// String lists the options the Config was made with.
func (c *Config) String() string {
	return "listener.Config{" + opterr.List(c.opts) + "}"
}

// ListenConfig returns the standard library configuration underneath c:
// its Control sets the listening socket's options and runs the [Control]
// options, its KeepAliveConfig is the [KeepAliveConfig] option (which
// net's Accept sets without checking errors) and its Multipath TCP setting
// is c's. It does not carry what net.ListenConfig cannot express: the
// [Backlog], [FastOpen](true)'s queue as long as the backlog, and the
// [ConnSockopt] and [ConnControl] options, which need the Accept of a
// [Listener]. Each call returns a fresh copy.
func (c *Config) ListenConfig() net.ListenConfig { return c.lc }

// Listen announces on the local TCP address, like net.ListenConfig.Listen,
// with c's options: socket options are set, and the [Control] functions
// run, before bind; then the backlog is set and read back, the protocol of
// the socket checked, and the Fast Open queue of [FastOpen](true) set to
// the backlog. Last, the per-connection options ([ConnSockopt], and
// [KeepAliveConfig]'s; not [ConnControl]) are set once on a new socket of the listener's family and protocol, which is then
// closed: an option the kernel refuses (an unknown congestion control, a
// missing privilege) fails Listen rather than every Accept. network must
// be "tcp", "tcp4" or "tcp6". Errors are *net.OpError values whose chain
// reaches the cause, so errors.Is(err, syscall.EPERM) and
// errors.As(err, new(*sockopt.Error)) work; for a per-connection option
// the chain also holds an *[OptionError] naming it.
func (c *Config) Listen(ctx context.Context, network, address string) (*Listener, error) {
	if err := checkNetwork(network); err != nil {
		return nil, err
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
	l := &Listener{tl: tl, network: network, conn: c.conn, connControl: c.connControl, asked: c.backlog, errorLog: c.errorLog}
	if err := c.finishListen(ctx, l); err != nil {
		tl.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: tl.Addr(), Err: err}
	}
	return l, nil
}

// checkNetwork returns the *net.OpError of Listen for a network other than
// tcp, tcp4 and tcp6.
func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("listener: network %q is not one of tcp, tcp4, tcp6: %w", network, net.UnknownNetworkError(network))}
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
	l.backlog = st.backlog
	if l.mptcp, err = sockopt.IsMPTCP(l.tl); err != nil {
		return err
	}
	if c.tcpOnly && l.mptcp {
		return errors.New("listener: the listening socket is Multipath TCP although Multipath TCP was turned off for TCP-only options")
	}
	if c.backlog > 0 && st.backlog < c.backlog && c.strict {
		return fmt.Errorf("%w: asked %d, the kernel kept %d", ErrBacklogTruncated, c.backlog, st.backlog)
	}
	if err := c.setFastOpenQueue(l); err != nil {
		return err
	}
	ipv6 := st.ipv6
	if !st.domainKnown {
		a := l.tl.Addr().(*net.TCPAddr).AddrPort().Addr()
		ipv6 = a.Is6() && !a.Is4In6()
	}
	return c.tryConnOptions(ctx, ipv6, l.mptcp)
}

// setFastOpenQueue sets, for FastOpen(true), the Fast Open queue of the
// listening socket to the backlog read back (Linux takes TCP_FASTOPEN on a
// listening socket).
func (c *Config) setFastOpenQueue(l *Listener) error {
	if c.fastOpen == nil {
		return nil
	}
	if err := sockopt.Apply(l.tl, sockopt.FastOpen(l.backlog)); err != nil {
		return &OptionError{Option: c.fastOpen, Err: err}
	}
	return nil
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
	tl          *net.TCPListener
	network     string
	conn        []sockopt.Option
	connControl []connControlOption
	backlog     int // read back after listen; 0 if unknown
	asked       int
	mptcp       bool
	// errorLog logs the conns closed because an option failed; nil: the
	// standard logger.
	errorLog *log.Logger
	draining atomic.Bool // set by Drain: Accept returns net.ErrClosed
}

// Accept waits for the next connection, sets the per-connection options
// ([ConnSockopt], and [KeepAliveConfig]'s) on it, runs the [ConnControl]
// functions and returns it; the net.Conn is a *net.TCPConn. It implements
// net.Listener.
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
	if len(l.conn) == 0 && len(l.connControl) == 0 {
		return nil
	}
	err := sockopt.Apply(c, l.conn...)
	for _, o := range l.connControl {
		if err != nil {
			break
		}
		err = o.run(c)
	}
	if err != nil {
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
// per-connection option ([ConnSockopt], or one of [KeepAliveConfig]'s)
// could not be set on it, or a [ConnControl] function failed. Accept logs
// it, inside a *net.OpError, to the [ErrorLog] and goes on to the next
// connection; [Listener.Drain] returns it.
type ConnOptionError struct {
	Remote net.Addr // the client of the closed connection
	Err    error    // the *sockopt.Error, or the *OptionError of a ConnControl
}

// Error says that the connection was closed and why.
func (e *ConnOptionError) Error() string {
	return "listener: connection closed, per-connection option not set: " + e.Err.Error()
}

// Unwrap returns Err.
func (e *ConnOptionError) Unwrap() error { return e.Err }

// Temporary reports true: the listener keeps working.
func (e *ConnOptionError) Temporary() bool { return true }

// Timeout reports false.
func (e *ConnOptionError) Timeout() bool { return false }

var _ net.Listener = (*Listener)(nil)
