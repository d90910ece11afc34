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
	"sync"
	"syscall"
	"time"

	"github.com/nettune/nettune/internal/opterr"
	"github.com/nettune/nettune/internal/optset"
	"github.com/nettune/nettune/sockopt"
)

// Dialer dials TCP connections with the socket options, keepalive,
// Multipath TCP setting, resolver and connect-time recorder it was built
// with. Build one with [New]; it cannot be changed afterwards. A Dialer is
// safe for concurrent use by multiple goroutines.
//
// The zero Dialer dials like New() with no options: like a zero net.Dialer.
type Dialer struct {
	opts   []Option         // as given to New, for String
	before []sockopt.Option // set in Control, before connect
	after  []sockopt.Option // set again on the connected socket
	// early are the options an attempt's control sets, in one
	// sockopt.Apply: before, then KeepAliveConfig's options (net leaves
	// keep-alive alone on the attempts' sockets).
	early    []sockopt.Option
	controls []optset.ControlFunc // the Control options, run after early
	template net.Dialer           // the configuration NetDialer copies
	attempts *net.Dialer          // dials one address; no Timeout, times the connect
	resolver AddrResolver
	recorder Recorder
	run      func(attempt func() (net.Conn, error)) (net.Conn, error) // RunAttempt's, or nil
	delay    time.Duration                                            // RFC 8305 connection attempt delay; < 0: serial
	local    netip.Addr                                               // LocalAddr's address, or the zero Addr

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
// KeepAliveConfig, …) the last one wins. Then the whole set is checked:
// socket options with sockopt.Validate and sockopt.Check for a dialing
// socket, and the combinations this package refuses (see [MultipathTCP],
// [KeepAliveConfig], [FastOpen]). New makes no system call. Every error it
// returns is an [*OptionError] naming the option; for a bad socket option
// its chain reaches the *sockopt.Error.
func New(opts ...Option) (*Dialer, error) {
	c, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	set := c.sockopts
	if c.fastOpen > 0 {
		set = append(set[:len(set):len(set)], optset.Entry[Option]{Sockopt: sockopt.FastOpenConnect(true), From: FastOpen(true)})
	}
	if err := checkSet(c, set); err != nil {
		return nil, err
	}
	d := &Dialer{
		opts:     c.applied,
		resolver: c.resolver,
		recorder: c.recorder,
		run:      c.runAttempt,
		delay:    cmp.Or(c.fallbackDelay, defaultFallbackDelay),
		local:    c.localAddr.Addr(),
	}
	if err := d.splitSockopts(set); err != nil {
		return nil, err
	}
	d.template = c.netDialer(d.before, set)
	d.setUpAttempts(c)
	return d, nil
}

// applyOptions applies opts in order to a zero config.
func applyOptions(opts []Option) (*config, error) {
	c := new(config)
	err := optset.Apply(opts, &OptionError{Err: errNilOption}, func(o Option) error { return o.apply(c) })
	if err != nil {
		return nil, err
	}
	c.applied = append([]Option(nil), opts...)
	return c, nil
}

// checkSet refuses the option sets that cannot be honoured: socket options
// that disagree, and the combinations of [FastOpen], [MultipathTCP] and
// [KeepAliveConfig] with socket options.
func checkSet(c *config, set []optset.Entry[Option]) error {
	if o, err := optset.Validate(set); err != nil {
		return &OptionError{Option: o, Err: err}
	}
	if c.fastOpen < 0 {
		on := func(o sockopt.Option) bool { return o == sockopt.FastOpenConnect(true) }
		if conflicts := optset.Matching(set, on); len(conflicts) > 0 {
			return &OptionError{Option: FastOpen(false), Conflicts: conflicts, Err: errors.New("TCP Fast Open is both off and on")}
		}
	}
	if tcpOnly := optset.Matching(set, sockopt.TCPOnly); c.mptcp > 0 && len(tcpOnly) > 0 {
		return &OptionError{Option: MultipathTCP(true), Conflicts: tcpOnly, Err: optset.ErrMPTCPConflict}
	}
	if ka := optset.Matching(set, optset.IsKeepAlive); c.keepAliveOpt != nil && len(ka) > 0 {
		return &OptionError{Option: c.keepAliveOpt, Conflicts: ka, Err: optset.ErrKeepAliveConflict}
	}
	return nil
}

// splitSockopts sorts the socket options of set into those set in Control,
// before connect, and those set again on the connected socket, and checks
// the first for a dialing socket.
func (d *Dialer) splitSockopts(set []optset.Entry[Option]) error {
	var all []sockopt.Option
	for _, e := range set {
		all = append(all, e.Sockopt)
	}
	for _, o := range optset.Dedupe(all) {
		if sockopt.AfterConnect(o) {
			d.after = append(d.after, o)
			continue
		}
		if err := sockopt.Check(sockopt.Dialing, o); err != nil {
			for _, e := range set {
				if e.Sockopt == o {
					return &OptionError{Option: e.From, Err: err}
				}
			}
		}
		d.before = append(d.before, o)
	}
	return nil
}

// netDialer returns the *net.Dialer that c describes, with a Control that
// sets before and then runs the Control options: the configuration that
// NetDialer hands out.
func (c *config) netDialer(before []sockopt.Option, set []optset.Entry[Option]) net.Dialer {
	var t net.Dialer
	t.Timeout = c.timeout
	t.FallbackDelay = c.fallbackDelay
	if c.localAddr.IsValid() {
		t.LocalAddr = net.TCPAddrFromAddrPort(c.localAddr)
	}
	if c.keepAliveOpt != nil {
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
	case c.mptcp < 0 || len(optset.Matching(set, sockopt.TCPOnly)) > 0:
		// DESIGN fact 1: never hand back an MPTCP socket on which a
		// TCP-only option silently failed, whatever GODEBUG says.
		t.SetMultipathTCP(false)
	}
	t.Control = optset.Chain(optset.Sockopts(sockopt.DialControl, before), c.control)
	return t
}

// setUpAttempts makes the dialers of single attempts from d.template:
// without a Timeout (DialContext puts the whole dial's deadline in the
// context), with keep-alive left to d.early and with control as
// ControlContext.
func (d *Dialer) setUpAttempts(c *config) {
	a := d.template // copies the MPTCP setting too
	a.Timeout = 0
	d.early = d.before
	if c.keepAliveOpt != nil {
		// net ignores the errors of the keepalive options it sets; set
		// them in control, where a failure fails the dial, and keep net
		// from touching keep-alive after connect. A new socket has
		// keepalive off: nothing to set for Enable false.
		a.KeepAlive, a.KeepAliveConfig = -1, net.KeepAliveConfig{}
		if c.keepAlive.Enable {
			d.early = append(d.before[:len(d.before):len(d.before)], optset.KeepAliveOptions(c.keepAlive)...)
		}
	}
	d.controls = c.control
	// An attempt dials one literal address, so net has nothing to race:
	// turning its Happy Eyeballs off saves it partitioning the address
	// list (an allocation) and changes nothing else.
	a.FallbackDelay = -1
	plain := a
	plain.Control = nil
	// control sets the options, notes that the attempt made a socket and
	// stamps the start of connect. net calls a ControlContext as it is,
	// where it wraps a Control in a closure: one allocation less.
	a.Control, a.ControlContext = nil, d.control
	d.attempts = &a
	d.dial = a.DialContext
	d.untracked = d.dial
	if d.recorder == nil && len(d.early) == 0 && len(d.controls) == 0 {
		// Nothing to set and nothing to note: save net the RawConn (and
		// the strings) of a Control call.
		d.untracked = plain.DialContext
	}
}

// attemptKey is the key under which an attempt's context returns its
// *attemptState.
type attemptKey struct{}

// attemptState is what control notes about one attempt. It is written by
// control, which net calls from the goroutine that dials, and read by that
// goroutine after the dial returns.
type attemptState struct {
	socket bool      // a socket was made: net connects it after control
	start  time.Time // the options were set: connect starts now
}

// attemptCtx is the context of a tracked attempt: its parent, with its
// attemptState as the value of attemptKey and, in a race, the attempt's
// share of the time left as its deadline. Without a share it is what
// context.WithValue(parent, attemptKey{}, &state) would make, in one
// allocation instead of two; cancellation, deadline and every other value
// are the parent's, so net and the context package treat it as they
// treat a context.WithValue.
//
// A share is reported by Deadline and Err (see Err), but Done stays the
// parent's: it does not close when the share ends. That is all net's dial of one
// literal address, the only user of an attemptCtx, needs: before making
// the socket it checks Deadline and Err, and it bounds the connect by
// Deadline (the socket's write deadline, which it sets whenever Done is
// not nil, as the parent's never is in a race). A context.WithDeadline
// would cost a timer, a channel, the context and its registration with
// the parent: 6 allocations per attempt.
type attemptCtx struct {
	context.Context
	share time.Time // the attempt's deadline, earlier than the parent's; or zero
	state attemptState
}

func (c *attemptCtx) Value(key any) any {
	if key == (attemptKey{}) {
		return &c.state
	}
	return c.Context.Value(key)
}

func (c *attemptCtx) Deadline() (time.Time, bool) {
	if !c.share.IsZero() {
		return c.share, true
	}
	return c.Context.Deadline()
}

// Err is the parent's error, or context.DeadlineExceeded once the
// deadline (the share's or the parent's) has passed, even while the
// parent's timer, which may fire late, has not closed Done yet: net fails
// an attempt whose deadline has passed without making its socket, and the
// attempt then ended with its context.
func (c *attemptCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if dl, ok := c.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
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
	if len(d.early) > 0 {
		if err := sockopt.Apply(c, d.early...); err != nil {
			return err
		}
	}
	for _, f := range d.controls {
		if err := f(network, address, c); err != nil {
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
// default one without [Resolver]) and its addresses are dialed as
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
	if host == "" || isIPLiteral(host) {
		var actx *attemptCtx
		if d.recorder != nil {
			actx = &attemptCtx{Context: ctx}
		}
		c, took, _, err := d.attempt(ctx, network, address, actx)
		if err != nil {
			return nil, err
		}
		d.record(took)
		return c, nil
	}
	var buf [8]netip.Addr // a *net.Resolver's answer, converted
	ips, p, pooled, err := d.resolve(ctx, network, host, port, buf[:0])
	if pooled != nil {
		defer addrBufs.Put(pooled) // ips is read until the dial ends
	}
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	// Count the addresses to dial first: a name with one suitable address
	// (the usual answer of a warm cache, or a name of one family) is
	// dialed without the race, and without building its list.
	var one netip.AddrPort
	n := 0
	for _, ip := range ips {
		if ip, ok := d.suitable(network, ip); ok {
			if n == 0 {
				one = netip.AddrPortFrom(ip, p)
			}
			n++
		}
	}
	var c net.Conn
	var took time.Duration
	switch n {
	case 0:
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "no suitable address found", Addr: host}}
	case 1:
		c, took, err = d.dialOne(ctx, network, address, one)
	default:
		c, took, err = d.race(ctx, network, address, ips, p, n)
	}
	if err != nil {
		return nil, err
	}
	d.record(took)
	return c, nil
}

// isIPLiteral reports whether host is an IP address. It parses only what
// may be one (digits and dots, or a colon), since netip.ParseAddr
// allocates its error for every host name.
func isIPLiteral(host string) bool {
	if !strings.Contains(host, ":") && strings.Trim(host, "0123456789.") != "" {
		return false // a name: IPv4 has only digits and dots, IPv6 a colon
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

func (d *Dialer) record(took time.Duration) {
	if d.recorder != nil {
		d.recorder.Record(took)
	}
}

// attempt dials one literal address and sets the after-connect options. It
// returns how long the connect took, and whether the attempt was tried:
// false when it failed because its context ended before a socket was made
// (nothing reached the network), true otherwise. With actx, whose Context
// must be ctx, control notes both in actx.state; without (a single address
// dialed without a recorder, under a context that never ends) the attempt
// notes neither, and dials through untracked to save the allocations.
// runAttempt dials through the RunAttempt function.
func (d *Dialer) runAttempt(dial func(context.Context, string, string) (net.Conn, error), ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.run(func() (net.Conn, error) { return dial(ctx, network, address) })
	switch {
	case err != nil && c != nil:
		c.Close() // the error decides
		return nil, err
	case err == nil && c == nil:
		oe := &net.OpError{Op: "dial", Net: network, Err: errNoConn}
		if ap, err := netip.ParseAddrPort(address); err == nil {
			oe.Addr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
		return nil, oe
	}
	return c, err
}

// errNoConn is the error of an attempt whose RunAttempt function returned
// neither a conn nor an error.
var errNoConn = errors.New("dialer.RunAttempt's function returned neither a conn nor an error")

func (d *Dialer) attempt(ctx context.Context, network, address string, actx *attemptCtx) (c net.Conn, took time.Duration, tried bool, err error) {
	var st *attemptState
	track := actx != nil
	if track {
		st, ctx = &actx.state, actx
	}
	dial := d.dial
	if !track {
		dial = d.untracked
	}
	if d.run != nil {
		c, err = d.runAttempt(dial, ctx, network, address)
	} else {
		c, err = dial(ctx, network, address)
	}
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

// appendResolver is an AddrResolver that can also append its answer to a
// slice of the caller's, as dnscache.Cache does: the dial then looks the
// name up into a buffer of its own, without an allocation.
type appendResolver interface {
	AppendNetIP(ctx context.Context, dst []netip.Addr, network, host string) ([]netip.Addr, error)
}

// addrBufs are the buffers into which an appendResolver answers.
var addrBufs = sync.Pool{New: func() any { return new([8]netip.Addr) }}

// portLookuper is the part of *net.Resolver that maps service names to
// ports.
type portLookuper interface {
	LookupPort(ctx context.Context, network, service string) (int, error)
}

// resolve looks host up with the Dialer's resolver and port up as a
// number or a service name. It returns the resolver's answer, to be
// filtered with suitable: as the resolver returned it, appended to buf for
// a *net.Resolver, or appended to a buffer from addrBufs for a resolver
// with an AppendNetIP method; that buffer is returned too, for the caller
// to put back once it no longer reads the answer.
func (d *Dialer) resolve(ctx context.Context, network, host, port string, buf []netip.Addr) ([]netip.Addr, uint16, *[8]netip.Addr, error) {
	var r AddrResolver = net.DefaultResolver
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
			return nil, 0, nil, lerr
		}
		p = uint64(n)
	}
	lookup := "ip"
	switch network {
	case "tcp4":
		lookup = "ip4"
	case "tcp6":
		lookup = "ip6"
	}
	nr, ok := r.(*net.Resolver)
	if !ok {
		if ar, ok := r.(appendResolver); ok {
			// buf would escape through the interface call: take one
			// from the pool instead.
			pooled := addrBufs.Get().(*[8]netip.Addr)
			ips, err := ar.AppendNetIP(ctx, pooled[:0], lookup, host)
			if err != nil {
				return nil, 0, pooled, err
			}
			return ips, uint16(p), pooled, nil
		}
		ips, err := r.LookupNetIP(ctx, lookup, host)
		return ips, uint16(p), nil, err
	}
	// (*net.Resolver).LookupNetIP converts net's answer twice (to
	// []net.IP, then to []netip.Addr), allocating for each address; ask
	// for the same lookup in a form converted here, into buf.
	if lookup == "ip" {
		ipas, err := nr.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, 0, nil, err
		}
		for _, ipa := range ipas {
			if a, ok := netip.AddrFromSlice(ipa.IP); ok {
				buf = append(buf, a)
			}
		}
		// As net does (go.dev/issue/18806): a host whose only address
		// is "::" is dialed at 0.0.0.0 too.
		if len(buf) == 1 && buf[0].Unmap() == netip.IPv6Unspecified() {
			buf = append(buf, netip.IPv4Unspecified())
		}
		return buf, uint16(p), nil, nil
	}
	ips, err := nr.LookupIP(ctx, lookup, host)
	if err != nil {
		return nil, 0, nil, err
	}
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip); ok {
			buf = append(buf, a)
		}
	}
	return buf, uint16(p), nil, nil
}

// suitable returns ip unmapped, and whether it is to be dialed: of the
// network's family, and of the local address's when one is set.
func (d *Dialer) suitable(network string, ip netip.Addr) (netip.Addr, bool) {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(),
		network == "tcp4" && !ip.Is4(),
		network == "tcp6" && !ip.Is6(),
		d.local.IsValid() && d.local.Unmap().Is4() != ip.Is4():
		return ip, false
	}
	return ip, true
}

// order puts the suitable addresses of ips, with port p, into addrs in the
// order they are tried: families interleaved as RFC 8305 section 4 says,
// or the resolver's order when the dial is serial (a negative
// FallbackDelay).
func (d *Dialer) order(addrs []netip.AddrPort, network string, ips []netip.Addr, p uint16) []netip.AddrPort {
	for _, ip := range ips {
		if ip, ok := d.suitable(network, ip); ok {
			addrs = append(addrs, netip.AddrPortFrom(ip, p))
		}
	}
	if d.delay < 0 {
		return addrs
	}
	return interleave(addrs)
}

// NetDialer returns a new *net.Dialer configured like d: Timeout,
// LocalAddr, keepalive, FallbackDelay, the Multipath TCP setting, a Control
// function that sets the socket options, and the resolver when it is a
// *net.Resolver. Each call returns a fresh copy the caller may change.
//
// Dialing with the copy differs from dialing with d in four ways: a
// resolver that is not a *net.Resolver is not used, nothing is recorded,
// a [RunAttempt] function is not used (the copy dials on the caller's
// goroutine), and the options Go sets itself after connect (TCP_NODELAY and the
// keepalive socket options given with [Sockopt]) are overwritten by Go
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
// "dialer.Dialer(dialer.Timeout(5s), dialer.MultipathTCP(false))".
func (d *Dialer) String() string {
	return "dialer.Dialer(" + opterr.List(d.self().opts) + ")"
}
