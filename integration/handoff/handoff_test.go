package handoff_test

import (
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/nettune/nettune/integration/handoff"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ net.Listener = (*handoff.Listener)(nil)

func pipe(t *testing.T) (server, client net.Conn) {
	server, client = net.Pipe()
	t.Cleanup(func() { client.Close() })
	return server, client
}

func TestAcceptReturnsTheConnsPutInOrder(t *testing.T) {
	var l handoff.Listener // the zero value is ready to use
	var put []net.Conn
	for range 3 {
		s, _ := pipe(t)
		require.NoError(t, l.Put(s))
		put = append(put, s)
	}
	for i, want := range put {
		got, err := l.Accept()
		require.NoError(t, err)
		assert.Same(t, want, got, "conn %d", i)
	}
	assert.Nil(t, l.Addr(), "the zero Listener's Addr")
	assert.NoError(t, l.Close())
}

func TestAcceptWaitsForPut(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}
	l := handoff.New(addr)
	defer l.Close()
	accepted := make(chan net.Conn)
	go func() {
		c, err := l.Accept()
		assert.NoError(t, err)
		accepted <- c
	}()
	s, _ := pipe(t)
	require.NoError(t, l.Put(s))
	assert.Same(t, s, <-accepted)
	assert.Equal(t, addr, l.Addr())
}

func TestCloseWakesAcceptAndClosesTheConnsNotAccepted(t *testing.T) {
	l := handoff.New(nil)
	errs := make(chan error)
	go func() {
		_, err := l.Accept()
		errs <- err
	}()
	require.NoError(t, l.Close())
	assert.ErrorIs(t, <-errs, net.ErrClosed, "Accept blocked when Close was called")

	l = handoff.New(nil)
	s, c := pipe(t)
	require.NoError(t, l.Put(s))
	require.NoError(t, l.Close())
	_, err := c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the client of a conn put and not accepted sees it closed")
	_, err = l.Accept()
	assert.ErrorIs(t, err, net.ErrClosed, "Accept after Close")
	assert.ErrorIs(t, l.Close(), net.ErrClosed, "a second Close")

	s, c = pipe(t)
	assert.ErrorIs(t, l.Put(s), net.ErrClosed, "Put after Close")
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "Put after Close closes the conn")
}
