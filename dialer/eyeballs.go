package dialer

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Error is the error of a dial to a host name when no address could be
// connected to. Every address the name resolved to (of the network's
// family) is in exactly one of Errs and NotTried. errors.Is and errors.As
// reach each error in Errs (each usually a *net.OpError naming its address)
// and Stopped. A Dialer returns it as the error of DialContext, not
// wrapped.
type Error struct {
	// Network and Address are DialContext's arguments.
	Network, Address string
	// Errs are the failures of the addresses tried, one per address, in the
	// order the attempts started. An address was tried when a socket was
	// made for it (net then connects it), or when its attempt failed for
	// another reason than the end of its context, such as a socket that
	// could not be made.
	Errs []error
	// NotTried are the addresses for which no socket was made because the
	// deadline (the dial's, or the attempt's share of it) passed or the
	// context was cancelled first, in the order they would have been tried.
	NotTried []netip.AddrPort
	// Stopped is why the addresses in NotTried were not tried:
	// context.DeadlineExceeded or context.Canceled (the context's error;
	// DeadlineExceeded as soon as the deadline has passed, even if the
	// context's timer fires later). It is nil when NotTried is empty.
	Stopped error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dialer: dial " + e.Network + " " + e.Address + ": ")
	n := strconv.Itoa(len(e.Errs) + len(e.NotTried))
	if len(e.Errs) == 0 {
		b.WriteString("none of " + n + " addresses tried")
	} else {
		b.WriteString(strconv.Itoa(len(e.Errs)) + " of " + n + " addresses failed")
	}
	for _, err := range e.Errs {
		b.WriteString("; ")
		b.WriteString(err.Error())
	}
	if len(e.NotTried) > 0 {
		b.WriteString("; not tried")
		if e.Stopped != nil {
			b.WriteString(" (" + e.Stopped.Error() + ")")
		}
		b.WriteString(":")
		for _, a := range e.NotTried {
			b.WriteString(" " + a.String())
		}
	}
	return b.String()
}

// Unwrap returns the errors of the attempts, followed by Stopped when it
// is set.
func (e *Error) Unwrap() []error {
	errs := append([]error(nil), e.Errs...)
	if e.Stopped != nil {
		errs = append(errs, e.Stopped)
	}
	return errs
}

// Timeout reports whether an attempt timed out or the deadline left
// addresses untried, so that callers that test for net.Error's Timeout see
// a dial that ran out of time as one.
func (e *Error) Timeout() bool {
	if errors.Is(e.Stopped, context.DeadlineExceeded) {
		return true
	}
	for _, err := range e.Errs {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			return true
		}
	}
	return false
}

// Temporary is false: it is part of net.Error, deprecated there.
func (e *Error) Temporary() bool { return false }

var _ net.Error = (*Error)(nil)

// interleave orders addrs as RFC 8305 section 4 says: the family of the
// first address first, then alternating families, each in the resolver's
// order. It reorders addrs in place and returns it.
func interleave(addrs []netip.AddrPort) []netip.AddrPort {
	if len(addrs) < 2 {
		return addrs
	}
	first := addrs[0].Addr().Is4()
	nFirst := 0
	for _, a := range addrs {
		if a.Addr().Is4() == first {
			nFirst++
		}
	}
	nOther := len(addrs) - nFirst
	if nOther == 0 {
		return addrs
	}
	var buf [8]netip.AddrPort // most answers fit: no allocation
	src := append(buf[:0], addrs...)
	var i, j int // how many of the first family and of the other are placed
	for _, a := range src {
		if a.Addr().Is4() == first {
			// The i-th of the first family: even slots while the other
			// family lasts, then the slots left at the end.
			if i < nOther {
				addrs[2*i] = a
			} else {
				addrs[nOther+i] = a
			}
			i++
		} else {
			if j < nFirst {
				addrs[2*j+1] = a
			} else {
				addrs[nFirst+j] = a
			}
			j++
		}
	}
	return addrs
}

// minAttemptTime is the least time an attempt is given when the dial has a
// deadline and enough time is left; the later addresses lose theirs first.
// net.Dialer uses the same floor.
const minAttemptTime = 2 * time.Second

// attemptDeadline returns the deadline of an attempt started at now when
// the dial must end by deadline and remaining addresses (this one
// included) are still to be tried: an equal share of the time left, at
// least minAttemptTime, never past deadline. A zero deadline means none.
func attemptDeadline(now, deadline time.Time, remaining int) time.Time {
	if deadline.IsZero() || remaining < 1 {
		return deadline
	}
	left := deadline.Sub(now)
	if left <= 0 {
		return deadline
	}
	share := max(left/time.Duration(remaining), min(left, minAttemptTime))
	return now.Add(share)
}

// literal is a as the address an attempt hands net. An IPv4 address is
// written in its IPv4-mapped form ("[::ffff:192.0.2.1]:80"): net keeps
// every IP address in 16 bytes, and parses that form straight into them,
// where "192.0.2.1:80" costs it one allocation more (4 bytes, then 16).
// net still dials the address over IPv4 and shows it as "192.0.2.1:80"
// everywhere: to Control, to httptrace's ConnectStart and ConnectDone, in
// its errors and in the connection's RemoteAddr.
func literal(a netip.AddrPort) string {
	if ip := a.Addr(); ip.Is4() {
		a = netip.AddrPortFrom(netip.AddrFrom16(ip.As16()), a.Port())
	}
	return a.String()
}

// outcome is the end of one attempt.
type outcome struct {
	c     net.Conn
	took  time.Duration
	tried bool // see Dialer.attempt
	err   error
}

// dialOne dials the only address a name resolved to: what race does for
// one address, in the calling goroutine, without the race's context,
// timer and bookkeeping. As in race, no attempt starts once the context
// is done or its deadline has passed, and a failure is an *Error.
func (d *Dialer) dialOne(ctx context.Context, network, address string, a netip.AddrPort) (net.Conn, time.Duration, error) {
	stopped := ctx.Err()
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline && stopped == nil && !time.Now().Before(dl) {
		stopped = context.DeadlineExceeded
	}
	if stopped == nil {
		var actx *attemptCtx
		if d.tracks(ctx, hasDeadline) {
			actx = &attemptCtx{Context: ctx}
		}
		c, took, tried, err := d.attempt(ctx, network, literal(a), actx)
		if err == nil {
			return c, took, nil
		}
		if tried {
			return nil, 0, &Error{Network: network, Address: address, Errs: []error{err}}
		}
		stopped = actx.Err() // not tried: tracked, and its context ended
	}
	return nil, 0, &Error{Network: network, Address: address, NotTried: []netip.AddrPort{a}, Stopped: stopped}
}

// tracks reports whether the attempts of a dial under ctx note whether
// they made a socket (through control, which costs net a RawConn and
// the address as a string). That matters only when an attempt can end
// with its context, before a socket was made: when ctx can be done or has
// a deadline. The recorder needs control's start of connect too. Under a
// context that never ends an attempt ends with its context only when the
// Dialer cancels it because another one won, and then its end is not
// reported.
func (d *Dialer) tracks(ctx context.Context, hasDeadline bool) bool {
	return d.recorder != nil || hasDeadline || ctx.Done() != nil
}

// race dials the n suitable addresses of ips (n at least two), with port
// p, as RFC 8305 section 5 says and returns the first connection made,
// with its connect time. No attempt starts once the context is done or
// its deadline has passed (the context's timer may fire late); the
// addresses left are reported as not tried.
func (d *Dialer) race(ctx context.Context, network, address string, ips []netip.Addr, p uint16, n int) (net.Conn, time.Duration, error) {
	r := &racer{d: d, network: network}
	var hasDeadline bool
	r.deadline, hasDeadline = ctx.Deadline()
	track := d.tracks(ctx, hasDeadline)
	// A few addresses fit in the racer itself: one allocation for all.
	if n <= len(r.small) {
		r.order, r.outcomes = r.smallOrder[:0], r.small[:n]
		if track {
			r.actxs = r.smallActxs[:n]
		}
	} else {
		r.order, r.outcomes = make([]netip.AddrPort, 0, n), make([]outcome, n)
		if track {
			r.actxs = make([]attemptCtx, n)
		}
	}
	r.order = d.order(r.order, network, ips, p)
	var cancel context.CancelFunc
	r.ctx, cancel = context.WithCancel(ctx)
	defer cancel() // stops the attempts still running when one has won
	r.ended = make(chan int, n)

	if w, ok := r.run(); ok {
		return w.c, w.took, nil
	}
	return nil, 0, r.failure(address)
}

// racer is the state of one race. Its fields other than mu, done, ended
// and outcomes belong to the goroutine of race.
type racer struct {
	d        *Dialer
	network  string
	order    []netip.AddrPort // the addresses, in the order they are tried
	ctx      context.Context  // the dial's, cancelled when race returns
	deadline time.Time        // the dial's, or zero

	mu    sync.Mutex // guards done, the sends on ended and the writes to outcomes
	done  bool       // a winner was taken: later connections are closed
	ended chan int   // the index of each attempt that ended, buffered for all
	// outcomes are the attempts' ends, by index into order: each is written
	// by its attempt before it sends its index on ended, and read by race
	// after receiving it.
	outcomes []outcome
	// actxs are the contexts of tracked attempts (nil when the dial does
	// not track them), by index into order: each is set by launch and
	// then belongs to its attempt.
	actxs []attemptCtx

	small      [4]outcome        // outcomes' array for a few addresses
	smallOrder [4]netip.AddrPort // order's array for a few addresses
	smallActxs [4]attemptCtx     // actxs' array for a few addresses

	stopped error // why start refused to launch the next attempt
	next    int   // the next address to try
	running int   // attempts started and not ended
}

// run starts the attempts, one after the fallback delay or as soon as the
// previous one failed, and returns the first success, or false when every
// attempt launched has failed and no more may start.
func (r *racer) run() (outcome, bool) {
	var timer *time.Timer
	if r.d.delay >= 0 {
		timer = time.NewTimer(r.d.delay)
		defer timer.Stop()
	}
	r.start()
	for r.running > 0 {
		var tick <-chan time.Time
		if timer != nil && r.next < len(r.order) && r.stopped == nil {
			tick = timer.C
		}
		select {
		case i := <-r.ended:
			r.running--
			if o := r.outcomes[i]; o.err == nil {
				r.closeLosers()
				return o, true
			}
			if r.start() && timer != nil {
				timer.Reset(r.d.delay)
			}
		case <-tick:
			if r.start() {
				timer.Reset(r.d.delay)
			}
		}
	}
	return outcome{}, false
}

// start launches the next attempt, unless none is left or the dial may
// not start one any more.
func (r *racer) start() bool {
	if r.next == len(r.order) || r.stopped != nil {
		return false
	}
	now := time.Now()
	if err := r.ctx.Err(); err != nil {
		r.stopped = err
		return false
	}
	if !r.deadline.IsZero() && !now.Before(r.deadline) {
		r.stopped = context.DeadlineExceeded
		return false
	}
	r.launch(r.next, now)
	r.next++
	r.running++
	return true
}

// launch starts the attempt for order[i] in a goroutine of its own, with
// its share of the time left. A dial with a deadline tracks its attempts
// (see tracks): the share is the deadline of the attempt's attemptCtx.
func (r *racer) launch(i int, now time.Time) {
	var actx context.Context = r.ctx
	var tracked *attemptCtx
	if r.actxs != nil {
		tracked = &r.actxs[i]
		tracked.Context = r.ctx
		if dl := attemptDeadline(now, r.deadline, len(r.order)-i); dl.Before(r.deadline) {
			tracked.share = dl
		}
		actx = tracked
	}
	go func() {
		c, took, tried, err := r.d.attempt(r.ctx, r.network, literal(r.order[i]), tracked)
		if !tried {
			err = actx.Err() // why: the attempt's deadline or the dial's end
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.done {
			if c != nil {
				c.Close()
			}
			return
		}
		r.outcomes[i] = outcome{c: c, took: took, tried: tried, err: err}
		r.ended <- i
	}()
}

// closeLosers marks the race won and closes the connections of attempts
// that succeeded too late, queued or yet to come.
func (r *racer) closeLosers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	for len(r.ended) > 0 {
		if extra := r.outcomes[<-r.ended]; extra.c != nil {
			extra.c.Close()
		}
	}
}

// failure is the *Error of a race that no attempt won: every address once,
// as the error of its attempt or as not tried.
func (r *racer) failure(address string) *Error {
	e := &Error{Network: r.network, Address: address}
	for i, a := range r.order {
		o := r.outcomes[i]
		switch {
		case o.tried:
			e.Errs = append(e.Errs, o.err)
		case i < r.next: // launched, but its context ended before a socket was made
			e.NotTried = append(e.NotTried, a)
			if e.Stopped == nil {
				e.Stopped = o.err
			}
		default:
			e.NotTried = append(e.NotTried, a)
			if e.Stopped == nil {
				e.Stopped = r.stopped
			}
		}
	}
	return e
}
