package handoff_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/integration/handoff"
	"github.com/nettune/nettune/listener"
)

// queue makes n clients connect to a listener that nobody accepts on and
// send a request each; it returns the clients once all n are queued.
func queue(t *testing.T, n int) (*listener.Listener, []net.Conn) {
	t.Helper()
	cfg, err := listener.New()
	require.NoError(t, err)
	l, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	clients := make([]net.Conn, n)
	for i := range clients {
		c, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: nettune\r\nConnection: close\r\n\r\n", i)
		require.NoError(t, err)
		clients[i] = c
	}
	require.Eventually(t, func() bool {
		q, err := l.QueueLen()
		require.NoError(t, err)
		return q == n
	}, 10*time.Second, time.Millisecond, "%d connections queued", n)
	return l, clients
}

func TestAnHTTPServerServesTheDrainedConns(t *testing.T) {
	const n = 5
	l, clients := queue(t, n)

	hl := handoff.New(l.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served "+r.URL.Path)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(hl) }()

	conns, err := l.Drain()
	require.NoError(t, err)
	require.Len(t, conns, n)
	for _, c := range conns {
		require.NoError(t, hl.Put(c))
	}

	for i, c := range clients {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err, "client %d", i)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, "client %d", i)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "client %d", i)
		assert.Equal(t, fmt.Sprintf("served /%d", i), string(body), "client %d", i)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	assert.ErrorIs(t, <-done, http.ErrServerClosed)
	_, err = hl.Accept()
	assert.ErrorIs(t, err, net.ErrClosed, "Shutdown closed the handoff listener")
}

// What Drain and the handoff avoid: closing a listener resets the
// connections in its queue, requests sent and all.
func TestClosingAListenerResetsItsQueuedConns(t *testing.T) {
	l, clients := queue(t, 2)
	require.NoError(t, l.Close())
	for i, c := range clients {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := c.Read(make([]byte, 1))
		assert.True(t, errors.Is(err, syscall.ECONNRESET), "client %d: %v", i, err)
	}
}
