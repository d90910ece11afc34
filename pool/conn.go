package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// DialFunc dials a connection: the shape of [net.Dialer.DialContext], of
// [tls.Dialer.DialContext] and of a nettune dialer's DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// ConnPool is a pool of connections to one address. Its [ConnPool.Get]
// returns a [*Conn] whose Close puts the connection back. It is safe for
// concurrent use by multiple goroutines.
type ConnPool struct {
	p       *Pool[net.Conn]
	network string
	address string
}

// ErrPeerClosed is wrapped by the liveness check's error when the peer
// has closed its side of an idle connection (EOF).
var ErrPeerClosed = errors.New("pool: peer closed the idle connection")

// ErrUnexpectedData is wrapped by the liveness check's error when an idle
// plain (not TLS) connection has bytes waiting that nobody asked for.
var ErrUnexpectedData = errors.New("pool: unread data on an idle connection")

var errLivenessUnsupported = fmt.Errorf("pool: the liveness check needs a non-blocking socket peek: %w", errors.ErrUnsupported)

// NewConnPool returns a pool of connections to address on network, made
// with dial (a zero [net.Dialer]'s DialContext when nil). It takes the
// options of [New]; a HealthCheck among them must be a
// HealthCheck[net.Conn], and runs after the liveness check (see
// [LivenessCheck], on by default where supported).
func NewConnPool(dial DialFunc, network, address string, opts ...Option) (*ConnPool, error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	cfg, err := buildConfig(true, opts)
	if err != nil {
		return nil, err
	}
	if !livenessSupported {
		if cfg.livenessSet && cfg.liveness >= 0 {
			return nil, fmt.Errorf("%v: %w", LivenessCheck(cfg.liveness), errLivenessUnsupported)
		}
		cfg.liveness = -1
	}
	var user func(context.Context, net.Conn) error
	if cfg.health != nil {
		fn, ok := cfg.health.(func(context.Context, net.Conn) error)
		if !ok {
			return nil, fmt.Errorf("pool: HealthCheck takes a %T, not a check of net.Conn", cfg.health)
		}
		user = fn
	}
	live, userAt := cfg.liveness, cfg.healthAfter
	var check func(context.Context, net.Conn, time.Duration, bool) error
	checkAt := int64(-1)
	switch {
	case live >= 0 && user != nil:
		check = func(ctx context.Context, c net.Conn, quiet time.Duration, suspect bool) error {
			if suspect || quiet >= live {
				if err := probe(c); err != nil {
					return err
				}
			}
			if quiet >= userAt {
				return user(ctx, c)
			}
			return nil
		}
		checkAt = int64(min(live, userAt))
	case live >= 0:
		// Called only when due: quiet ≥ live, or suspect.
		check = func(_ context.Context, c net.Conn, _ time.Duration, _ bool) error { return probe(c) }
		checkAt = int64(live)
	case user != nil:
		check = func(ctx context.Context, c net.Conn, _ time.Duration, _ bool) error { return user(ctx, c) }
		checkAt = int64(userAt)
	}
	dialConn := func(ctx context.Context) (net.Conn, error) { return dial(ctx, network, address) }
	closeConn := func(c net.Conn) error { return c.Close() }
	return &ConnPool{p: newPool(dialConn, closeConn, cfg, check, checkAt), network: network, address: address}, nil
}

// Get returns a pooled connection, dialing or waiting as [Pool.Get] does.
// The *Conn is allocated per checkout, so that a stale one cannot touch the
// connection once it is back in the pool.
func (cp *ConnPool) Get(ctx context.Context) (*Conn, error) {
	h, err := cp.p.Get(ctx)
	if err != nil {
		return nil, err
	}
	return &Conn{h: h, c: h.Value()}, nil
}

// TryGet is [Pool.TryGet] for connections.
func (cp *ConnPool) TryGet(ctx context.Context) (*Conn, error) {
	h, err := cp.p.TryGet(ctx)
	if err != nil {
		return nil, err
	}
	return &Conn{h: h, c: h.Value()}, nil
}

// Stats is [Pool.Stats].
func (cp *ConnPool) Stats() Stats { return cp.p.Stats() }

// Reset is [Pool.Reset].
func (cp *ConnPool) Reset() { cp.p.Reset() }

// Close is [Pool.Close].
func (cp *ConnPool) Close(ctx context.Context) error { return cp.p.Close(ctx) }

// String names the pool's address.
func (cp *ConnPool) String() string { return "pool.ConnPool(" + cp.network + " " + cp.address + ")" }

// Conn states.
const (
	connLive int32 = iota
	connBroken
	connReturned
)

// Conn is a pooled connection: a [net.Conn] whose Close returns it to its
// [ConnPool]. A Conn is safe for concurrent use in the ways a net.Conn is (a
// Read and a Write at once; Close from another goroutine, which then
// discards the connection instead of pooling it, since an operation was in
// flight).
//
// A Read or Write that fails (including by a deadline) marks the Conn
// broken: Close then closes the connection instead of pooling it, because
// the protocol's state on it is unknown. Deadlines set on a Conn are
// cleared before it is pooled again.
//
// The Conn also notes, for the [LivenessCheck], when a Read last returned
// data (the peer was alive then) and whether a Write came after it (a
// reply may still be on its way). Only I/O through the Conn counts, not
// through [Conn.NetConn]. Read every reply before Close: a conn returned
// with a reply unread is closed at its next checkout only if the reply has
// arrived by then and the conn is plain, and one returned with a reply
// read only in part only once it has been quiet for the threshold; call
// [Conn.MarkUnusable] when in doubt.
type Conn struct {
	h        Resource[net.Conn]
	c        net.Conn
	state    atomic.Int32
	ops      atomic.Int32 // Reads and Writes in flight
	deadline atomic.Bool  // a deadline was set
	unread   atomic.Bool  // a Write since the last Read that returned data
}

var _ net.Conn = (*Conn)(nil)

func (c *Conn) errReturned(op string) error {
	return &net.OpError{Op: op, Net: c.c.LocalAddr().Network(), Source: c.c.LocalAddr(), Addr: c.c.RemoteAddr(),
		Err: fmt.Errorf("pool: conn returned to its pool: %w", net.ErrClosed)}
}

// Read reads from the connection. After Close it returns an error wrapping
// [net.ErrClosed]. A Read that returns data proves the peer alive, for the
// liveness check's quiet time.
func (c *Conn) Read(b []byte) (int, error) {
	c.ops.Add(1)
	defer c.ops.Add(-1)
	if c.state.Load() == connReturned {
		return 0, c.errReturned("read")
	}
	n, err := c.c.Read(b)
	if err != nil {
		c.state.CompareAndSwap(connLive, connBroken)
	} else if n > 0 {
		// Data from the peer: it was alive, and has answered.
		if r := c.h.r; r.pool.timed {
			// On the resource, not the Conn, to keep the Conn (one per
			// checkout) in its allocation size class. Only a Read of
			// this checkout can be running (see Close).
			r.readAt.Store(r.pool.now())
		}
		if c.unread.Load() {
			c.unread.Store(false)
		}
	}
	return n, err
}

// Write writes to the connection. After Close it returns an error wrapping
// [net.ErrClosed]. Until a Read returns data, the Conn counts as awaiting a
// reply (see [LivenessCheck]).
func (c *Conn) Write(b []byte) (int, error) {
	c.ops.Add(1)
	defer c.ops.Add(-1)
	if c.state.Load() == connReturned {
		return 0, c.errReturned("write")
	}
	n, err := c.c.Write(b)
	if err != nil {
		c.state.CompareAndSwap(connLive, connBroken)
	} else if n > 0 && !c.unread.Load() {
		c.unread.Store(true)
	}
	return n, err
}

// MarkUnusable makes Close close the connection instead of pooling it.
func (c *Conn) MarkUnusable() { c.state.CompareAndSwap(connLive, connBroken) }

// Close returns the connection to the pool, or closes it if it was marked
// unusable, broke, or a Read or Write is still running. A second Close
// returns an error wrapping [net.ErrClosed]. A conn returned awaiting a
// reply (a Write after its last Read) is peeked at before its next use.
func (c *Conn) Close() error {
	prev := c.state.Swap(connReturned)
	if prev == connReturned {
		return c.errReturned("close")
	}
	if prev == connBroken || c.ops.Load() > 0 {
		return c.h.Discard()
	}
	if c.deadline.Load() {
		if err := c.c.SetDeadline(time.Time{}); err != nil {
			return c.h.Discard()
		}
	}
	var n returnNote
	if c.unread.Load() {
		// A reply may be on its way. Only a plain conn's peek can tell a
		// reply from a TLS record the server sent unasked.
		_, isTLS := underlying(c.c)
		n.suspect = !isTLS
	}
	c.h.r.pool.release(c.h, n)
	return nil
}

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.c.LocalAddr() }

// RemoteAddr returns the remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.c.RemoteAddr() }

// SetDeadline sets both deadlines; they are cleared when the Conn is pooled.
func (c *Conn) SetDeadline(t time.Time) error {
	c.deadline.Store(true)
	return c.c.SetDeadline(t)
}

// SetReadDeadline sets the read deadline; it is cleared when the Conn is
// pooled.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.deadline.Store(true)
	return c.c.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline; it is cleared when the Conn is
// pooled.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.deadline.Store(true)
	return c.c.SetWriteDeadline(t)
}

// NetConn returns the connection the dial function made, such as a
// *net.TCPConn or a *tls.Conn, for type assertions and socket options. The
// caller must not close it or keep it past Close.
func (c *Conn) NetConn() net.Conn { return c.c }

// probe is the liveness check: it reaches the socket under any *tls.Conn
// or other wrapper with a NetConn method, and peeks at it without
// blocking. Connections without a file descriptor (net.Pipe, wrappers
// without NetConn) pass unchecked.
func probe(c net.Conn) error {
	c, isTLS := underlying(c)
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("pool: liveness: %w", err)
	}
	return peek(rc, isTLS)
}

// underlying unwraps c through any *tls.Conn or other wrapper with a
// NetConn method, and says whether there was TLS on the way.
func underlying(c net.Conn) (_ net.Conn, isTLS bool) {
	for {
		switch u := c.(type) {
		case *tls.Conn:
			isTLS = true
			c = u.NetConn()
			continue
		case interface{ NetConn() net.Conn }:
			c = u.NetConn()
			continue
		}
		return c, isTLS
	}
}
