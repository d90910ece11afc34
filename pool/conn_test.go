//go:build unix

package pool_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/internal/tlstest"
	"github.com/nettune/nettune/pool"
)

// server is a loopback echo server whose connections a test can close,
// reset, half-close or write to behind the client's back.
type server struct {
	t      testing.TB
	ln     net.Listener
	tlsCfg *tls.Config
	silent bool // accept but never read or write

	mu    sync.Mutex
	raw   []*net.TCPConn
	conns []net.Conn // raw, or TLS over raw
	wg    sync.WaitGroup
}

func startServer(t testing.TB, addr string, tlsCfg *tls.Config) *server {
	t.Helper()
	return startServerWith(t, addr, tlsCfg, false)
}

// startServerWith starts a server; a silent one accepts connections but
// never reads or writes.
func startServerWith(t testing.TB, addr string, tlsCfg *tls.Config, silent bool) *server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err, "listening on %s", addr)
	s := &server{t: t, ln: ln, tlsCfg: tlsCfg, silent: silent}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.stop)
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

func (s *server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		tc := c.(*net.TCPConn)
		var conn net.Conn = tc
		if s.tlsCfg != nil {
			conn = tls.Server(tc, s.tlsCfg)
		}
		s.mu.Lock()
		s.raw = append(s.raw, tc)
		s.conns = append(s.conns, conn)
		s.mu.Unlock()
		if s.silent {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_, _ = io.Copy(conn, conn)
		}()
	}
}

// stop closes the listener and every connection, and waits for the
// server's goroutines.
func (s *server) stop() {
	_ = s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// conn returns the server side of the i-th accepted connection.
func (s *server) conn(i int) (net.Conn, *net.TCPConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[i], s.raw[i]
}

func (s *server) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// roundTrip sends a line and reads the echo.
func roundTrip(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	msg := []byte("ping\n")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != string(msg) {
		return errors.New("echo mismatch: " + string(buf))
	}
	return nil
}

func newConnPool(t testing.TB, dial func(ctx context.Context, network, address string) (net.Conn, error), addr string, opts ...pool.ConnOption) *pool.ConnPool {
	t.Helper()
	cp, err := pool.NewConnPool(dial, "tcp", addr, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, cp.Shutdown(ctx), "closing the pool")
		assert.NoError(t, cp.Underlying().CheckInvariants())
	})
	return cp
}

// warm checks out n connections, uses each once, and returns them; it
// returns the connections under the pool's wrappers.
func warm(t testing.TB, cp *pool.ConnPool, n int) []net.Conn {
	t.Helper()
	var out []*pool.Conn
	var raw []net.Conn
	for range n {
		c, err := cp.Get(context.Background())
		require.NoError(t, err)
		require.NoError(t, roundTrip(c))
		out = append(out, c)
		raw = append(raw, c.NetConn())
	}
	for _, c := range out {
		require.NoError(t, c.Close())
	}
	require.Equal(t, n, cp.Stats().Idle)
	return raw
}

// oneIdleConn returns a pool (liveness threshold 1s, fake clock) holding
// one idle conn to a loopback echo server, and the server's side of it.
func oneIdleConn(t testing.TB) (*pool.ConnPool, *fakeClock, []net.Conn, *net.TCPConn) {
	t.Helper()
	s := startServer(t, "127.0.0.1:0", nil)
	clock := newFakeClock()
	cp := newConnPool(t, nil, s.addr(), pool.LivenessCheck(time.Second), pool.Clock(clock.Now))
	conns := warm(t, cp, 1)
	eventually(t, "the server accepted", func() bool { return s.accepted() == 1 })
	_, raw := s.conn(0)
	return cp, clock, conns, raw
}

// expectReplaced moves the clock past the liveness threshold and checks
// that the next Get hands out a working conn other than dead.
func expectReplaced(t testing.TB, cp *pool.ConnPool, clock *fakeClock, dead net.Conn) {
	t.Helper()
	clock.Advance(2 * time.Second)
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	assert.NotSame(t, dead, c.NetConn(), "a new conn")
	assert.NoError(t, roundTrip(c), "it works, with no stale bytes")
	require.NoError(t, c.Close())
	assert.Equal(t, uint64(1), cp.Stats().Closed.Health, "the dead conn failed the liveness check")
}

func TestNoGetReturnsADeadConnAfterTheServerRestarts(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	addr := s.addr()
	clock := newFakeClock()
	cp := newConnPool(t, nil, addr, pool.MaxSize(4), pool.LivenessCheck(time.Second), pool.Clock(clock.Now))
	conns := warm(t, cp, 4)

	s.stop()
	for _, c := range conns {
		eventually(t, "the client sees the server's FIN", func() bool { return pool.Probe(c) != nil })
	}
	startServer(t, addr, nil) // same port: the server came back
	clock.Advance(2 * time.Second)

	for range 8 {
		c, err := cp.Get(context.Background())
		require.NoError(t, err)
		assert.NoError(t, roundTrip(c), "a conn from the pool works")
		require.NoError(t, c.Close())
	}
	assert.Equal(t, uint64(4), cp.Stats().Closed.Health, "the four dead conns were found and closed")
}

func TestWithoutTheLivenessCheckAPooledConnCanBeDead(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1), pool.LivenessCheck(-1))
	conns := warm(t, cp, 1)
	s.stop()
	eventually(t, "the client sees the server's FIN", func() bool { return pool.Probe(conns[0]) != nil })

	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	assert.Error(t, roundTrip(c), "the pool handed out a dead conn: this is what the check prevents")
	assert.NoError(t, c.Close(), "closing a broken conn discards it")
	assert.Equal(t, uint64(1), cp.Stats().Closed.Discarded)
}

func TestAnIdleConnResetByThePeerIsNotHandedOut(t *testing.T) {
	cp, clock, conns, raw := oneIdleConn(t)
	require.NoError(t, raw.SetLinger(0))
	require.NoError(t, raw.Close()) // RST
	var probeErr error
	eventually(t, "the client sees the reset", func() bool { probeErr = pool.Probe(conns[0]); return probeErr != nil })
	// The kernel reports the reset once (later reads see end of stream).
	assert.ErrorIs(t, probeErr, syscall.ECONNRESET)

	expectReplaced(t, cp, clock, conns[0])
}

func TestAnIdleConnHalfClosedByThePeerIsNotHandedOut(t *testing.T) {
	cp, clock, conns, raw := oneIdleConn(t)
	require.NoError(t, raw.CloseWrite()) // FIN, the server still reads
	eventually(t, "the client sees the FIN", func() bool { return pool.Probe(conns[0]) != nil })
	assert.ErrorIs(t, pool.Probe(conns[0]), pool.ErrPeerClosed)

	expectReplaced(t, cp, clock, conns[0])
}

func TestUnsolicitedBytesMakeAPlainIdleConnUnusable(t *testing.T) {
	cp, clock, conns, raw := oneIdleConn(t)
	_, err := raw.Write([]byte("surprise"))
	require.NoError(t, err)
	eventually(t, "the bytes arrive", func() bool { return pool.PendingBytes(conns[0]) > 0 })
	assert.ErrorIs(t, pool.Probe(conns[0]), pool.ErrUnexpectedData)

	expectReplaced(t, cp, clock, conns[0])
}

func TestTheLivenessCheckCostsNoSyscallBeforeTheIdleThreshold(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	clock := newFakeClock()
	cp := newConnPool(t, nil, s.addr(), pool.LivenessCheck(time.Second), pool.Clock(clock.Now))
	conns := warm(t, cp, 1)
	s.stop()
	eventually(t, "the client sees the FIN", func() bool { return pool.Probe(conns[0]) != nil })
	// Idle for less than the threshold: handed out unchecked, dead as it is.
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	assert.Same(t, conns[0], c.NetConn())
	c.MarkUnusable()
	require.NoError(t, c.Close())
	assert.Equal(t, uint64(0), cp.Stats().Closed.Health)
	assert.Equal(t, uint64(1), cp.Stats().Closed.Discarded)
}

// selfSigned returns a server and a client TLS config for 127.0.0.1 with
// which the server's TLS 1.3 session tickets are always left unread in the
// client's socket after the handshake: the client keeps a session cache
// (without one the server sends no tickets), and the server asks for a
// client certificate, which makes it send the tickets only after it has
// read the client's Finished, that is after the client's handshake has
// returned. Without that request Go sends them in its first flight, and
// whether the client's handshake reads them into its buffer depends on
// timing.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	server, client, err := tlstest.Configs()
	require.NoError(t, err)
	server.ClientAuth = tls.RequestClientCert
	client.ServerName = "127.0.0.1"
	client.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	return server, client
}

// tlsDial dials and finishes the handshake, without reading anything
// after it: the server's TLS 1.3 session tickets stay in the socket.
func tlsDial(cfg *tls.Config) func(ctx context.Context, network, address string) (net.Conn, error) {
	d := &tls.Dialer{Config: cfg}
	return d.DialContext
}

func TestAPendingTLSRecordIsNotDeathButAClosedTLSPeerIs(t *testing.T) {
	serverCfg, clientCfg := selfSigned(t)
	s := startServer(t, "127.0.0.1:0", serverCfg)
	clock := newFakeClock()
	cp := newConnPool(t, tlsDial(clientCfg), s.addr(), pool.LivenessCheck(time.Second), pool.Clock(clock.Now))

	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	first := c.NetConn()
	require.IsType(t, &tls.Conn{}, first)
	require.NoError(t, c.Close()) // back unused: the session tickets are unread
	eventually(t, "the server's session tickets arrive", func() bool { return pool.PendingBytes(first) > 0 })
	assert.NoError(t, pool.Probe(first), "a pending TLS record is not death")

	clock.Advance(2 * time.Second)
	c, err = cp.Get(context.Background())
	require.NoError(t, err)
	assert.Same(t, first, c.NetConn(), "the conn with a pending record is kept")
	assert.NoError(t, roundTrip(c), "and works: the TLS layer reads the tickets")
	require.NoError(t, c.Close())
	assert.Equal(t, uint64(0), cp.Stats().Closed.Health)

	if runtime.GOOS != "linux" {
		t.Skip("telling a closed TLS peer from a pending record needs TCP_INFO (Linux)")
	}
	srv, _ := s.conn(0)
	require.NoError(t, srv.Close()) // close_notify, then FIN
	eventually(t, "the client sees the alert and the FIN", func() bool { return pool.Probe(first) != nil })
	assert.ErrorIs(t, pool.Probe(first), pool.ErrPeerClosed)

	clock.Advance(2 * time.Second)
	c, err = cp.Get(context.Background())
	require.NoError(t, err)
	assert.NotSame(t, first, c.NetConn(), "the closed conn was replaced")
	assert.NoError(t, roundTrip(c))
	require.NoError(t, c.Close())
	assert.Equal(t, uint64(1), cp.Stats().Closed.Health)
}

func TestADialThatHangsFailsTheGetAtItsDeadline(t *testing.T) {
	_, clientCfg := selfSigned(t)
	s := startServerWith(t, "127.0.0.1:0", nil, true) // never answers the TLS handshake
	cp, err := pool.NewConnPool(tlsDial(clientCfg), "tcp", s.addr())
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = cp.Get(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 1, cp.Stats().Dialing, "the handshake still hangs")

	closeCtx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	assert.NoError(t, cp.Shutdown(closeCtx), "Shutdown cancels the hanging dial")
}

func TestConnCloseReturnsItAndAStaleConnCannotTouchIt(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1))
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	require.NoError(t, roundTrip(c))
	require.NoError(t, c.Close())

	assert.ErrorIs(t, c.Close(), net.ErrClosed, "a second Close")
	_, err = c.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed, "a Write after Close")
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed, "a Read after Close")

	again, err := cp.Get(context.Background())
	require.NoError(t, err)
	assert.Same(t, c.NetConn(), again.NetConn(), "the same conn, reused")
	assert.NoError(t, roundTrip(again), "untouched by the stale Conn, deadlines cleared")
	require.NoError(t, again.Close())
}

func TestAFailedReadDiscardsTheConn(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr())
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(-time.Second)))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, c.Close())
	s2 := cp.Stats()
	assert.Equal(t, uint64(1), s2.Closed.Discarded)
	assert.Equal(t, 0, s2.Idle)
}

func TestClosingAConnDuringAReadDiscardsItAndUnblocksTheRead(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr())
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	eventually(t, "the Read is blocked", func() bool { return pool.ReadsInFlight(c) == 1 })
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-readErr, net.ErrClosed)
	assert.Equal(t, uint64(1), cp.Stats().Closed.Discarded)
}

func TestAConnWithoutAFileDescriptorPassesTheLivenessCheck(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	assert.NoError(t, pool.Probe(a))
}

func TestNewConnPoolRejectsAHealthCheckOfAnotherType(t *testing.T) {
	_, err := pool.NewConnPool(nil, "tcp", "127.0.0.1:1",
		pool.HealthCheck(0, func(context.Context, *net.TCPConn) error { return nil }))
	assert.ErrorContains(t, err, "net.Conn")
}

func TestAHealthCheckRunsAfterTheLivenessCheck(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	clock := newFakeClock()
	var checked []net.Conn
	check := func(_ context.Context, c net.Conn) error {
		checked = append(checked, c)
		return errors.New("no")
	}
	cp := newConnPool(t, nil, s.addr(), pool.LivenessCheck(time.Second), pool.HealthCheck(time.Minute, check),
		pool.Clock(clock.Now))
	conns := warm(t, cp, 1)
	clock.Advance(2 * time.Second)
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	assert.Same(t, conns[0], c.NetConn(), "alive, and below the health check's threshold")
	require.NoError(t, c.Close())
	clock.Advance(2 * time.Minute)
	c, err = cp.Get(context.Background())
	require.NoError(t, err)
	assert.NotSame(t, conns[0], c.NetConn(), "the health check refused it")
	require.NoError(t, c.Close())
	assert.Len(t, checked, 1)
	assert.Same(t, conns[0], checked[0], "the check gets the conn as dialed")
}

func TestThePoolRecoversByItselfWhenTheServerComesBack(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	addr := s.addr()
	cp := newConnPool(t, nil, addr, pool.LivenessCheck(pool.EveryCheckout), pool.DialBackoff(5*time.Millisecond, 20*time.Millisecond))
	warm(t, cp, 2)
	s.stop()

	ctx := context.Background()
	// Until the FINs arrive, the liveness check may pass a conn, and a Get
	// may meet a pause; the first dial after both conns are gone is
	// refused.
	var err error
	eventually(t, "a dial is refused", func() bool {
		var c *pool.Conn
		c, err = cp.Get(ctx)
		if err == nil {
			c.MarkUnusable()
			_ = c.Close()
		}
		return err != nil && !errors.Is(err, pool.ErrBackoff)
	})
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "the server is down")
	_, err = cp.Get(ctx)
	require.ErrorIs(t, err, pool.ErrBackoff, "dialing is paused")

	startServer(t, addr, nil)
	eventually(t, "a Get succeeds again", func() bool {
		c, err := cp.Get(ctx)
		if err != nil {
			return false
		}
		defer c.Close()
		return roundTrip(c) == nil
	})
	st := cp.Stats()
	assert.Equal(t, uint64(2), st.Closed.Health+st.Closed.Discarded, "both dead conns were closed")
}

func TestConnPoolTryGetNeverWaitsAndSkipsADeadConn(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1), pool.LivenessCheck(pool.EveryCheckout))
	_, err := cp.TryGet(context.Background())
	assert.ErrorIs(t, err, pool.ErrUnavailable, "nothing idle yet")
	eventually(t, "TryGet's background dial lands", func() bool { return cp.Stats().Idle == 1 })

	c, err := cp.TryGet(context.Background())
	require.NoError(t, err)
	assert.NoError(t, roundTrip(c), "the conn TryGet returns works")
	_, err = cp.TryGet(context.Background())
	assert.ErrorIs(t, err, pool.ErrUnavailable, "the only conn is out")
	first := c.NetConn()
	require.NoError(t, c.Close())

	c, err = cp.TryGet(context.Background())
	require.NoError(t, err)
	assert.Same(t, first, c.NetConn(), "the idle conn, reused")
	require.NoError(t, c.Close())

	_, raw := s.conn(0)
	require.NoError(t, raw.CloseWrite())
	eventually(t, "the client sees the FIN", func() bool { return pool.Probe(first) != nil })
	_, err = cp.TryGet(context.Background())
	assert.ErrorIs(t, err, pool.ErrUnavailable, "the dead conn is not handed out, and nothing else is idle")
	assert.Equal(t, uint64(1), cp.Stats().Closed.Health)
	// Once the dead conn's place is free, a TryGet dials a replacement
	// and a later one gets it.
	eventually(t, "TryGet returns a replacement", func() bool {
		c, err = cp.TryGet(context.Background())
		if err != nil {
			require.ErrorIs(t, err, pool.ErrUnavailable)
		}
		return err == nil
	})
	assert.NotSame(t, first, c.NetConn())
	assert.NoError(t, roundTrip(c))
	require.NoError(t, c.Close())
	st := cp.Stats()
	assert.Equal(t, uint64(2), st.Dials, "%+v", st)
	assert.Equal(t, st.Gets, st.Hits+st.Misses, "every TryGet is counted as a hit or a miss: %+v", st)
}

func TestConnPoolResetClosesIdleConnsNowAndConnsInUseOnClose(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(3))
	conns := warm(t, cp, 2)
	out, err := cp.Get(context.Background())
	require.NoError(t, err)

	cp.Reset()
	eventually(t, "the idle conn is closed", func() bool { return cp.Stats().Closed.Reset == 1 && cp.Stats().Idle == 0 })
	idle := conns[0]
	if idle == out.NetConn() {
		idle = conns[1]
	}
	_, err = idle.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed, "the idle conn was closed")
	assert.NoError(t, roundTrip(out), "the conn in use stays usable until its Close")
	require.NoError(t, out.Close())
	_, err = out.NetConn().Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed, "closed when returned")

	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	assert.NotSame(t, conns[0], c.NetConn())
	assert.NotSame(t, conns[1], c.NetConn())
	assert.NoError(t, roundTrip(c), "a fresh conn")
	require.NoError(t, c.Close())
	st := cp.Stats()
	assert.Equal(t, uint64(2), st.Closed.Reset, "%+v", st)
	assert.Equal(t, uint64(3), st.Dials, "%+v", st)
}

func TestConnPoolStringNamesTheNetworkAndAddress(t *testing.T) {
	cp, err := pool.NewConnPool(nil, "tcp6", "[::1]:6379")
	require.NoError(t, err)
	defer cp.Shutdown(context.Background())
	assert.Equal(t, "pool.ConnPool(tcp6 [::1]:6379)", cp.String())
	assert.Equal(t, "pool.ConnPool(tcp6 [::1]:6379)", fmt.Sprint(cp), "fmt uses String")
}

// LivenessCheck(EveryCheckout) needs no clock, but a HealthCheck's
// threshold does: the pool must still read one for it (once it did not,
// and the check never ran).
func TestAHealthCheckWithAThresholdRunsAlongsideALivenessCheckOnEveryCheckout(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	clock := newFakeClock()
	var checks atomic.Int32
	check := func(context.Context, net.Conn) error {
		checks.Add(1)
		return errors.New("no")
	}
	cp := newConnPool(t, nil, s.addr(), pool.LivenessCheck(pool.EveryCheckout), pool.HealthCheck(time.Minute, check),
		pool.Clock(clock.Now))
	conns := warm(t, cp, 1)
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	assert.Same(t, conns[0], c.NetConn(), "below the health check's threshold: not checked")
	require.NoError(t, c.Close())
	assert.Zero(t, checks.Load())

	clock.Advance(2 * time.Minute)
	c, err = cp.Get(context.Background())
	require.NoError(t, err)
	assert.NotSame(t, conns[0], c.NetConn(), "the health check refused the conn idle past its threshold")
	require.NoError(t, c.Close())
	assert.Equal(t, int32(1), checks.Load())
}
