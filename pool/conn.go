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

// ConnPool is a pool of connections to one address. Its [ConnPool.Get]
// returns a [*Conn] whose Close puts the connection back. It is safe for
// concurrent use by multiple goroutines. To keep state with each
// connection (a bufio.Reader, a protocol client), use [NewConnPoolOf].
//
// The zero ConnPool is not usable: its Get and TryGet return an error
// saying so, and its other methods do nothing.
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

var errLivenessUnsupported = fmt.Errorf("the liveness check needs a non-blocking socket peek: %w", errors.ErrUnsupported)

// NewConnPool returns a pool of connections to address on network, made
// with dial: [net.Dialer.DialContext], [tls.Dialer.DialContext], a nettune
// dialer's DialContext (a zero net.Dialer's when nil). It takes every
// [Option] of [New] and the [LivenessCheck] (on by default where
// supported); a HealthCheck among them must be a HealthCheck[net.Conn],
// and runs after the liveness check. It returns an [*OptionError] when an
// option is invalid. The HealthCheck gets the connection as dialed (such
// as a *tls.Conn), as [Conn.NetConn] returns it.
func NewConnPool(dial func(ctx context.Context, network, address string) (net.Conn, error),
	network, address string, opts ...ConnOption) (*ConnPool, error) {
	p, err := newConnPool(dial, network, address, asConn, opts)
	if err != nil {
		return nil, err
	}
	return &ConnPool{p: p, network: network, address: address}, nil
}

// asConn makes the value of a ConnPool's resource the conn as dialed,
// which its HealthCheck gets; the *Conn reaches the pool's view of it
// through the resource.
func asConn(_ context.Context, c net.Conn) (net.Conn, error) { return c.(*connState).c, nil }

// NewConnPoolOf returns a pool of C, each made by wrap over a connection
// to address on network dialed with dial (as for [NewConnPool]): a
// protocol client, or a struct holding the conn with its bufio.Reader,
// that lives as long as the connection. wrap runs once per connection,
// right after the dial and with the dial's context; it may talk to the
// server (a handshake, AUTH), and its error counts as a failed dial (the
// pool closes the conn). The conn wrap gets is the pool's view of the
// connection: wrap's C must do its I/O through it, since that is how the
// pool sees a Read that proves the peer alive, a Write whose reply was
// not read, and a failed Read or Write. It also has the methods
// SyscallConn and NetConn, as [*Conn] has.
//
// [Pool.Get] hands out a [Resource] whose [Resource.Value] is the C, with
// the same [LivenessCheck] (on the socket under C) and the same options
// as NewConnPool; a HealthCheck among them must be a HealthCheck[C].
// [Resource.Release] returns the connection as [Conn.Close] does: closed
// instead of pooled if a Read or Write on it failed or is still running
// (or C closed it), with its deadlines cleared. [Resource.Discard] closes
// it. The pool closes the connection itself: if C needs a goodbye (QUIT),
// send it and then Discard. As with any Resource, C must not be used
// after Release.
func NewConnPoolOf[C any](dial func(ctx context.Context, network, address string) (net.Conn, error),
	network, address string, wrap func(ctx context.Context, c net.Conn) (C, error), opts ...ConnOption) (*Pool[C], error) {
	if wrap == nil {
		return nil, errors.New("pool: nil wrap function")
	}
	return newConnPool(dial, network, address, wrap, opts)
}

// newConnPool builds a pool of C over connections.
func newConnPool[C any](dial func(ctx context.Context, network, address string) (net.Conn, error),
	network, address string, wrap func(ctx context.Context, c net.Conn) (C, error), opts []ConnOption) (*Pool[C], error) {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	cfg, err := buildConfig(true, opts)
	if err != nil {
		return nil, err
	}
	if !livenessSupported {
		if cfg.livenessOpt != nil {
			return nil, &OptionError{Option: cfg.livenessOpt, Err: errLivenessUnsupported}
		}
		cfg.liveness = -1
	}
	health, err := healthFor[C](&cfg)
	if err != nil {
		return nil, err
	}
	p := newPool(cfg, health)
	p.dial = func(ctx context.Context) (C, *connState, error) {
		var zero C
		c, err := dial(ctx, network, address)
		if err != nil {
			return zero, nil, err
		}
		s := newConnState(c, &p.clk)
		v, err := wrap(ctx, s)
		if err != nil {
			return zero, nil, errors.Join(err, s.close())
		}
		return v, s, nil
	}
	p.start()
	return p, nil
}

var errNotNewConnPool = errors.New("pool: ConnPool used without NewConnPool")

// Get returns a pooled connection, dialing or waiting as [Pool.Get] does.
// The *Conn is allocated per checkout, so that a stale one cannot touch the
// connection once it is back in the pool.
func (cp *ConnPool) Get(ctx context.Context) (*Conn, error) {
	return cp.checkOut(ctx, (*Pool[net.Conn]).Get)
}

// TryGet is [Pool.TryGet] for connections.
func (cp *ConnPool) TryGet(ctx context.Context) (*Conn, error) {
	return cp.checkOut(ctx, (*Pool[net.Conn]).TryGet)
}

// checkOut wraps what get returns in a new *Conn.
func (cp *ConnPool) checkOut(ctx context.Context,
	get func(*Pool[net.Conn], context.Context) (Resource[net.Conn], error)) (*Conn, error) {
	if cp.p == nil {
		return nil, errNotNewConnPool
	}
	h, err := get(cp.p, ctx)
	if err != nil {
		return nil, err
	}
	return &Conn{h: h}, nil
}

// Stats is [Pool.Stats].
func (cp *ConnPool) Stats() Stats {
	if cp.p == nil {
		return Stats{}
	}
	return cp.p.Stats()
}

// Reset is [Pool.Reset].
func (cp *ConnPool) Reset() {
	if cp.p != nil {
		cp.p.Reset()
	}
}

// Close is [Pool.Close]: it closes the pool now, and always returns nil.
func (cp *ConnPool) Close() error {
	if cp.p == nil {
		return nil
	}
	return cp.p.Close()
}

// Shutdown is [Pool.Shutdown]: Close, then wait until ctx ends for the
// connections in use to come back and everything to be closed.
func (cp *ConnPool) Shutdown(ctx context.Context) error {
	if cp.p == nil {
		return nil
	}
	return cp.p.Shutdown(ctx)
}

// String names the pool's address.
func (cp *ConnPool) String() string { return "pool.ConnPool(" + cp.network + " " + cp.address + ")" }

// connState is the pool's view of one pooled connection, for the
// connection's whole life: the net.Conn that [NewConnPoolOf]'s wrap gets,
// and the one under every [*Conn]. It notes what the liveness check and
// the return to the pool need to know about the I/O on the connection.
type connState struct {
	c      net.Conn        // as dialed
	raw    syscall.RawConn // of the socket under any TLS, for the liveness peek; nil: none
	rawErr error           // why there is no raw, if SyscallConn failed
	tls    bool            // TLS on the way to the socket
	clk    *clock          // the pool's

	ops      atomic.Int32 // Reads and Writes in flight
	broken   atomic.Bool  // a Read or Write failed, or Close was called
	deadline atomic.Bool  // a deadline was set since the conn was last returned
	unread   atomic.Bool  // a Write since the last Read that returned data
	closed   atomic.Bool  // the connection is closed
	readAt   atomic.Int64 // a Read last returned data, in the clock's nanoseconds (only when timed)
}

var (
	_ net.Conn     = (*connState)(nil)
	_ syscall.Conn = (*connState)(nil)
)

func newConnState(c net.Conn, clk *clock) *connState {
	s := &connState{c: c, clk: clk}
	u, isTLS := underlying(c)
	s.tls = isTLS
	if sc, ok := u.(syscall.Conn); ok {
		if s.raw, s.rawErr = sc.SyscallConn(); s.rawErr != nil {
			s.rawErr = fmt.Errorf("pool: liveness: %w", s.rawErr)
		}
	}
	return s
}

// read is Read without the count of operations in flight.
func (s *connState) read(b []byte) (int, error) {
	n, err := s.c.Read(b)
	if err != nil {
		s.broken.Store(true)
	} else if n > 0 {
		// Data from the peer: it was alive, and has answered.
		if s.clk.timed {
			s.readAt.Store(s.clk.now())
		}
		if s.unread.Load() {
			s.unread.Store(false)
		}
	}
	return n, err
}

// write is Write without the count of operations in flight.
func (s *connState) write(b []byte) (int, error) {
	n, err := s.c.Write(b)
	if err != nil {
		s.broken.Store(true)
	} else if n > 0 && !s.unread.Load() {
		s.unread.Store(true)
	}
	return n, err
}

// Read reads from the connection; a Read that returns data proves the
// peer alive.
func (s *connState) Read(b []byte) (int, error) {
	s.ops.Add(1)
	defer s.ops.Add(-1)
	return s.read(b)
}

// Write writes to the connection.
func (s *connState) Write(b []byte) (int, error) {
	s.ops.Add(1)
	defer s.ops.Add(-1)
	return s.write(b)
}

// Close closes the connection; the pool then drops it when it comes back.
func (s *connState) Close() error {
	s.broken.Store(true)
	return s.close()
}

// close closes the connection once; later calls return nil.
func (s *connState) close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.c.Close()
}

func (s *connState) LocalAddr() net.Addr  { return s.c.LocalAddr() }
func (s *connState) RemoteAddr() net.Addr { return s.c.RemoteAddr() }

func (s *connState) SetDeadline(t time.Time) error {
	s.deadline.Store(true)
	return s.c.SetDeadline(t)
}

func (s *connState) SetReadDeadline(t time.Time) error {
	s.deadline.Store(true)
	return s.c.SetReadDeadline(t)
}

func (s *connState) SetWriteDeadline(t time.Time) error {
	s.deadline.Store(true)
	return s.c.SetWriteDeadline(t)
}

// NetConn returns the connection as dialed.
func (s *connState) NetConn() net.Conn { return s.c }

// SyscallConn returns the dialed connection's, if it has one.
func (s *connState) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := s.c.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, fmt.Errorf("pool: a %T has no SyscallConn (reach the socket through NetConn): %w", s.c, errors.ErrUnsupported)
}

// probe is the liveness check: a non-blocking peek at the socket under
// any TLS. Connections without a file descriptor (net.Pipe, wrappers
// without NetConn) pass unchecked.
func (s *connState) probe() error {
	if s.raw == nil {
		return s.rawErr
	}
	return peek(s.raw, s.tls)
}

func (s *connState) errReturned(op string) error {
	return &net.OpError{Op: op, Net: s.c.LocalAddr().Network(), Source: s.c.LocalAddr(), Addr: s.c.RemoteAddr(),
		Err: fmt.Errorf("pool: conn returned to its pool: %w", net.ErrClosed)}
}

// returnConn takes back a connection: the Close of a *Conn, the Release of
// a Resource of NewConnPoolOf.
func (p *Pool[T]) returnConn(h Resource[T]) error {
	s := h.r.conn
	if s.broken.Load() || s.ops.Load() > 0 {
		return p.discard(h)
	}
	if s.deadline.Load() {
		s.deadline.Store(false)
		if err := s.c.SetDeadline(time.Time{}); err != nil {
			return p.discard(h)
		}
	}
	var n returnNote
	if s.unread.Load() {
		// A reply may be on its way. Only a plain conn's peek can tell a
		// reply from a TLS record the server sent unasked.
		s.unread.Store(false)
		n.suspect = !s.tls
	}
	p.release(h, n)
	return nil
}

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
//
// A Conn implements [syscall.Conn] for socket options and TCP_INFO
// (sockopt.ReadTCPInfo takes it). The zero Conn is closed: its methods
// return an error wrapping [net.ErrClosed].
type Conn struct {
	h        Resource[net.Conn]
	returned atomic.Bool
}

var (
	_ net.Conn     = (*Conn)(nil)
	_ syscall.Conn = (*Conn)(nil)
)

var errZeroConn = fmt.Errorf("pool: a zero Conn, not from ConnPool.Get: %w", net.ErrClosed)

// state returns the connection, or an error if the Conn is the zero one
// or has been returned.
func (c *Conn) state(op string) (*connState, error) {
	r := c.h.r
	if r == nil {
		return nil, errZeroConn
	}
	if c.returned.Load() {
		return nil, r.conn.errReturned(op)
	}
	return r.conn, nil
}

// Read reads from the connection. After Close it returns an error wrapping
// [net.ErrClosed]. A Read that returns data proves the peer alive, for the
// liveness check's quiet time.
func (c *Conn) Read(b []byte) (int, error) { return c.do("read", b, (*connState).read) }

// Write writes to the connection. After Close it returns an error wrapping
// [net.ErrClosed]. Until a Read returns data, the Conn counts as awaiting a
// reply (see [LivenessCheck]).
func (c *Conn) Write(b []byte) (int, error) { return c.do("write", b, (*connState).write) }

// do runs a Read or Write: counted in flight before checking that the
// Conn was not returned, as Close checks in the other order.
func (c *Conn) do(op string, b []byte, f func(*connState, []byte) (int, error)) (int, error) {
	r := c.h.r
	if r == nil {
		return 0, errZeroConn
	}
	s := r.conn
	s.ops.Add(1)
	defer s.ops.Add(-1)
	if c.returned.Load() {
		return 0, s.errReturned(op)
	}
	return f(s, b)
}

// MarkUnusable makes Close close the connection instead of pooling it.
func (c *Conn) MarkUnusable() {
	if s, err := c.state("mark"); err == nil {
		s.broken.Store(true)
	}
}

// Close returns the connection to the pool, or closes it if it was marked
// unusable, broke, or a Read or Write is still running. A second Close
// returns an error wrapping [net.ErrClosed]. A conn returned awaiting a
// reply (a Write after its last Read) is peeked at before its next use.
func (c *Conn) Close() error {
	r := c.h.r
	if r == nil {
		return errZeroConn
	}
	if c.returned.Swap(true) {
		return r.conn.errReturned("close")
	}
	return r.pool.returnConn(c.h)
}

// LocalAddr returns the local address (nil for the zero Conn).
func (c *Conn) LocalAddr() net.Addr {
	if c.h.r == nil {
		return nil
	}
	return c.h.r.conn.c.LocalAddr()
}

// RemoteAddr returns the remote address (nil for the zero Conn).
func (c *Conn) RemoteAddr() net.Addr {
	if c.h.r == nil {
		return nil
	}
	return c.h.r.conn.c.RemoteAddr()
}

// SetDeadline sets both deadlines; they are cleared when the Conn is pooled.
func (c *Conn) SetDeadline(t time.Time) error {
	s, err := c.state("set")
	if err != nil {
		return err
	}
	return s.SetDeadline(t)
}

// SetReadDeadline sets the read deadline; it is cleared when the Conn is
// pooled.
func (c *Conn) SetReadDeadline(t time.Time) error {
	s, err := c.state("set")
	if err != nil {
		return err
	}
	return s.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline; it is cleared when the Conn is
// pooled.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	s, err := c.state("set")
	if err != nil {
		return err
	}
	return s.SetWriteDeadline(t)
}

// NetConn returns the connection the dial function made, such as a
// *net.TCPConn or a *tls.Conn, for type assertions and socket options. The
// caller must not close it or keep it past Close. It is nil for the zero
// Conn.
func (c *Conn) NetConn() net.Conn {
	if c.h.r == nil {
		return nil
	}
	return c.h.r.conn.c
}

// SyscallConn returns the raw connection of the connection the dial
// function made, for socket options and TCP_INFO, so that a Conn is a
// [syscall.Conn]. When that connection is not a syscall.Conn (a *tls.Conn
// is not: reach the socket through NetConn) it returns an error wrapping
// [errors.ErrUnsupported]; after Close, one wrapping [net.ErrClosed].
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	s, err := c.state("syscallconn")
	if err != nil {
		return nil, err
	}
	return s.SyscallConn()
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
