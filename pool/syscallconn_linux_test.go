package pool_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/pool"
	"github.com/nettune/nettune/sockopt"
)

func TestAPooledConnIsASyscallConnThatSockoptReads(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	cp := newConnPool(t, nil, s.addr(), pool.MaxSize(1))
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	require.NoError(t, roundTrip(c))
	info, err := sockopt.ReadTCPInfo(c)
	require.NoError(t, err)
	assert.Equal(t, sockopt.StateEstablished, info.State)
	require.NoError(t, c.Close())

	_, err = c.SyscallConn()
	assert.ErrorIs(t, err, net.ErrClosed, "a returned Conn cannot reach the socket")
}

func TestAClientsConnIsASyscallConnThatSockoptReads(t *testing.T) {
	s := startServer(t, "127.0.0.1:0", nil)
	p, _ := newLinePool(t, s.addr(), pool.MaxSize(1))
	r, err := p.Get(context.Background())
	require.NoError(t, err)
	defer r.Release()
	sc, ok := r.Value().conn.(syscall.Conn)
	require.True(t, ok, "the conn wrap gets is a syscall.Conn")
	info, err := sockopt.ReadTCPInfo(sc)
	require.NoError(t, err)
	assert.Equal(t, sockopt.StateEstablished, info.State)
}

func TestATLSPooledConnSaysToReachTheSocketThroughNetConn(t *testing.T) {
	serverCfg, clientCfg := selfSigned(t)
	s := startServer(t, "127.0.0.1:0", serverCfg)
	cp := newConnPool(t, tlsDial(clientCfg), s.addr(), pool.MaxSize(1))
	c, err := cp.Get(context.Background())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.SyscallConn()
	assert.ErrorIs(t, err, errors.ErrUnsupported)
	tc, ok := c.NetConn().(*tls.Conn)
	require.True(t, ok)
	_, err = sockopt.ReadTCPInfo(tc.NetConn().(syscall.Conn))
	assert.NoError(t, err)
}
