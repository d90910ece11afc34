package dialer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/nettune/nettune/sockopt"
)

// Option configures a [Dialer] in [New]. The implementations are the option
// values of this package (Timeout, KeepAlive, SocketOption, …); the set is
// closed. Every Option is a small comparable value that prints itself, such
// as "Timeout(5s)" or "SocketOption(TCP_USER_TIMEOUT=30s)", so options can be
// logged and compared.
type Option interface {
	// String is the option with its value, in the form of the call that
	// made it.
	String() string
	// apply checks the option's own value, without a system call, and
	// records it in c.
	apply(c *config) error
}

// Resolver looks up the IP addresses of a host. network is "ip", "ip4" or
// "ip6". *net.Resolver implements it, and so does any DNS cache with a
// LookupNetIP method of the same shape.
type Resolver interface {
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
	keepAliveSet  bool
	sockopts      []sockopt.Option
	localAddr     netip.AddrPort
	fastOpen      int8 // 0 unset, 1 on, -1 off
	mptcp         int8 // 0 unset, 1 on, -1 off
	resolver      Resolver
	recorder      Recorder
	fallbackDelay time.Duration
	applied       []Option // every option, in order, for String and errors
}

// OptionError is the error [New] returns for an option it refuses: a value
// out of range, or a combination of options that cannot be honoured. Errors
// of socket options themselves are *sockopt.Error, reachable with errors.As
// through the error New returns.
type OptionError struct {
	// Option is the option refused.
	Option Option
	// Conflicts lists the options that Option cannot be combined with, if
	// that is why it was refused.
	Conflicts []Option
	// Err says what is wrong.
	Err error
}

func (e *OptionError) Error() string { return "dialer: " + e.Option.String() + ": " + e.Err.Error() }

func (e *OptionError) Unwrap() error { return e.Err }

func refuse(o Option, format string, args ...any) error {
	return &OptionError{Option: o, Err: fmt.Errorf(format, args...)}
}

// Timeout bounds a whole dial: name resolution and every connect attempt.
// Zero, the default, means no bound other than the context's deadline (and
// the operating system's connect timeout); a negative value is refused. When
// the context has an earlier deadline, that one applies.
func Timeout(d time.Duration) Option { return timeoutOption(d) }

type timeoutOption time.Duration

func (o timeoutOption) String() string { return "Timeout(" + time.Duration(o).String() + ")" }

func (o timeoutOption) apply(c *config) error {
	if o < 0 {
		return refuse(o, "must not be negative (0 means no timeout)")
	}
	c.timeout = time.Duration(o)
	return nil
}

// Limits Linux puts on keepalive settings (MAX_TCP_KEEPIDLE,
// MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT); New applies them on every platform so
// that a configuration behaves the same wherever it runs.
const (
	maxKeepAliveSeconds = 32767
	maxKeepAliveCount   = 127
)

// KeepAlive sets TCP keepalive on every dialed connection, with the meaning
// net.KeepAliveConfig gives its fields: with Enable false keepalive is off;
// with Enable true a zero Idle, Interval or Count takes Go's default (15s,
// 15s, 9) and a negative one keeps the operating system's default.
//
// Without this option a Dialer behaves like a zero net.Dialer: keepalive on
// with Go's defaults. Idle and Interval must be whole seconds up to 32767s
// and Count at most 127 (the kernel's units and limits); other values are
// refused rather than rounded.
//
// Keepalive probes are not sent while data is unacknowledged: to bound that
// case, add SocketOption(sockopt.UserTimeout(…)).
func KeepAlive(cfg net.KeepAliveConfig) Option { return keepAliveOption(cfg) }

type keepAliveOption net.KeepAliveConfig

func (o keepAliveOption) String() string {
	if !o.Enable {
		return "KeepAlive(off)"
	}
	return fmt.Sprintf("KeepAlive(idle=%v interval=%v count=%d)", o.Idle, o.Interval, o.Count)
}

func (o keepAliveOption) apply(c *config) error {
	if o.Enable {
		for _, f := range []struct {
			name string
			d    time.Duration
		}{{"Idle", o.Idle}, {"Interval", o.Interval}} {
			switch {
			case f.d <= 0:
			case f.d%time.Second != 0:
				return refuse(o, "%s %v is not a whole number of seconds", f.name, f.d)
			case f.d > maxKeepAliveSeconds*time.Second:
				return refuse(o, "%s %v exceeds the maximum %v", f.name, f.d, maxKeepAliveSeconds*time.Second)
			}
		}
		if o.Count > maxKeepAliveCount {
			return refuse(o, "Count %d exceeds the maximum %d", o.Count, maxKeepAliveCount)
		}
	}
	c.keepAlive = net.KeepAliveConfig(o)
	c.keepAliveSet = true
	return nil
}

// SocketOption sets o on every socket the Dialer makes, before connect (so
// that buffer sizes, the MSS, Fast Open and the like take effect on the
// handshake). The options that Go itself sets after connect (TCP_NODELAY and
// the keepalive options) are set again on the connected socket, so the value
// asked for is the value the connection has.
//
// Give one SocketOption per socket option. Two that set the same socket
// option to different values make New fail; so does an option that has no
// effect on a dialed socket (see sockopt.Check), and a keepalive socket
// option together with [KeepAlive].
func SocketOption(o sockopt.Option) Option { return socketOption{o} }

type socketOption struct{ o sockopt.Option }

func (o socketOption) String() string {
	if o.o == nil {
		return "SocketOption(<nil>)"
	}
	return "SocketOption(" + o.o.String() + ")"
}

func (o socketOption) apply(c *config) error {
	if o.o == nil {
		return refuse(o, "nil sockopt.Option")
	}
	if err := o.o.Validate(); err != nil {
		return fmt.Errorf("dialer: %w", err)
	}
	c.sockopts = append(c.sockopts, o.o)
	return nil
}

// LocalAddr binds every dialed socket to addr before connect. A zero port
// lets the kernel pick one. With a Resolver, only the resolved addresses of
// addr's family are dialed.
func LocalAddr(addr netip.AddrPort) Option { return localAddrOption(addr) }

type localAddrOption netip.AddrPort

func (o localAddrOption) String() string { return "LocalAddr(" + netip.AddrPort(o).String() + ")" }

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
// It is the same as SocketOption(sockopt.FastOpenConnect(on)).
func FastOpen(on bool) Option { return fastOpenOption(on) }

type fastOpenOption bool

func (o fastOpenOption) String() string { return fmt.Sprintf("FastOpen(%t)", bool(o)) }

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
// SocketOption is one that MPTCP refuses or ignores (sockopt.TCPOnly). With
// MultipathTCP(true), such options make New fail: the Dialer never hands
// back a connection on which an option it was given silently failed. Where
// the kernel has no MPTCP, Go falls back to TCP.
func MultipathTCP(on bool) Option { return mptcpOption(on) }

type mptcpOption bool

func (o mptcpOption) String() string { return fmt.Sprintf("MultipathTCP(%t)", bool(o)) }

func (o mptcpOption) apply(c *config) error {
	c.mptcp = -1
	if o {
		c.mptcp = 1
	}
	return nil
}

// WithResolver makes the Dialer look host names up with r and dial the
// addresses itself, the way net does: Happy Eyeballs across IPv6 and IPv4,
// a deadline for each attempt, and an [*Error] listing every failure and
// every address not tried when all fail. Without it the Dialer does the same with a zero net.Resolver (Go's
// default resolver).
func WithResolver(r Resolver) Option { return resolverOption{r} }

type resolverOption struct{ r Resolver }

func (o resolverOption) String() string { return fmt.Sprintf("WithResolver(%T)", o.r) }

func (o resolverOption) apply(c *config) error {
	if o.r == nil {
		return refuse(o, "nil Resolver")
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

func (o recorderOption) String() string { return fmt.Sprintf("RecordConnectTime(%T)", o.r) }

func (o recorderOption) apply(c *config) error {
	if o.r == nil {
		return refuse(o, "nil Recorder")
	}
	c.recorder = o.r
	return nil
}

// FallbackDelay is how long an attempt may go unanswered before the next
// address is tried in parallel (RFC 8305's Connection Attempt Delay). Zero
// means the default of 300ms, like net.Dialer's; a negative value turns
// parallel attempts off, so addresses are tried one after another in the
// resolver's order.
func FallbackDelay(d time.Duration) Option { return fallbackDelayOption(d) }

type fallbackDelayOption time.Duration

func (o fallbackDelayOption) String() string {
	return "FallbackDelay(" + time.Duration(o).String() + ")"
}

func (o fallbackDelayOption) apply(c *config) error {
	c.fallbackDelay = time.Duration(o)
	return nil
}
