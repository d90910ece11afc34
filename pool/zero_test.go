package pool_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/pool"
)

func TestTheZeroPoolFailsWithAClearErrorInsteadOfPanicking(t *testing.T) {
	var p pool.Pool[int]
	ctx := context.Background()
	_, err := p.Get(ctx)
	assert.EqualError(t, err, "pool: Pool used without New")
	_, err = p.TryGet(ctx)
	assert.EqualError(t, err, "pool: Pool used without New")
	st := p.Stats()
	assert.Equal(t, uint64(2), st.Gets, "counted, like any call")
	assert.Zero(t, st.InUse+st.Idle+st.Dialing+st.Waiting)
	p.Reset()
	assert.NoError(t, p.Close(), "closing the zero Pool does nothing")
	assert.NoError(t, p.Shutdown(ctx))
}

func TestTheZeroConnPoolFailsWithAClearErrorInsteadOfPanicking(t *testing.T) {
	var cp pool.ConnPool
	ctx := context.Background()
	_, err := cp.Get(ctx)
	assert.EqualError(t, err, "pool: ConnPool used without NewConnPool")
	_, err = cp.TryGet(ctx)
	assert.EqualError(t, err, "pool: ConnPool used without NewConnPool")
	assert.Equal(t, pool.Stats{}, cp.Stats())
	cp.Reset()
	assert.NoError(t, cp.Close())
	assert.NoError(t, cp.Shutdown(ctx))
}

func TestTheZeroConnIsClosed(t *testing.T) {
	var c pool.Conn
	_, err := c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = c.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.ErrorIs(t, c.SetDeadline(time.Now()), net.ErrClosed)
	_, err = c.SyscallConn()
	assert.ErrorIs(t, err, net.ErrClosed)
	assert.Nil(t, c.LocalAddr())
	assert.Nil(t, c.RemoteAddr())
	assert.Nil(t, c.NetConn())
	c.MarkUnusable()
	assert.ErrorIs(t, c.Close(), net.ErrClosed)
}

func TestReleasingTheZeroResourcePanicsWithAMessage(t *testing.T) {
	var r pool.Resource[int]
	assert.Equal(t, 0, r.Value())
	assert.PanicsWithValue(t, "pool: Release or Discard of the zero Resource", r.Release)
	assert.PanicsWithValue(t, "pool: Release or Discard of the zero Resource", func() { _ = r.Discard() })
}

func TestTheZeroErrorsPrintWithoutPanicking(t *testing.T) {
	assert.Equal(t, "pool: ", (&pool.OptionError{}).Error(), "as every package's zero OptionError")
	assert.NotPanics(t, func() { _ = (&pool.BackoffError{}).Error() })
}

func TestTheLivenessCheckIsNotAnOptionOfNew(t *testing.T) {
	// pool.New(dial, closeFn, pool.LivenessCheck(0)) does not compile:
	// LivenessCheck is a ConnOption, which New does not take.
	_, ok := pool.LivenessCheck(0).(pool.Option)
	assert.False(t, ok)
	var _ pool.ConnOption = pool.MaxSize(1) // every Option is a ConnOption
}

func TestCloseReturnsAtOnceAndClosesAResourceInUseWhenReleased(t *testing.T) {
	f := &factory{}
	p, err := pool.New(f.dial, f.close, pool.MaxSize(2))
	require.NoError(t, err)
	ctx := context.Background()
	idle, err := p.Get(ctx)
	require.NoError(t, err)
	held, err := p.Get(ctx)
	require.NoError(t, err)
	idle.Release()

	assert.NoError(t, p.Close(), "Close does not wait for the resource in use")
	_, err = p.Get(ctx)
	assert.ErrorIs(t, err, pool.ErrClosed)
	eventually(t, "the idle resource is closed", func() bool { return idle.Value().closed.Load() == 1 })
	assert.Zero(t, held.Value().closed.Load(), "the resource in use is left alone")
	held.Release()
	assert.Equal(t, int32(1), held.Value().closed.Load(), "and closed when released")
	assert.NoError(t, p.Close(), "a second Close")
	assert.NoError(t, p.Shutdown(ctx), "nothing left to wait for")
	f.closedOnce(t)
}

func TestShutdownAfterCloseStillWaitsForResourcesInUse(t *testing.T) {
	f := &factory{}
	p, err := pool.New(f.dial, f.close)
	require.NoError(t, err)
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = p.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "1 in use")
	r.Release()
	assert.NoError(t, p.Shutdown(context.Background()))
	assert.False(t, errors.Is(err, pool.ErrClosed))
}
