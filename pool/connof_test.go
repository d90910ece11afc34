//go:build unix

package pool_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/pool"
)

// lineClient is a protocol client over a pooled conn: it keeps a
// bufio.Reader, which must live as long as the connection.
type lineClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func (c *lineClient) send(lines string) error {
	_, err := c.conn.Write([]byte(lines))
	return err
}

func (c *lineClient) readLine() (string, error) { return c.r.ReadString('\n') }

// newLinePool returns a pool of lineClients to addr, and how often wrap ran.
func newLinePool(t testing.TB, addr string, opts ...pool.ConnOption) (*pool.Pool[*lineClient], *atomic.Int32) {
	t.Helper()
	var wraps atomic.Int32
	wrap := func(_ context.Context, c net.Conn) (*lineClient, error) {
		wraps.Add(1)
		return &lineClient{conn: c, r: bufio.NewReader(c)}, nil
	}
	p, err := pool.NewConnPoolOf(nil, "tcp", addr, wrap, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, p.Shutdown(ctx), "closing the pool")
		assert.NoError(t, p.CheckInvariants())
	})
	return p, &wraps
}

func TestAClientsBufferedReaderLivesWithItsConnAcrossCheckouts(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	p, wraps := newLinePool(t, s.addr(), pool.MaxSize(1), pool.LivenessCheck(pool.EveryCheckout))
	ctx := context.Background()

	r, err := p.Get(ctx)
	require.NoError(t, err)
	first := r.Value()
	require.NoError(t, first.send("one\ntwo\n"))
	line, err := first.readLine()
	require.NoError(t, err)
	assert.Equal(t, "one\n", line)
	eventually(t, "both echoes are in the reader's buffer", func() bool { return first.r.Buffered() == len("two\n") })
	r.Release()

	r, err = p.Get(ctx)
	require.NoError(t, err)
	assert.Same(t, first, r.Value(), "the same client, with its reader")
	line, err = r.Value().readLine()
	require.NoError(t, err)
	assert.Equal(t, "two\n", line, "the bytes buffered in the last checkout are still there")
	r.Release()
	assert.Equal(t, int32(1), wraps.Load(), "wrap ran once, for the one connection")
}

func TestTheLivenessCheckStillCatchesADeadPeerUnderAClient(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	p, wraps := newLinePool(t, s.addr(), pool.MaxSize(1), pool.LivenessCheck(pool.EveryCheckout))
	ctx := context.Background()
	r, err := p.Get(ctx)
	require.NoError(t, err)
	first := r.Value()
	require.NoError(t, first.send("ping\n"))
	_, err = first.readLine()
	require.NoError(t, err)
	r.Release()

	_, raw := s.conn(0)
	require.NoError(t, raw.Close())
	eventually(t, "the client sees the FIN", func() bool { return pool.Probe(first.conn) != nil })
	r, err = p.Get(ctx)
	require.NoError(t, err)
	assert.NotSame(t, first, r.Value(), "the dead conn's client is not handed out")
	require.NoError(t, r.Value().send("ping\n"))
	line, err := r.Value().readLine()
	require.NoError(t, err)
	assert.Equal(t, "ping\n", line)
	r.Release()
	assert.Equal(t, uint64(1), p.Stats().Closed.Health, "closed by the liveness check")
	assert.Equal(t, int32(2), wraps.Load())
}

func TestAClientsFailedReadMakesReleaseCloseTheConn(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	p, _ := newLinePool(t, s.addr(), pool.MaxSize(1))
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	require.NoError(t, r.Value().conn.SetReadDeadline(time.Now().Add(-time.Second)))
	_, err = r.Value().readLine()
	require.Error(t, err, "the deadline has passed")
	r.Release()
	assert.Equal(t, uint64(1), p.Stats().Closed.Discarded, "a conn whose Read failed is not pooled")
	assert.Zero(t, p.Stats().Idle)
}

func TestReleasingAClientClearsItsDeadlines(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	p, _ := newLinePool(t, s.addr(), pool.MaxSize(1))
	ctx := context.Background()
	r, err := p.Get(ctx)
	require.NoError(t, err)
	require.NoError(t, r.Value().conn.SetDeadline(time.Now().Add(-time.Second)), "a deadline already past")
	r.Release()

	r, err = p.Get(ctx)
	require.NoError(t, err)
	c := r.Value()
	require.NoError(t, c.send("ping\n"), "no stale deadline")
	line, err := c.readLine()
	require.NoError(t, err, "no stale deadline")
	assert.Equal(t, "ping\n", line)
	r.Release()
	assert.Equal(t, uint64(1), p.Stats().Dials)
}

func TestAClientPoolTakesAHealthCheckOfTheClientType(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	var checked atomic.Int32
	ping := func(_ context.Context, c *lineClient) error {
		checked.Add(1)
		if err := c.send("ping\n"); err != nil {
			return err
		}
		line, err := c.readLine()
		if err == nil && line != "ping\n" {
			err = errors.New("bad reply " + line)
		}
		return err
	}
	p, _ := newLinePool(t, s.addr(), pool.HealthCheck(pool.EveryCheckout, ping))
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	r.Release()
	assert.Equal(t, int32(1), checked.Load())

	_, err = pool.NewConnPoolOf(nil, "tcp", s.addr(),
		func(_ context.Context, c net.Conn) (*lineClient, error) { return &lineClient{conn: c}, nil },
		pool.HealthCheck(0, func(context.Context, net.Conn) error { return nil }))
	var oe *pool.OptionError
	require.ErrorAs(t, err, &oe)
	assert.EqualError(t, err, "pool.HealthCheck[net.Conn](0s, func): checks another type than the pool's *pool_test.lineClient")
}

func TestAFailedWrapCountsAsAFailedDialAndClosesTheConn(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	refused := errors.New("AUTH refused")
	var conn net.Conn
	p, err := pool.NewConnPoolOf(nil, "tcp", s.addr(), func(_ context.Context, c net.Conn) (int, error) {
		conn = c
		return 0, refused
	}, pool.DialBackoff(-1, 0))
	require.NoError(t, err)
	_, err = p.Get(context.Background())
	assert.ErrorIs(t, err, refused)
	assert.Equal(t, uint64(1), p.Stats().DialErrors)
	_, err = conn.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed, "the pool closed the conn")
	assert.NoError(t, p.Shutdown(context.Background()))
}

func TestAClientThatClosesItsConnIsDroppedOnRelease(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	p, wraps := newLinePool(t, s.addr(), pool.MaxSize(1))
	ctx := context.Background()
	r, err := p.Get(ctx)
	require.NoError(t, err)
	require.NoError(t, r.Value().conn.Close(), "the client says goodbye and closes")
	r.Release()
	st := p.Stats()
	assert.Equal(t, uint64(1), st.Closed.Discarded, "not pooled: %+v", st)
	assert.Zero(t, st.Idle)

	r, err = p.Get(ctx)
	require.NoError(t, err)
	require.NoError(t, r.Value().send("ping\n"))
	line, err := r.Value().readLine()
	require.NoError(t, err)
	assert.Equal(t, "ping\n", line, "a new conn")
	r.Release()
	assert.Equal(t, int32(2), wraps.Load())
}
