package dialer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/nettune/nettune/internal/opterr"
	"github.com/nettune/nettune/internal/optset"
	"github.com/nettune/nettune/sockopt"
)

// Option configures a [Dialer] in [New]. The implementations are the option
// values of this package (Timeout, KeepAliveConfig, Sockopt, …); the set is
// closed. Every Option is a small comparable value that prints itself as
// the call that made it, such as "dialer.Timeout(5s)" or
// "dialer.Sockopt(TCP_USER_TIMEOUT=30s)", so options can be logged and
// compared.
type Option interface {
	// String is the option with its value, in the form of the call that
	// made it.
	String() string
	// apply checks the option's own value, without a system call, and
	// records it in c.
	apply(c *config) error
}

// AddrResolver looks up the IP addresses of a host. network is "ip", "ip4"
// or "ip6". *net.Resolver implements it, and so does any DNS cache with a
// LookupNetIP method of the same shape. The Dialer only reads the slice
// returned.
//
// A resolver that also has the method
//
//	AppendNetIP(ctx context.Context, dst []netip.Addr, network, host string) ([]netip.Addr, error)
//
// returning what LookupNetIP would, appended to dst (dnscache.Cache has
// it), is asked through that method, into a buffer of the dial's own: a
// cached answer then costs the dial no allocation.
type AddrResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Recorder receives connect times. A latency histogram with a
// Record(time.Duration) method fits. The Dialer calls Record from the
// goroutine that called DialContext, so a Recorder shared by Dialers used
// from several goroutines must be safe for concurrent use.
type Recorder interface {
	Record(d time.Duration)
}

// config is what the options build; New freezes it into a Dialer.
type config struct {
	timeout       time.Duration
	keepAlive     net.KeepAliveConfig
	keepAliveOpt  Option // the KeepAliveConfig option, or nil
	sockopts      []optset.Entry[Option]
	localAddr     netip.AddrPort
	fastOpen      int8 // 0 unset, 1 on, -1 off
	mptcp         int8 // 0 unset, 1 on, -1 off
	resolver      AddrResolver
	recorder      Recorder
	fallbackDelay time.Duration
	control       []optset.ControlFunc // the Control options' run, in order
	runAttempt    func(attempt func() (net.Conn, error)) (net.Conn, error)
	applied       []Option // every option, in order, for String
}

// OptionError is the error [New] returns for an option it refuses: a value
// out of range, or a combination of options that cannot be honoured. For a
// bad socket option, Err is the *sockopt.Error. A [Control] function's
// error reaches the caller of DialContext as an OptionError naming the
// Control option, inside the *net.OpError.
type OptionError struct {
	// Option is the option refused.
	Option Option
	// Conflicts lists the options that Option cannot be combined with, if
	// that is why it was refused.
	Conflicts []Option
	// Err says what is wrong.
	Err error
}

// Error returns "<option>: <Err>", followed by " (conflicts with <a>, <b>)"
// when Conflicts is set, such as
// "dialer.Timeout(-1s): must not be negative (0 means no timeout)".
func (e *OptionError) Error() string {
	return opterr.Message("dialer", e.Option, e.Option == nil, e.Conflicts, e.Err)
}

// Unwrap returns Err.
func (e *OptionError) Unwrap() error { return e.Err }

func refuse(o Option, format string, args ...any) error {
	return &OptionError{Option: o, Err: fmt.Errorf(format, args...)}
}

// Timeout bounds a whole dial: name resolution and every connect attempt.
// 0 means the default (no bound other than the context's deadline and the
// operating system's connect timeout); a negative value is an error. When
// the context has an earlier deadline, that one applies.
func Timeout(d time.Duration) Option { return timeoutOption(d) }

type timeoutOption time.Duration

func (o timeoutOption) String() string { return "dialer.Timeout(" + time.Duration(o).String() + ")" }

func (o timeoutOption) apply(c *config) error {
	if o < 0 {
		return refuse(o, "must not be negative (0 means no timeout)")
	}
	c.timeout = time.Duration(o)
	return nil
}

// KeepAliveConfig sets TCP keep-alive on every dialed connection
// (SO_KEEPALIVE and TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT), with the
// meaning net.KeepAliveConfig gives its fields:
//
//   - Enable true: keep-alive on; a zero Idle, Interval or Count takes Go's
//     default (15s, 15s, 9) and a negative one keeps the operating
//     system's value.
//   - Enable false with every field zero: keep-alive off.
//   - Enable false with a field set is refused by New: net.Dialer would
//     keep keep-alive on with its defaults and ignore the fields, which is
//     never what was meant. Write Enable: true to use them.
//
// Without this option a Dialer behaves like a zero net.Dialer: keep-alive
// on with Go's defaults. Idle and Interval must be whole seconds up to
// 32767s and Count at most 127 (the kernel's units and limits); other
// values are refused rather than rounded. Unlike net.Dialer, which ignores
// the errors of these settings, the Dialer fails a dial on which one
// cannot be set.
//
// Keep-alive probes are not sent while data is unacknowledged: to bound
// that case, add Sockopt(sockopt.UserTimeout(…)). sockopt.KeepAlive(bool)
// is the SO_KEEPALIVE switch alone, a lower layer; give keep-alive one way.
func KeepAliveConfig(cfg net.KeepAliveConfig) Option { return keepAliveOption(cfg) }

type keepAliveOption net.KeepAliveConfig

func (o keepAliveOption) String() string {
	return "dialer.KeepAliveConfig(" + optset.KeepAliveString(net.KeepAliveConfig(o)) + ")"
}

func (o keepAliveOption) apply(c *config) error {
	if err := optset.CheckKeepAlive(net.KeepAliveConfig(o)); err != nil {
		return &OptionError{Option: o, Err: err}
	}
	c.keepAlive = net.KeepAliveConfig(o)
	c.keepAliveOpt = o
	return nil
}

// Sockopt sets o on every socket the Dialer makes, before connect (so
// that buffer sizes, the MSS, Fast Open and the like take effect on the
// handshake). The options that Go itself sets after connect (TCP_NODELAY and
// the keepalive options) are set again on the connected socket, so the value
// asked for is the value the connection has.
//
// Give one Sockopt per socket option. Two that set the same socket
// option to different values make New fail; so does an option that has no
// effect on a dialed socket (see sockopt.Check), and a keepalive socket
// option together with [KeepAliveConfig].
func Sockopt(o sockopt.Option) Option { return sockoptOption{o} }

type sockoptOption struct{ o sockopt.Option }

func (o sockoptOption) String() string {
	if o.o == nil {
		return "dialer.Sockopt(<nil>)"
	}
	return "dialer.Sockopt(" + o.o.String() + ")"
}

func (o sockoptOption) apply(c *config) error {
	if o.o == nil {
		return refuse(o, "nil sockopt.Option")
	}
	if err := o.o.Validate(); err != nil {
		return &OptionError{Option: o, Err: err}
	}
	c.sockopts = append(c.sockopts, optset.Entry[Option]{Sockopt: o.o, From: o})
	return nil
}

// LocalAddr binds every dialed socket to addr before connect. A zero port
// lets the kernel pick one. With a [Resolver], only the resolved addresses
// of addr's family are dialed.
func LocalAddr(addr netip.AddrPort) Option { return localAddrOption(addr) }

type localAddrOption netip.AddrPort

func (o localAddrOption) String() string {
	return "dialer.LocalAddr(" + netip.AddrPort(o).String() + ")"
}

func (o localAddrOption) apply(c *config) error {
	if !netip.AddrPort(o).Addr().IsValid() {
		return refuse(o, "not a valid IP address")
	}
	c.localAddr = netip.AddrPort(o)
	return nil
}

// FastOpen turns TCP Fast Open on the client side on or off (Linux
// TCP_FASTOPEN_CONNECT, set before connect). Read the package
// documentation's section on Fast Open before turning it on: a dial can
// succeed before the peer has answered, and the first write may be replayed.
// It is the same as Sockopt(sockopt.FastOpenConnect(on)).
func FastOpen(on bool) Option { return fastOpenOption(on) }

type fastOpenOption bool

func (o fastOpenOption) String() string {
	return "dialer.FastOpen(" + strconv.FormatBool(bool(o)) + ")"
}

func (o fastOpenOption) apply(c *config) error {
	c.fastOpen = -1
	if o {
		c.fastOpen = 1
	}
	return nil
}

// MultipathTCP asks for Multipath TCP (Linux MPTCP) on or off. Without this
// option the Dialer follows Go's default (off for dialers unless GODEBUG
// multipathtcp says otherwise), except that it turns MPTCP off when a
// Sockopt is one that MPTCP refuses or ignores (sockopt.TCPOnly). With
// MultipathTCP(true), such options make New fail: the Dialer never hands
// back a connection on which an option it was given silently failed. Where
// the kernel has no MPTCP, Go falls back to TCP.
func MultipathTCP(on bool) Option { return mptcpOption(on) }

type mptcpOption bool

func (o mptcpOption) String() string {
	return "dialer.MultipathTCP(" + strconv.FormatBool(bool(o)) + ")"
}

func (o mptcpOption) apply(c *config) error {
	c.mptcp = -1
	if o {
		c.mptcp = 1
	}
	return nil
}

// Resolver makes the Dialer look host names up with r and dial the
// addresses itself, the way net does: Happy Eyeballs across IPv6 and IPv4,
// a deadline for each attempt, and an [*Error] listing every failure and
// every address not tried when all fail. Without it the Dialer does the
// same with a zero net.Resolver (Go's default resolver).
func Resolver(r AddrResolver) Option { return resolverOption{r} }

type resolverOption struct{ r AddrResolver }

func (o resolverOption) String() string { return fmt.Sprintf("dialer.Resolver(%T)", o.r) }

func (o resolverOption) apply(c *config) error {
	if o.r == nil {
		return refuse(o, "nil AddrResolver")
	}
	c.resolver = o.r
	return nil
}

// RecordConnectTime makes the Dialer report connect times to r: one Record
// call per successful dial, with the time the connect of the winning attempt
// took, from the connect system call (after the socket options were set) to
// the established connection. Name resolution, the Happy Eyeballs delay and
// other attempts are not included. A failed dial records nothing. With Fast
// Open and a cached cookie the connect returns before any packet is sent, so
// the time recorded is near zero.
func RecordConnectTime(r Recorder) Option { return recorderOption{r} }

type recorderOption struct{ r Recorder }

func (o recorderOption) String() string { return fmt.Sprintf("dialer.RecordConnectTime(%T)", o.r) }

func (o recorderOption) apply(c *config) error {
	if o.r == nil {
		return refuse(o, "nil Recorder")
	}
	c.recorder = o.r
	return nil
}

// FallbackDelay is how long an attempt may go unanswered before the next
// address is tried in parallel (RFC 8305's Connection Attempt Delay).
// 0 means the default (300ms, like net.Dialer's); a negative value turns it
// off: addresses are then tried one after another in the resolver's order.
func FallbackDelay(d time.Duration) Option { return fallbackDelayOption(d) }

type fallbackDelayOption time.Duration

func (o fallbackDelayOption) String() string {
	return "dialer.FallbackDelay(" + time.Duration(o).String() + ")"
}

func (o fallbackDelayOption) apply(c *config) error {
	c.fallbackDelay = time.Duration(o)
	return nil
}

// Control runs fn on every socket the Dialer makes, before connect and
// after the Dialer has set its own socket options ([Sockopt], [FastOpen]),
// so fn can set what this package does not list (IP_FREEBIND,
// TCP_SYNCNT, …) or override a value. An error from fn aborts the attempt
// like a socket option's: DialContext returns a *net.OpError whose chain
// holds an [*OptionError] naming the Control option and then fn's error.
// Several Control options run in the order given. fn is called from the
// goroutine of each attempt, so with Happy Eyeballs it may run
// concurrently with itself.
//
// Nothing checks what fn does: New cannot refuse it, and [Dialer.NetDialer]
// copies it. For an option that is one setsockopt call,
// Sockopt(sockopt.RawInt(level, name, value)) or sockopt.Raw is the
// alternative that is checked: its shape is validated in New, its error
// names it, and sockopt.Verify reads it back.
func Control(fn func(network, address string, c syscall.RawConn) error) Option {
	if fn == nil {
		return controlOption{}
	}
	return controlOption{&fn}
}

// controlOption holds a pointer so that it stays comparable.
type controlOption struct{ fn *optset.ControlFunc }

func (o controlOption) String() string {
	if o.fn == nil {
		return "dialer.Control(nil)"
	}
	return "dialer.Control(func)"
}

func (o controlOption) apply(c *config) error {
	if o.fn == nil {
		return refuse(o, "nil function")
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

// RunAttempt makes every connection attempt (one per address the Dialer
// tries, each on a goroutine of its own in a Happy Eyeballs race) go
// through run, which must call attempt once, where the attempt's socket
// is to be made, and return its results. The use is a socket made in
// another network namespace: a thread moved there with setns(2) holds the
// namespace for the goroutine locked to it, while the Dialer's attempts
// run on goroutines of their own. netlab.Host.Run is such a function:
//
//	dialer.RunAttempt(func(attempt func() (net.Conn, error)) (c net.Conn, err error) {
//		err = host.Run(func() error { c, err = attempt(); return err })
//		return c, err
//	})
//
// A run that returns neither a conn nor an error fails the attempt with an
// error saying so. [Dialer.NetDialer] cannot carry run: its copy dials on
// the caller's goroutine.
func RunAttempt(run func(attempt func() (net.Conn, error)) (net.Conn, error)) Option {
	if run == nil {
		return runAttemptOption{}
	}
	return runAttemptOption{&run}
}

// runAttemptOption holds a pointer so that it stays comparable.
type runAttemptOption struct {
	run *func(attempt func() (net.Conn, error)) (net.Conn, error)
}

func (o runAttemptOption) String() string {
	if o.run == nil {
		return "dialer.RunAttempt(nil)"
	}
	return "dialer.RunAttempt(func)"
}

func (o runAttemptOption) apply(c *config) error {
	if o.run == nil {
		return refuse(o, "nil function")
	}
	c.runAttempt = *o.run
	return nil
}

var errNilOption = errors.New("nil Option")
