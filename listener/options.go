package listener

import (
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/nettune/nettune/internal/optset"
	"github.com/nettune/nettune/sockopt"
)

// Option configures a [Config]. The implementations are the values returned
// by the functions of this package (Sockopt, ConnSockopt, Backlog, …); the
// set is closed. Every Option is a small comparable value that prints
// itself as the call that made it, such as "listener.Backlog(1024)", so a
// set of options can be logged and compared.
//
// Options that take a single value (Backlog, StrictBacklog, FastOpen,
// KeepAliveConfig, MultipathTCP) follow "the last one wins". Socket options
// may repeat only with the same value: two different values for one socket
// option make [New] fail.
type Option interface {
	// String prints the option as the call that made it, such as
	// "listener.Backlog(1024)".
	String() string

	apply(*config) error
}

// Sockopt sets o on the listening socket, before bind and listen. Options
// a listening socket passes on to the connections it accepts and that Go
// then overwrites on every accepted connection (TCP_NODELAY, SO_KEEPALIVE
// and the keepalive timers) are refused here: set them with [ConnSockopt].
func Sockopt(o sockopt.Option) Option { return sockoptOption{o} }

// ConnSockopt sets o on every connection the listener accepts, after Go
// has set its own defaults (TCP_NODELAY on, keepalive every 15 s), so o
// wins over them. Listen sets o once on a new socket like the accepted
// ones and fails if the kernel refuses it. If setting it fails on an
// accepted connection, Accept closes that connection, logs why and goes on
// to the next: see [Listener.Accept].
func ConnSockopt(o sockopt.Option) Option { return connSockopt{o} }

// FastOpen turns TCP Fast Open on the server side on or off (TCP_FASTOPEN;
// the kernel accepts data in a SYN only when bit 2, value 2, of
// net.ipv4.tcp_fastopen is set). FastOpen(true) makes the Fast Open queue
// (how many connections whose SYN carried data may wait for Accept) as
// long as the listen backlog: on Linux, Listen sets TCP_FASTOPEN after
// listen to the backlog it read back, the number [Listener.Backlog]
// reports as got (the [Backlog] asked for, or net.core.somaxconn, at most
// somaxconn). On the BSDs, where TCP_FASTOPEN is an on/off switch, the
// queue is the listen backlog too. To choose the length, use
// [FastOpenQueue]. FastOpen(false) sets TCP_FASTOPEN to 0.
func FastOpen(on bool) Option { return fastOpen(on) }

// FastOpenQueue turns TCP Fast Open on with a queue of n connections: it
// is Sockopt(sockopt.FastOpen(n)), set before listen. 0 means the default
// (the listen backlog, as [FastOpen](true)); a negative value is an error.
func FastOpenQueue(n int) Option { return fastOpenQueue(n) }

// DeferAccept makes Accept return a connection only once its first data
// has arrived, or after d. The kernel counts whole seconds and rounds up to
// its SYN-ACK retransmit schedule (5s reads back as 7s). A protocol where
// the server speaks first (SMTP, MySQL, …) stalls behind it for the full d.
// It sets Sockopt(sockopt.DeferAccept(d)).
func DeferAccept(d time.Duration) Option {
	return shorthand{"listener.DeferAccept(" + d.String() + ")", sockopt.DeferAccept(d)}
}

// ReusePort sets SO_REUSEPORT on the listening socket, so that several
// sockets can listen on one address. [Config.ListenGroup] sets it itself.
// It sets Sockopt(sockopt.ReusePort(on)).
func ReusePort(on bool) Option {
	return shorthand{"listener.ReusePort(" + strconv.FormatBool(on) + ")", sockopt.ReusePort(on)}
}

// Backlog sets the length of the accept queue: connections the kernel has
// completed and that wait for Accept. Go always listens with
// net.core.somaxconn (read once per process); Listen listens again with n
// on the live socket and reads back what the kernel kept, which is at most
// somaxconn: see [Listener.Backlog] and [StrictBacklog]. 0 means the
// default (Go's choice, somaxconn); a negative value is an error. Backlog
// needs Linux, where the effective value can be read back; elsewhere [New]
// returns an error wrapping errors.ErrUnsupported.
func Backlog(n int) Option { return backlog(n) }

// StrictBacklog makes Listen fail with an error wrapping
// [ErrBacklogTruncated] when net.core.somaxconn truncates the [Backlog].
// Without it Listen succeeds and [Listener.Backlog] reports both values.
func StrictBacklog(on bool) Option { return strictBacklog(on) }

// KeepAliveConfig sets TCP keep-alive on every accepted connection
// (SO_KEEPALIVE and TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT), with the
// meaning net.ListenConfig.KeepAliveConfig gives its fields:
//
//   - Enable true: keep-alive on; a zero Idle, Interval or Count takes Go's
//     default (15s, 15s, 9) and a negative one keeps the operating
//     system's value.
//   - Enable false with every field zero: keep-alive off (Go's default
//     would turn it on with 15 s).
//   - Enable false with a field set is refused by New: net would keep
//     keep-alive on with its defaults and ignore the fields, which is never
//     what was meant. Write Enable: true to use them.
//
// Idle and Interval must be whole seconds up to 32767s and Count at most
// 127 (the kernel's units and limits). Unlike net.ListenConfig, whose
// Accept ignores the errors of these settings, the Listener sets them
// itself as per-connection options, checked at Listen and on every Accept
// like [ConnSockopt]. Without this option Go's Accept sets its default (on,
// 15 s) and ignores its errors, as net does. It conflicts with keepalive
// options given to [ConnSockopt] (sockopt.KeepAlive(bool) is the
// SO_KEEPALIVE switch alone, a lower layer).
func KeepAliveConfig(cfg net.KeepAliveConfig) Option { return keepAlive(cfg) }

// ErrorLog sets the logger for the connections that Accept closes because
// a [ConnSockopt], [KeepAliveConfig] or [ConnControl] option could not be
// set on them (one line each, the *net.OpError wrapping a
// *[ConnOptionError]). nil, the default, logs through the log package's
// standard logger, as http.Server's ErrorLog does; to send the lines
// elsewhere, pass a logger of your own (slog.NewLogLogger adapts a
// *slog.Logger).
func ErrorLog(l *log.Logger) Option { return errorLog{l} }

// MultipathTCP turns Multipath TCP on or off for the listening socket.
// Without it, Go decides (on by default for applications whose go.mod says
// go 1.24 or later), except that a Config holding an option a Multipath TCP
// socket refuses, ignores or does not pass on ([sockopt.TCPOnly]) turns it
// off. MultipathTCP(true) together with such an option makes [New] fail.
func MultipathTCP(on bool) Option { return multipath(on) }

// Control runs fn on the listening socket before bind and listen, after
// the Config's own socket options ([Sockopt] and the shorthands for it), so
// fn can set what this package does not list (IP_FREEBIND, IPV6_V6ONLY, a
// reuse-port BPF program, …) or override a value. An error from fn fails
// Listen with a *net.OpError whose chain holds an *[OptionError] naming the
// Control option and then fn's error. Several Control options run in the
// order given; in a [Config.ListenGroup] fn runs for every listener.
//
// Nothing checks what fn does, and [Config.ListenConfig] copies it. For an
// option that is one setsockopt call, Sockopt(sockopt.RawInt(level, name,
// value)) or sockopt.Raw is the alternative that is checked: its shape is
// validated in New, its error names it, and sockopt.Verify reads it back.
func Control(fn func(network, address string, c syscall.RawConn) error) Option {
	if fn == nil {
		return controlOption{}
	}
	return controlOption{&fn}
}

// ConnControl runs fn on every accepted connection, after the
// per-connection options ([ConnSockopt], [KeepAliveConfig]). An error from
// fn is handled like a per-connection option that cannot be set: Accept
// closes the connection, logs a [ConnOptionError] (whose chain holds an
// *[OptionError] naming the ConnControl option and fn's error) to the
// [ErrorLog] and goes on to the next. Listen does not try fn beforehand,
// as it does the [ConnSockopt] options on a throw-away socket: fn may
// count, register or otherwise act on the connections it sees, and a
// socket that is neither connected nor accepted would mislead it. fn runs
// in the goroutine that called Accept. For an option that is one
// setsockopt call, ConnSockopt(sockopt.RawInt(level, name, value)) is
// checked at Listen and read back by sockopt.Verify.
func ConnControl(fn func(c syscall.RawConn) error) Option {
	if fn == nil {
		return connControlOption{}
	}
	return connControlOption{&fn}
}

type sockoptOption struct{ o sockopt.Option }

func (o sockoptOption) String() string { return fmt.Sprintf("listener.Sockopt(%v)", o.o) }
func (o sockoptOption) apply(c *config) error {
	return addSockopt(&c.listen, o, o.o, sockopt.Listening, sockopt.Accepted,
		"Go sets it again on every accepted connection: use listener.ConnSockopt(%v)")
}

type connSockopt struct{ o sockopt.Option }

func (o connSockopt) String() string { return fmt.Sprintf("listener.ConnSockopt(%v)", o.o) }
func (o connSockopt) apply(c *config) error {
	return addSockopt(&c.conn, o, o.o, sockopt.Accepted, sockopt.Listening,
		"set it on the listening socket with listener.Sockopt(%v)")
}

// shorthand is an option that sets one socket option on the listening
// socket, like Sockopt, and prints as the call that made it.
type shorthand struct {
	call string
	o    sockopt.Option
}

func (o shorthand) String() string { return o.call }
func (o shorthand) apply(c *config) error {
	return addSockopt(&c.listen, o, o.o, sockopt.Listening, sockopt.Accepted, "")
}

// addSockopt validates so, given as o, for a socket in role and appends it
// to dst. When so fits the other role instead, the error says where it
// belongs (hint takes so).
func addSockopt(dst *[]optset.Entry[Option], o Option, so sockopt.Option, role, other sockopt.Role, hint string) error {
	if so == nil {
		return &OptionError{Option: o, Err: errors.New("nil sockopt.Option")}
	}
	if err := so.Validate(); err != nil {
		return &OptionError{Option: o, Err: err}
	}
	if err := sockopt.Check(role, so); err != nil {
		if hint != "" && sockopt.Check(other, so) == nil {
			err = fmt.Errorf("%w; "+hint, err, so)
		}
		return &OptionError{Option: o, Err: err}
	}
	*dst = append(*dst, optset.Entry[Option]{Sockopt: so, From: o})
	return nil
}

// fastOpenBacklog is config.fastOpenQueue for a queue as long as the
// listen backlog.
const fastOpenBacklog = -1

type fastOpen bool

func (o fastOpen) String() string { return "listener.FastOpen(" + strconv.FormatBool(bool(o)) + ")" }
func (o fastOpen) apply(c *config) error {
	c.fastOpen, c.fastOpenQueue = o, 0
	if o {
		c.fastOpenQueue = fastOpenBacklog
	}
	return nil
}

type fastOpenQueue int

func (o fastOpenQueue) String() string { return "listener.FastOpenQueue(" + strconv.Itoa(int(o)) + ")" }
func (o fastOpenQueue) apply(c *config) error {
	if o < 0 {
		return &OptionError{Option: o, Err: errors.New("must not be negative (0 means the listen backlog)")}
	}
	if err := sockopt.FastOpen(o).Validate(); err != nil {
		return &OptionError{Option: o, Err: err}
	}
	c.fastOpen, c.fastOpenQueue = o, int(o)
	if o == 0 {
		c.fastOpenQueue = fastOpenBacklog
	}
	return nil
}

type backlog int

func (o backlog) String() string { return "listener.Backlog(" + strconv.Itoa(int(o)) + ")" }
func (o backlog) apply(c *config) error {
	if o < 0 || o > math.MaxInt32 {
		return &OptionError{Option: o, Err: fmt.Errorf("must be between 0 (Go's default) and %d", math.MaxInt32)}
	}
	if o > 0 && !canSetBacklog {
		return &OptionError{Option: o, Err: fmt.Errorf("the effective backlog cannot be read back on this platform: %w", errUnsupported)}
	}
	c.backlog = int(o)
	return nil
}

type strictBacklog bool

func (o strictBacklog) String() string {
	return "listener.StrictBacklog(" + strconv.FormatBool(bool(o)) + ")"
}
func (o strictBacklog) apply(c *config) error { c.strict = bool(o); return nil }

type keepAlive net.KeepAliveConfig

func (o keepAlive) String() string {
	return "listener.KeepAliveConfig(" + optset.KeepAliveString(net.KeepAliveConfig(o)) + ")"
}
func (o keepAlive) apply(c *config) error {
	if err := optset.CheckKeepAlive(net.KeepAliveConfig(o)); err != nil {
		return &OptionError{Option: o, Err: err}
	}
	cfg := net.KeepAliveConfig(o)
	c.keepAlive = &cfg
	c.keepAliveOpt = o
	return nil
}

type errorLog struct{ l *log.Logger }

func (o errorLog) String() string {
	if o.l == nil {
		return "listener.ErrorLog(nil)"
	}
	return "listener.ErrorLog(*log.Logger)"
}
func (o errorLog) apply(c *config) error { c.errorLog = o.l; return nil }

type multipath bool

func (o multipath) String() string {
	return "listener.MultipathTCP(" + strconv.FormatBool(bool(o)) + ")"
}
func (o multipath) apply(c *config) error {
	v := bool(o)
	c.mptcp = &v
	return nil
}

// controlOption holds a pointer so that it stays comparable.
type controlOption struct{ fn *optset.ControlFunc }

func (o controlOption) String() string {
	if o.fn == nil {
		return "listener.Control(nil)"
	}
	return "listener.Control(func)"
}
func (o controlOption) apply(c *config) error {
	if o.fn == nil {
		return &OptionError{Option: o, Err: errors.New("nil function")}
	}
	c.control = append(c.control, o.run)
	return nil
}

// run calls the function, wrapping its error in an *OptionError.
func (o controlOption) run(network, address string, c syscall.RawConn) error {
	if err := (*o.fn)(network, address, c); err != nil {
		return &OptionError{Option: o, Err: err}
	}
	return nil
}

// connControlOption holds a pointer so that it stays comparable.
type connControlOption struct{ fn *func(syscall.RawConn) error }

func (o connControlOption) String() string {
	if o.fn == nil {
		return "listener.ConnControl(nil)"
	}
	return "listener.ConnControl(func)"
}
func (o connControlOption) apply(c *config) error {
	if o.fn == nil {
		return &OptionError{Option: o, Err: errors.New("nil function")}
	}
	c.connControl = append(c.connControl, o)
	return nil
}

// run calls the function on c, wrapping its error in an *OptionError.
func (o connControlOption) run(c syscall.Conn) error {
	rc, err := c.SyscallConn()
	if err == nil {
		err = (*o.fn)(rc)
	}
	if err != nil {
		return &OptionError{Option: o, Err: err}
	}
	return nil
}
