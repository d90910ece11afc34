package dialer_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/sockopt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryAttemptGoesThroughRunAttempt: a name whose first address
// refuses and whose second answers makes two attempts, each made by
// calling the function's attempt; the options are still set on the
// socket, and the conn returned is the attempt's.
func TestEveryAttemptGoesThroughRunAttempt(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	var mu sync.Mutex
	var results []string
	d, err := dialer.New(
		dialer.Resolver(resolverFor("127.0.0.2", "127.0.0.1")), // nothing listens on 127.0.0.2: refused
		dialer.Sockopt(sockopt.KeepAlive(true)),
		dialer.RunAttempt(func(attempt func() (net.Conn, error)) (net.Conn, error) {
			c, err := attempt()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				results = append(results, "error")
			} else {
				results = append(results, c.RemoteAddr().String())
			}
			return c, err
		}),
	)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp4", hostAddr(port))
	require.NoError(t, err)
	defer c.Close()
	mu.Lock()
	assert.Equal(t, []string{"error", ln.Addr().String()}, results, "the refused attempt, then the one that answered")
	mu.Unlock()
	report, err := sockopt.Verify(c, sockopt.KeepAlive(true))
	require.NoError(t, err)
	assert.True(t, report.OK(), "%v", report)
}

func TestARunAttemptThatReturnsNothingFailsTheAttempt(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	d, err := dialer.New(dialer.RunAttempt(func(attempt func() (net.Conn, error)) (net.Conn, error) {
		c, err := attempt()
		if err == nil {
			c.Close()
		}
		return nil, nil
	}))
	require.NoError(t, err)
	_, err = d.Dial("tcp", ln.Addr().String())
	assert.ErrorContains(t, err, "dial tcp "+ln.Addr().String()+": dialer.RunAttempt's function returned neither a conn nor an error")

	errOwn := errors.New("not in this namespace")
	d, err = dialer.New(dialer.RunAttempt(func(func() (net.Conn, error)) (net.Conn, error) { return nil, errOwn }))
	require.NoError(t, err)
	_, err = d.Dial("tcp", ln.Addr().String())
	assert.ErrorIs(t, err, errOwn)

	_, err = dialer.New(dialer.RunAttempt(nil))
	assert.EqualError(t, err, "dialer.RunAttempt(nil): nil function")
}
