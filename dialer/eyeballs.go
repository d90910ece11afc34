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
// connected to. It holds the failure of every attempt, in the order the
// attempts started; errors.Is and errors.As reach each of them (each is
// usually a *net.OpError naming its address). A Dialer returns it as the
// error of DialContext, not wrapped.
type Error struct {
	// Network and Address are DialContext's arguments.
	Network, Address string
	// Errs are the failed attempts, one per address tried.
	Errs []error
	// NotTried are the addresses not attempted because the dial's deadline
	// passed or its context was cancelled first.
	NotTried []netip.AddrPort
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("dialer: dial " + e.Network + " " + e.Address + ": ")
	b.WriteString(strconv.Itoa(len(e.Errs)) + " of " + strconv.Itoa(len(e.Errs)+len(e.NotTried)) + " addresses failed")
	for _, err := range e.Errs {
		b.WriteString("; ")
		b.WriteString(err.Error())
	}
	if len(e.NotTried) > 0 {
		b.WriteString("; not tried:")
		for _, a := range e.NotTried {
			b.WriteString(" " + a.String())
		}
	}
	return b.String()
}

// Unwrap returns the errors of the attempts.
func (e *Error) Unwrap() []error { return append([]error(nil), e.Errs...) }

// Timeout reports whether an attempt timed out, so that callers that test
// for net.Error's Timeout see a dial that ran out of time as one.
func (e *Error) Timeout() bool {
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
// order.
func interleave(addrs []netip.AddrPort) []netip.AddrPort {
	if len(addrs) < 2 {
		return addrs
	}
	first := addrs[0].Addr().Is4()
	var a, b []netip.AddrPort
	for _, x := range addrs {
		if x.Addr().Is4() == first {
			a = append(a, x)
		} else {
			b = append(b, x)
		}
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for i := 0; i < len(a) || i < len(b); i++ {
		if i < len(a) {
			out = append(out, a[i])
		}
		if i < len(b) {
			out = append(out, b[i])
		}
	}
	return out
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

// outcome is the end of one attempt.
type outcome struct {
	i    int // index into the address order
	c    net.Conn
	took time.Duration
	err  error
}

// race dials addrs as RFC 8305 section 5 says and returns the first
// connection made, with its connect time.
func (d *Dialer) race(ctx context.Context, network, address string, addrs []netip.AddrPort) (net.Conn, time.Duration, error) {
	order := addrs
	if d.delay >= 0 {
		order = interleave(addrs)
	}
	deadline, _ := ctx.Deadline()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the attempts still running when one has won

	var (
		mu   sync.Mutex // guards done, and sends on results
		done bool       // a winner was taken: later connections are closed
	)
	results := make(chan outcome, len(order))
	launch := func(i int) {
		actx, acancel := ctx, context.CancelFunc(func() {})
		if dl := attemptDeadline(time.Now(), deadline, len(order)-i); !dl.IsZero() {
			actx, acancel = context.WithDeadline(ctx, dl)
		}
		go func() {
			defer acancel()
			c, took, err := d.attempt(actx, network, order[i].String())
			mu.Lock()
			defer mu.Unlock()
			if done {
				if c != nil {
					c.Close()
				}
				return
			}
			results <- outcome{i: i, c: c, took: took, err: err}
		}()
	}

	var timer *time.Timer
	if d.delay >= 0 {
		timer = time.NewTimer(d.delay)
		defer timer.Stop()
	}
	errs := make([]error, len(order))
	next, running := 1, 1
	launch(0)
	for {
		var tick <-chan time.Time
		if timer != nil && next < len(order) {
			tick = timer.C
		}
		select {
		case r := <-results:
			running--
			if r.err == nil {
				mu.Lock()
				done = true
				for len(results) > 0 {
					if extra := <-results; extra.c != nil {
						extra.c.Close()
					}
				}
				mu.Unlock()
				return r.c, r.took, nil
			}
			errs[r.i] = r.err
			if next < len(order) && ctx.Err() == nil {
				launch(next)
				next++
				running++
				if timer != nil {
					timer.Reset(d.delay)
				}
				continue
			}
			if running > 0 {
				continue
			}
			return nil, 0, &Error{Network: network, Address: address, Errs: errs[:next], NotTried: order[next:]}
		case <-tick:
			launch(next)
			next++
			running++
			timer.Reset(d.delay)
		}
	}
}
