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

// labDeadAddr is a lab address no host has (netlab has at most 16): the
// relay drops what is sent to it, SYNs included, as a blackhole would.
var labDeadAddr = netip.AddrFrom4([4]byte{198, 18, 0, 254})

// eyeballs dials a name whose first cached address drops every SYN: one
// address after the other, as rs/dnscache's README suggests, against
// nettune's dialer over the same cache, both from the client host to the
// server host. In the lab the dead address is one no lab host has, and
// the dialer makes the sockets of its racing attempts in the client host
// through dialer.RunAttempt. On loopback it is a listener on 127.0.0.2
// whose accept queue is full: the kernel drops the SYNs it gets.
func (b *bench) eyeballs(ctx context.Context) (_ *comparison, err error) {
	const limit = 2 * time.Second // the one-after-the-other side stops here
	client, server := b.path.client, b.path.server
	lc, err := listener.New()
	if err != nil {
		return nil, err
	}
	live, err := server.listen(ctx, lc)
	if err != nil {
		return nil, err
	}
	srv := serve(live, nil, echoHandler(b.cfg.size))
	defer func() { err = errors.Join(err, srv.close()) }()
	port := port(live.Addr().String())

	deadAddr := netip.AddrPortFrom(labDeadAddr, port)
	if b.path.lab == nil {
		var closeDead func() error
		deadAddr, closeDead, err = fullQueue(ctx, port)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, closeDead()) }()
	}
	cache := cachedAddrs{deadAddr.Addr(), server.addr}
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
			var c net.Conn
			err := client.run(func() (err error) {
				c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, port).String())
				return err
			})
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
	d, err := dialer.New(dialer.Timeout(b.cfg.timeout), dialer.Resolver(cache),
		dialer.RunAttempt(func(attempt func() (net.Conn, error)) (c net.Conn, err error) {
			err = client.run(func() error { c, err = attempt(); return err })
			return c, err
		}))
	if err != nil {
		return nil, err
	}
	q = *b.p
	q.warmup = min(q.warmup, 1)
	raced, err := q.measure(ctx, "eyeballs_dialer", "nettune dialer over the cache", 3, dialAndClose(d, target))
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("from the client host to the server host; %s resolves, from a cache, to %v first, an address "+
		"no lab host has (the relay drops every SYN: a blackhole), then the server's %v. The dialer makes its racing "+
		"attempts' sockets in the client host with dialer.RunAttempt", eyeballsName, labDeadAddr, server.addr)
	if b.path.lab == nil {
		where = fmt.Sprintf("on loopback; %s resolves, from a cache, to 127.0.0.2 first, a listener whose accept queue is "+
			"full so that the kernel drops every SYN (a blackhole), then 127.0.0.1", eyeballsName)
	}
	return &comparison{name: "eyeballs",
		without: side{label: "one after the other", s: serial, capped: capped},
		with:    side{label: "dialer, Happy Eyeballs", s: raced},
		floor:   300*time.Millisecond + b.path.rtt(),
		how:     "dialer.New(dialer.Resolver(cache)): the next address after dialer.FallbackDelay (300ms)",
		note: fmt.Sprintf("%s. One after the other, the first connect waits for its SYN retransmissions "+
			"(about 2 minutes with tcp_syn_retries=6): cut at %v. The floor is the fallback delay plus the connect's "+
			"round trip.", where, limit)}, nil
}

// fullQueue listens on 127.0.0.2:port with a backlog of 1 and fills its
// accept queue, so that the kernel drops the SYNs that come next: a
// blackholed address on loopback. closeAll closes the listener and the conns
// that filled it.
func fullQueue(ctx context.Context, port uint16) (addr netip.AddrPort, closeAll func() error, err error) {
	lc, err := listener.New(listener.Backlog(1))
	if err != nil {
		return addr, nil, err
	}
	addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 2}), port)
	dead, err := lc.Listen(ctx, "tcp", addr.String())
	if err != nil {
		return addr, nil, fmt.Errorf("the blackholed address: %w", err)
	}
	var fill []net.Conn
	closeAll = func() error {
		errs := []error{dead.Close()}
		for _, c := range fill {
			errs = append(errs, c.Close())
		}
		return errors.Join(errs...)
	}
	// Fill the accept queue (never accepted): later SYNs are dropped.
	for len(fill) < 16 {
		c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond)
		if err != nil {
			break // a connect that does not complete: the queue is full
		}
		fill = append(fill, c)
	}
	if len(fill) == 16 {
		return addr, nil, errors.Join(errors.New("the accept queue of the blackholed address never filled"), closeAll())
	}
	return addr, closeAll, nil
}
