package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/nettune/nettune/internal/optset"
	"github.com/nettune/nettune/sockopt"
)

// maxGroup is the largest reuse-port group: the kernel's group holds at
// most 65535 sockets (U16_MAX).
const maxGroup = 65535

// Group is n listeners on one address, bound with SO_REUSEPORT, for n
// accept loops: the kernel spreads new connections among them by a hash of
// the connection's addresses, which is cheaper than n goroutines sharing
// one accept queue, though not perfectly even.
//
// # Closing one listener of a group
//
// When one listener of a group is closed, the connections already waiting
// in its accept queue are reset, unless net.ipv4.tcp_migrate_req is 1 in
// the network namespace, in which case the kernel moves them to another
// listener of the group (measured on Linux 6.x: 101 of 200 queued
// connections reset with 0, none with 1). [MigrateRequests] reads the
// sysctl. With it at 0, retire a listener with [Listener.Drain] instead of
// Close: Drain takes the queued connections out before closing, leaving
// only the connections that arrive during the Drain call itself (a window
// of microseconds) and those still in their handshake to be reset.
//
// Closing the whole group with [Group.Close] resets every queued
// connection whatever the sysctl: for a graceful shutdown stop new traffic
// first (take the address out of the load balancer), then Drain each
// listener and serve what it returns.
//
// A Group is safe for concurrent use; each of its listeners is too.
type Group struct {
	ls []*Listener // fixed after ListenGroup
}

// ListenGroup listens n times on one address with SO_REUSEPORT set, for n
// accept loops. If address has port 0, the first listener picks the port
// and the others join it. c must not hold ReusePort(false) (an
// *OptionError). network is checked as by Listen, and n must be between 1
// and 65535: a bad argument is a *net.OpError, as a bad network is for
// Listen. On error no listener stays open.
//
// Any process of the same user that listens on the address with
// SO_REUSEPORT joins the group and gets a share of the connections.
func (c *Config) ListenGroup(ctx context.Context, network, address string, n int) (*Group, error) {
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	if n < 1 || n > maxGroup {
		return nil, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("listener: ListenGroup n = %d: must be between 1 and %d", n, maxGroup)}
	}
	gc := *c
	gc.listen = append([]sockopt.Option(nil), c.listen...)
	has := false
	for _, o := range gc.listen {
		if rp, ok := o.(sockopt.ReusePort); ok {
			if !rp {
				return nil, &OptionError{Option: ReusePort(false), Err: errors.New("ListenGroup needs SO_REUSEPORT")}
			}
			has = true
		}
	}
	if !has {
		gc.listen = append(gc.listen, sockopt.ReusePort(true))
	}
	gc.lc.Control = optset.Chain(optset.Sockopts(sockopt.ListenControl, gc.listen), gc.control)
	g := &Group{ls: make([]*Listener, 0, n)}
	for i := range n {
		l, err := gc.Listen(ctx, network, address)
		if err != nil {
			g.Close()
			return nil, err
		}
		g.ls = append(g.ls, l)
		if i == 0 {
			address = l.Addr().String()
		}
	}
	return g, nil
}

// Listeners returns the group's listeners, one per accept loop. The slice
// is a fresh copy.
func (g *Group) Listeners() []*Listener { return append([]*Listener(nil), g.ls...) }

// Addr returns the address the group listens on.
func (g *Group) Addr() net.Addr { return g.ls[0].Addr() }

// Close closes every listener of the group and returns their errors
// joined; closing an already closed (or drained) listener is not an error.
// Connections queued on them are reset: see [Group] for a graceful order.
func (g *Group) Close() error {
	var errs []error
	for _, l := range g.ls {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// MigrateRequests reports net.ipv4.tcp_migrate_req of the caller's network
// namespace: whether the kernel moves the connections queued on a closing
// listener of a reuse-port group to another listener of the group (true),
// or resets them (false). The kernel reads it when a listener closes, so
// the answer holds for listeners closed now. Outside Linux, and on kernels
// older than 5.14, it returns an error wrapping errors.ErrUnsupported.
func MigrateRequests() (bool, error) { return migrateRequests() }

// Drain retires l without resetting the connections waiting in its accept
// queue: it makes Accept calls on l, including ones blocked in other
// goroutines, return an error wrapping net.ErrClosed, takes every queued
// connection out of the kernel's queue without waiting, sets the
// per-connection options on each, closes l and returns the connections
// for the caller to serve. A connection whose options cannot be set is
// closed and its error returned joined with the others, next to the
// connections that did succeed.
//
// In a reuse-port group, a connection the kernel hands to l between the
// last accept and the close is still reset when net.ipv4.tcp_migrate_req
// is 0; that window is the length of one system call. Drain needs Linux;
// elsewhere it closes l and returns an error wrapping
// errors.ErrUnsupported.
func (l *Listener) Drain() ([]*net.TCPConn, error) {
	l.draining.Store(true)
	// Wake Accept calls blocked in other goroutines; they see draining.
	if err := l.tl.SetDeadline(time.Unix(1, 0)); err != nil {
		return nil, fmt.Errorf("listener: drain: %w", err)
	}
	rc, err := l.tl.SyscallConn()
	if err != nil {
		l.tl.Close()
		return nil, fmt.Errorf("listener: drain: %w", err)
	}
	conns, err := acceptQueued(rc)
	errs := []error{err}
	if cerr := l.tl.Close(); cerr != nil {
		errs = append(errs, cerr)
	}
	kept := conns[:0]
	for _, c := range conns {
		if err := l.setDrained(c); err != nil {
			errs = append(errs, err)
			continue
		}
		kept = append(kept, c)
	}
	return kept, errors.Join(errs...)
}

// setDrained gives a connection taken by Drain what Accept would have:
// the per-connection options, [KeepAliveConfig]'s included (net.FileConn set
// Go's default keepalive, as Go's Accept does). On failure it closes c.
func (l *Listener) setDrained(c *net.TCPConn) error { return l.setConnOptions(c) }

// QueueLen reports how many connections wait in l's accept queue (on
// Linux tcpi_unacked of the listening socket's TCP_INFO). Elsewhere it
// returns an error wrapping errors.ErrUnsupported.
func (l *Listener) QueueLen() (int, error) {
	rc, err := l.tl.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("listener: %w", err)
	}
	return queueLen(rc)
}
