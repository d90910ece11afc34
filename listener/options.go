package listener

import (
	"fmt"
	"log"
	"math"
	"net"
	"time"

	"github.com/nettune/nettune/sockopt"
)

// Option configures a [Config]. The implementations are the values returned
// by the functions of this package (Sockopt, ConnSockopt, Backlog, …); the
// set is closed. Every Option is a small comparable value that prints
// itself, so a set of options can be logged and compared.
//
// Options that take a single value (Backlog, StrictBacklog, KeepAlive,
// MultipathTCP) follow "the last one wins". Socket options may repeat only
// with the same value: two different values for one socket option make
// [New] fail.
type Option interface {
	// String prints the option with its value, such as "Backlog(1024)".
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

// FastOpen sets the TCP Fast Open queue length of the listening socket:
// how many connections whose SYN carried data may wait for Accept. Zero
// turns it off. The kernel accepts data in a SYN only when bit 2 (value 2)
// of net.ipv4.tcp_fastopen is set. It is short for
// Sockopt(sockopt.FastOpen(queue)).
func FastOpen(queue int) Option { return Sockopt(sockopt.FastOpen(queue)) }

// DeferAccept makes Accept return a connection only once its first data
// has arrived, or after d. The kernel counts whole seconds and rounds up to
// its SYN-ACK retransmit schedule (5s reads back as 7s). A protocol where
// the server speaks first (SMTP, MySQL, …) stalls behind it for the full d.
// It is short for Sockopt(sockopt.DeferAccept(d)).
func DeferAccept(d time.Duration) Option { return Sockopt(sockopt.DeferAccept(d)) }

// ReusePort sets SO_REUSEPORT on the listening socket, so that several
// sockets can listen on one address. [Config.ListenGroup] sets it itself.
// It is short for Sockopt(sockopt.ReusePort(on)).
func ReusePort(on bool) Option { return Sockopt(sockopt.ReusePort(on)) }

// Backlog sets the length of the accept queue: connections the kernel has
// completed and that wait for Accept. Go always listens with
// net.core.somaxconn (read once per process); Listen listens again with n
// on the live socket and reads back what the kernel kept, which is at most
// somaxconn: see [Listener.Backlog] and [StrictBacklog]. Zero keeps Go's
// choice. Backlog needs Linux, where the effective value can be read back;
// elsewhere [New] returns an error wrapping errors.ErrUnsupported.
func Backlog(n int) Option { return backlog(n) }

// StrictBacklog makes Listen fail with an error wrapping
// [ErrBacklogTruncated] when net.core.somaxconn truncates the [Backlog].
// Without it Listen succeeds and [Listener.Backlog] reports both values.
func StrictBacklog(on bool) Option { return strictBacklog(on) }

// KeepAlive sets the keepalive configuration of every accepted connection,
// with the meaning net.ListenConfig.KeepAliveConfig gives it: with Enable
// false keepalive is off (Go's default would turn it on with 15 s),
// otherwise zero fields take Go's defaults (idle 15 s, interval 15 s, 9
// probes) and negative ones leave the system's value. Unlike
// net.ListenConfig, whose Accept ignores the errors of these settings, the
// Listener sets them itself as per-connection options (SO_KEEPALIVE,
// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT), checked at Listen and on every
// Accept like [ConnSockopt]. Without this option Go's Accept sets its
// default (on, 15 s) and ignores its errors, as net does. It conflicts with
// keepalive options given to [ConnSockopt].
func KeepAlive(cfg net.KeepAliveConfig) Option { return keepAlive(cfg) }

// ErrorLog sets the logger for the connections that Accept closes because
// a [ConnSockopt] or [KeepAlive] option could not be set on them (one line
// each, the *net.OpError wrapping a *[ConnOptionError]). nil, the default,
// logs through the log package's standard logger, as http.Server's
// ErrorLog does; to send the lines elsewhere, pass a logger of your own
// (slog.NewLogLogger adapts a *slog.Logger).
func ErrorLog(l *log.Logger) Option { return errorLog{l} }

// MultipathTCP turns Multipath TCP on or off for the listening socket.
// Without it, Go decides (on by default for applications whose go.mod says
// go 1.24 or later), except that a Config holding an option a Multipath TCP
// socket refuses, ignores or does not pass on ([sockopt.TCPOnly]) turns it
// off. MultipathTCP(true) together with such an option makes [New] fail.
func MultipathTCP(on bool) Option { return multipath(on) }

type sockoptOption struct{ o sockopt.Option }

func (o sockoptOption) String() string { return fmt.Sprintf("Sockopt(%v)", o.o) }
func (o sockoptOption) apply(c *config) error {
	return addSockopt(&c.listen, o, o.o, sockopt.Listening, sockopt.Accepted,
		"Go sets it again on every accepted connection: use ConnSockopt(%v)")
}

type connSockopt struct{ o sockopt.Option }

func (o connSockopt) String() string { return fmt.Sprintf("ConnSockopt(%v)", o.o) }
func (o connSockopt) apply(c *config) error {
	return addSockopt(&c.conn, o, o.o, sockopt.Accepted, sockopt.Listening,
		"set it on the listening socket with Sockopt(%v)")
}

// addSockopt validates so, given as o, for a socket in role and appends it
// to dst. When so fits the other role instead, the error says where it
// belongs (hint takes so).
func addSockopt(dst *[]sockopt.Option, o Option, so sockopt.Option, role, other sockopt.Role, hint string) error {
	if so == nil {
		return &OptionError{Option: o, Err: fmt.Errorf("nil sockopt.Option")}
	}
	if err := so.Validate(); err != nil {
		return &OptionError{Option: o, Err: err}
	}
	if err := sockopt.Check(role, so); err != nil {
		if sockopt.Check(other, so) == nil {
			err = fmt.Errorf("%w; "+hint, err, so)
		}
		return &OptionError{Option: o, Err: err}
	}
	*dst = append(*dst, so)
	return nil
}

type backlog int

func (o backlog) String() string { return fmt.Sprintf("Backlog(%d)", int(o)) }
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

func (o strictBacklog) String() string        { return fmt.Sprintf("StrictBacklog(%t)", bool(o)) }
func (o strictBacklog) apply(c *config) error { c.strict = bool(o); return nil }

type keepAlive net.KeepAliveConfig

func (o keepAlive) String() string {
	return fmt.Sprintf("KeepAlive(enable=%t idle=%v interval=%v count=%d)", o.Enable, o.Idle, o.Interval, o.Count)
}
func (o keepAlive) apply(c *config) error {
	if !o.Enable && (o.Idle != 0 || o.Interval != 0 || o.Count != 0) {
		return &OptionError{Option: o, Err: fmt.Errorf("idle, interval and count are set but Enable is false")}
	}
	for _, d := range []time.Duration{o.Idle, o.Interval} {
		if d > 0 && (d%time.Second != 0 || d > 32767*time.Second) {
			return &OptionError{Option: o, Err: fmt.Errorf("%v is not a whole number of seconds up to 32767s (the kernel counts seconds)", d)}
		}
	}
	if o.Count > 127 {
		return &OptionError{Option: o, Err: fmt.Errorf("count %d exceeds the kernel's maximum 127", o.Count)}
	}
	cfg := net.KeepAliveConfig(o)
	c.keepAlive = &cfg
	c.keepAliveOpt = o
	return nil
}

type errorLog struct{ l *log.Logger }

func (o errorLog) String() string {
	if o.l == nil {
		return "ErrorLog(nil)"
	}
	return "ErrorLog(*log.Logger)"
}
func (o errorLog) apply(c *config) error { c.errorLog = o.l; return nil }

type multipath bool

func (o multipath) String() string { return fmt.Sprintf("MultipathTCP(%t)", bool(o)) }
func (o multipath) apply(c *config) error {
	v := bool(o)
	c.mptcp = &v
	return nil
}
