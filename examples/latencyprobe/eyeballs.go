package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/listener"
)

// eyeballsName is the name the cache answers with a dead address first.
const eyeballsName = "eyeballs.latencyprobe.test"

// cachedAddrs answers every lookup with its addresses in its order: the
// cached answer of a name whose first address went dead. (dnscache would
// rotate the addresses from call to call, so that only every other dial
// would meet the dead one first.)
type cachedAddrs []netip.Addr

func (c cachedAddrs) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if host != eyeballsName {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]netip.Addr(nil), c...), nil
}

// eyeballs dials a name whose first cached address drops every SYN: one
// address after the other, as rs/dnscache's README suggests, against
// nettune's dialer over the same cache. It runs on this process's
// loopback in every mode: the dialer races its attempts on goroutines of
// its own, which netlab.Host.Run does not put in a lab host's namespace.
// The dead address is a listener on 127.0.0.2 whose accept queue is full:
// the kernel drops the SYNs it gets, as a blackhole would.
func (b *bench) eyeballs(ctx context.Context) (_ *comparison, err error) {
	const limit = 2 * time.Second // the one-after-the-other side stops here
	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := serve(live, nil, echoHandler(b.cfg.size))
	defer func() { err = errors.Join(err, srv.close()) }()
	port := port(live.Addr().String())

	lc, err := listener.New(listener.Backlog(1))
	if err != nil {
		return nil, err
	}
	deadAddr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 2}), port)
	dead, err := lc.Listen(ctx, "tcp", deadAddr.String())
	if err != nil {
		return nil, fmt.Errorf("the blackholed address: %w", err)
	}
	defer func() { err = errors.Join(err, dead.Close()) }()
	// Fill the accept queue (never accepted): later SYNs are dropped.
	var fill []net.Conn
	defer func() {
		for _, c := range fill {
			err = errors.Join(err, c.Close())
		}
	}()
	for len(fill) < 16 {
		c, err := net.DialTimeout("tcp", deadAddr.String(), 200*time.Millisecond)
		if err != nil {
			break // a connect that does not complete: the queue is full
		}
		fill = append(fill, c)
	}
	if len(fill) == 16 {
		return nil, errors.New("the accept queue of the blackholed address never filled")
	}

	cache := cachedAddrs{deadAddr.Addr(), netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	target := net.JoinHostPort(eyeballsName, fmt.Sprint(port))

	// One after the other: net.Dial on each cached address, no timeout of its own.
	q := *b.p
	q.warmup, q.timeout = 0, limit
	serial, err := q.measure(ctx, "eyeballs_serial", "cached addresses one after the other", 1, func(ctx context.Context) error {
		addrs, err := cache.LookupNetIP(ctx, "ip4", eyeballsName)
		if err != nil {
			return err
		}
		var d net.Dialer
		var errs []error
		for _, a := range addrs {
			c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, port).String())
			if err == nil {
				return c.Close()
			}
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	capped := false
	var ne net.Error
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) {
		// The only sample ran into the cap: that is the measurement.
		if serial, err = oneSample("eyeballs_serial", "cached addresses one after the other", limit); err != nil {
			return nil, err
		}
		capped = true
	} else if err != nil {
		return nil, err
	}
	d, err := dialer.New(dialer.Timeout(b.cfg.timeout), dialer.Resolver(cache))
	if err != nil {
		return nil, err
	}
	q = *b.p
	q.warmup = min(q.warmup, 1)
	raced, err := q.measure(ctx, "eyeballs_dialer", "nettune dialer over the cache", 3, dialAndClose(d, target))
	if err != nil {
		return nil, err
	}
	return &comparison{name: "eyeballs",
		without: side{label: "one after the other", s: serial, capped: capped},
		with:    side{label: "dialer, Happy Eyeballs", s: raced},
		floor:   300 * time.Millisecond,
		how:     "dialer.New(dialer.Resolver(cache)): the next address after dialer.FallbackDelay (300ms)",
		note: fmt.Sprintf("on this process's loopback in every mode (the dialer's racing goroutines cannot enter a lab host). "+
			"%s resolves, from a cache, to 127.0.0.2 first, a listener whose accept queue is full so that "+
			"the kernel drops every SYN (a blackhole), then 127.0.0.1. One after the other, the first connect waits for "+
			"its SYN retransmissions (about 2 minutes with tcp_syn_retries=6): cut at %v. The floor is the fallback delay.",
			eyeballsName, limit)}, nil
}
