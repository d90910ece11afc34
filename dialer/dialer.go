package dialer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nettune/nettune/sockopt"
)

// Dialer dials TCP connections with the socket options, keepalive,
// Multipath TCP setting, resolver and connect-time recorder it was built
// with. Build one with [New]; it cannot be changed afterwards. A Dialer is
// safe for concurrent use by multiple goroutines.
//
// The zero Dialer dials like New() with no options: like a zero net.Dialer.
type Dialer struct {
	opts     []Option         // as given to New, for String
	before   []sockopt.Option // set in Control, before connect
	after    []sockopt.Option // set again on the connected socket
	template net.Dialer       // the configuration NetDialer copies
	attempts *net.Dialer      // dials one address; no Timeout, times the connect
	resolver Resolver
	recorder Recorder
	delay    time.Duration // RFC 8305 connection attempt delay; < 0: serial
	local    netip.Addr    // LocalAddr's address, or the zero Addr

	// dial dials one literal address. It is attempts.DialContext, or a
	// test's instrumented replacement.
	dial func(ctx context.Context, network, address string) (net.Conn, error)
	// untracked dials one literal address when attempt does not track it:
	// dial, or without a recorder a net.Dialer whose Control only sets the
	// socket options.
	untracked func(ctx context.Context, network, address string) (net.Conn, error)
	// onSocket, set only by tests, is called by control for every socket
	// an attempt makes, before its options are set.
	onSocket func(network, address string, c syscall.RawConn)
}

// defaultFallbackDelay is net.Dialer's default Happy Eyeballs delay, and the
// Connection Attempt Delay RFC 8305 recommends as a fallback value.
const defaultFallbackDelay = 300 * time.Millisecond

// New returns a Dialer configured by opts. Options are applied in order,
// each checking its own value; for options that set one thing (Timeout,
// KeepAlive, …) the last one wins. Then the whole set is checked: socket
// options with sockopt.Validate and sockopt.Check for a dialing socket, and
// the combinations this package refuses (see [MultipathTCP], [KeepAlive],
// [FastOpen]). New makes no system call. Its errors are an [*OptionError]
// or wrap a *sockopt.Error.
func New(opts ...Option) (*Dialer, error) {
	var c config
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("dialer: nil Option")
		}
		if err := o.apply(&c); err != nil {
			return nil, err
		}
		c.applied = append(c.applied, o)
	}

	all := append([]sockopt.Option(nil), c.sockopts...)
	if c.fastOpen > 0 {
		all = append(all, sockopt.FastOpenConnect(true))
	}
	if err := sockopt.Validate(all...); err != nil {
		return nil, fmt.Errorf("dialer: %w", err)
	}
	if err := checkCombinations(&c, all); err != nil {
		return nil, err
	}

	d := &Dialer{
		opts:     c.applied,
		resolver: c.resolver,
		recorder: c.recorder,
		delay:    c.fallbackDelay,
		local:    c.localAddr.Addr(),
	}
	for _, o := range dedupe(all) {
		if sockopt.AfterConnect(o) {
			d.after = append(d.after, o)
		} else {
			d.before = append(d.before, o)
		}
	}
	if err := sockopt.Check(sockopt.Dialing, d.before...); err != nil {
		return nil, fmt.Errorf("dialer: %w", err)
	}
	if d.delay == 0 {
		d.delay = defaultFallbackDelay
	}

	t := &d.template
	t.Timeout = c.timeout
	t.FallbackDelay = c.fallbackDelay
	if c.localAddr.IsValid() {
		t.LocalAddr = net.TCPAddrFromAddrPort(c.localAddr)
	}
	if c.keepAliveSet {
		if c.keepAlive.Enable {
			t.KeepAliveConfig = c.keepAlive
		} else {
			t.KeepAlive = -1
		}
	}
	if r, ok := c.resolver.(*net.Resolver); ok {
		t.Resolver = r
	}
	switch {
	case c.mptcp > 0:
		t.SetMultipathTCP(true)
	case c.mptcp < 0 || anyTCPOnly(all):
		// DESIGN fact 1: never hand back an MPTCP socket on which a
		// TCP-only option silently failed, whatever GODEBUG says.
		t.SetMultipathTCP(false)
	}
	if len(d.before) > 0 {
		t.Control = sockopt.DialControl(d.before...)
	}

	a := d.template // copies the MPTCP setting too
	a.Timeout = 0   // DialContext puts the whole dial's deadline in the context
	if c.keepAliveSet {
		// net ignores the errors of the keepalive options it sets; set
		// them here, where a failure fails the dial.
		a.KeepAlive, a.KeepAliveConfig = -1, net.KeepAliveConfig{}
		d.after = append(d.after, keepAliveOptions(c.keepAlive)...)
	}
	plain := a // Control, if any, sets the options only
	// control sets the options, notes that the attempt made a socket and
	// stamps the start of connect.
	a.Control, a.ControlContext = nil, d.control
	d.attempts = &a
	d.dial = a.DialContext
	d.untracked = d.dial
	if d.recorder == nil {
		// A single literal address needs neither the connect time nor
		// whether a socket was made: save net the RawConn of a Control
		// call when there are no socket options.
		d.untracked = plain.DialContext
	}
	return d, nil
}

// checkCombinations refuses the option sets that cannot be honoured.
func checkCombinations(c *config, all []sockopt.Option) error {
	var tcpOnly, keepAlive []Option
	for _, o := range all {
		if sockopt.TCPOnly(o) {
			tcpOnly = append(tcpOnly, SocketOption(o))
		}
		switch o.(type) {
		case sockopt.KeepAlive, sockopt.KeepAliveIdle, sockopt.KeepAliveInterval, sockopt.KeepAliveCount:
			keepAlive = append(keepAlive, SocketOption(o))
		}
		if o, ok := o.(sockopt.FastOpenConnect); ok && bool(o) && c.fastOpen < 0 {
			return &OptionError{Option: FastOpen(false), Conflicts: []Option{SocketOption(o)},
				Err: fmt.Errorf("conflicts with SocketOption(%s)", o)}
		}
	}
	if c.mptcp > 0 && len(tcpOnly) > 0 {
		return &OptionError{Option: MultipathTCP(true), Conflicts: tcpOnly,
			Err: fmt.Errorf("conflicts with TCP-only socket options %s: a Multipath TCP socket refuses or ignores them "+
				"(drop them, or leave MultipathTCP out so that the Dialer uses plain TCP)", list(tcpOnly))}
	}
	if c.keepAliveSet && len(keepAlive) > 0 {
		return &OptionError{Option: KeepAlive(c.keepAlive), Conflicts: keepAlive,
			Err: fmt.Errorf("conflicts with %s: configure keepalive one way", list(keepAlive))}
	}
	return nil
}

// keepAliveOptions returns the socket options that cfg stands for, with
// net.KeepAliveConfig's defaults for zero fields and nothing for negative
// ones.
func keepAliveOptions(cfg net.KeepAliveConfig) []sockopt.Option {
	if !cfg.Enable {
		return nil // a new socket has keepalive off
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

func anyTCPOnly(opts []sockopt.Option) bool {
	for _, o := range opts {
		if sockopt.TCPOnly(o) {
			return true
		}
	}
	return false
}

// dedupe drops repeats of an identical option (Validate already refused
// different values for one socket option).
func dedupe(opts []sockopt.Option) []sockopt.Option {
	var out []sockopt.Option
next:
	for _, o := range opts {
		for _, p := range out {
			if p == o {
				continue next
			}
		}
		out = append(out, o)
	}
	return out
}

func list(opts []Option) string {
	s := make([]string, len(opts))
	for i, o := range opts {
		s[i] = o.String()
	}
	return strings.Join(s, ", ")
}

// attemptKey keys the *attemptState in an attempt's context.
type attemptKey struct{}

// attemptState is what control notes about one attempt. It is written by
// control, which net calls from the goroutine that dials, and read by that
// goroutine after the dial returns.
type attemptState struct {
	socket bool      // a socket was made: net connects it after control
	start  time.Time // the options were set: connect starts now
}

// control is the ControlContext of an attempt: it notes that a socket was
// made, sets the socket options and then notes the time, so that the
// connect time excludes them.
func (d *Dialer) control(ctx context.Context, network, address string, c syscall.RawConn) error {
	st, _ := ctx.Value(attemptKey{}).(*attemptState)
	if st != nil {
		st.socket = true
	}
	if d.onSocket != nil {
		d.onSocket(network, address, c)
	}
	if d.template.Control != nil {
		if err := d.template.Control(network, address, c); err != nil {
			return err
		}
	}
	if st != nil {
		st.start = time.Now()
	}
	return nil
}

// zeroDialer stands in for the zero Dialer. New without options cannot
// fail.
var zeroDialer, _ = New()

// self returns d, or for the zero Dialer one built by New().
func (d *Dialer) self() *Dialer {
	if d.dial == nil {
		return zeroDialer
	}
	return d
}

// Dial connects to address on the named network. See [Dialer.DialContext].
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address on the named network, which must be
// "tcp", "tcp4" or "tcp6"; address is "host:port" as for net.Dial. It fits
// http.Transport.DialContext, gRPC's WithContextDialer and the dial hooks
// of database drivers.
//
// An IP address (or an empty host, meaning the local system) is dialed
// directly. A host name is looked up with the Dialer's resolver (Go's
// default one without [WithResolver]) and its addresses are dialed as
// RFC 8305 says: families interleaved, a new attempt after the fallback
// delay or as soon as the previous one fails, the first connection to
// succeed kept and the others cancelled or closed. Each attempt gets its
// share of the time left, as net.Dialer does; no attempt starts once the
// context is done or the deadline has passed. When no address could be
// connected to, the error is an [*Error] holding each address once, as the
// error of its attempt or as not tried.
//
// The context bounds the dial, together with [Timeout]; once connected,
// its expiry does not affect the connection. Errors are *net.OpError (or
// [*Error] wrapping them), and reach the *sockopt.Error and the errno of a
// socket option that failed.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d = d.self()
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if d.template.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.template.Timeout)
		defer cancel()
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if _, err := netip.ParseAddr(host); host == "" || err == nil {
		c, took, _, err := d.attempt(ctx, network, address, d.recorder != nil)
		if err != nil {
			return nil, err
		}
		d.record(took)
		return c, nil
	}
	addrs, err := d.resolve(ctx, network, host, port)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	c, took, err := d.race(ctx, network, address, addrs)
	if err != nil {
		return nil, err
	}
	d.record(took)
	return c, nil
}

func (d *Dialer) record(took time.Duration) {
	if d.recorder != nil {
		d.recorder.Record(took)
	}
}

// attempt dials one literal address and sets the after-connect options. It
// returns how long the connect took, and whether the attempt was tried:
// false when it failed because its context ended before a socket was made
// (nothing reached the network), true otherwise. Without track (a single
// address dialed without a recorder) it notes neither, and dials through
// untracked to save the allocations.
func (d *Dialer) attempt(ctx context.Context, network, address string, track bool) (c net.Conn, took time.Duration, tried bool, err error) {
	var st *attemptState
	if track {
		st = new(attemptState)
		ctx = context.WithValue(ctx, attemptKey{}, st)
	}
	dial := d.dial
	if !track {
		dial = d.untracked
	}
	c, err = dial(ctx, network, address)
	if err != nil {
		cerr := ctx.Err()
		return nil, 0, st == nil || st.socket || cerr == nil || !errors.Is(err, cerr), err
	}
	if d.recorder != nil && st != nil && !st.start.IsZero() {
		took = time.Since(st.start)
	}
	if len(d.after) > 0 {
		sc, ok := c.(syscall.Conn)
		if !ok {
			c.Close()
			return nil, 0, true, fmt.Errorf("dialer: %T has no socket to set %s on", c, d.after[0])
		}
		err := sockopt.Apply(sc, d.after...)
		if err != nil {
			c.Close()
			return nil, 0, true, &net.OpError{Op: "dial", Net: network, Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
		}
	}
	return c, took, true, nil
}

// portLookuper is the part of *net.Resolver that maps service names to
// ports.
type portLookuper interface {
	LookupPort(ctx context.Context, network, service string) (int, error)
}

// resolve returns the addresses to dial for host and port: those of the
// network's family (and the local address's, when one is set), in the
// resolver's order.
func (d *Dialer) resolve(ctx context.Context, network, host, port string) ([]netip.AddrPort, error) {
	var r Resolver = net.DefaultResolver
	if d.resolver != nil {
		r = d.resolver
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		pl, ok := r.(portLookuper)
		if !ok {
			pl = net.DefaultResolver
		}
		n, lerr := pl.LookupPort(ctx, network, port)
		if lerr != nil {
			return nil, lerr
		}
		p = uint64(n)
	}
	lookup := map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"}[network]
	ips, err := r.LookupNetIP(ctx, lookup, host)
	if err != nil {
		return nil, err
	}
	addrs := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		ip = ip.Unmap()
		switch {
		case !ip.IsValid(),
			network == "tcp4" && !ip.Is4(),
			network == "tcp6" && !ip.Is6(),
			d.local.IsValid() && d.local.Unmap().Is4() != ip.Is4():
			continue
		}
		addrs = append(addrs, netip.AddrPortFrom(ip, uint16(p)))
	}
	if len(addrs) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
	}
	return addrs, nil
}

// NetDialer returns a new *net.Dialer configured like d: Timeout,
// LocalAddr, keepalive, FallbackDelay, the Multipath TCP setting, a Control
// function that sets the socket options, and the resolver when it is a
// *net.Resolver. Each call returns a fresh copy the caller may change.
//
// Dialing with the copy differs from dialing with d in three ways: a
// resolver that is not a *net.Resolver is not used, nothing is recorded,
// and the options Go sets itself after connect (TCP_NODELAY and the
// keepalive socket options given with [SocketOption]) are overwritten by Go
// and its defaults. Use it to hand the configuration to code that insists
// on a *net.Dialer.
func (d *Dialer) NetDialer() *net.Dialer {
	d = d.self()
	nd := d.template // copies the MPTCP setting too
	if d.template.LocalAddr != nil {
		nd.LocalAddr = net.TCPAddrFromAddrPort(d.template.LocalAddr.(*net.TCPAddr).AddrPort())
	}
	return &nd
}

// String lists the Dialer's options, such as
// "dialer.Dialer(Timeout(5s), MultipathTCP(false))".
func (d *Dialer) String() string {
	return "dialer.Dialer(" + list(d.self().opts) + ")"
}
