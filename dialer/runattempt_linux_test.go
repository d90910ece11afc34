package dialer_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/netlab"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunAttemptMakesEverySocketInsideALabHost: a name whose first address
// is a lab address no host has (its SYNs are dropped) and whose second is
// host B's is dialed from host A. Without RunAttempt the attempts run on
// goroutines outside A, in a namespace with no route to the lab; with it,
// both attempts of the Happy Eyeballs race make their sockets in A, and the
// second wins after the fallback delay.
func TestRunAttemptMakesEverySocketInsideALabHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netlab: network namespaces need root (CAP_SYS_ADMIN); not root")
	}
	lab, err := netlab.New()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, lab.Close()) })
	a, b := lab.A(), lab.B()
	var ln net.Listener
	require.NoError(t, b.Run(func() (err error) {
		ln, err = net.Listen("tcp4", b.Addr().String()+":0")
		return err
	}))
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	resolver := resolverFor("198.18.0.200", b.Addr().String()) // .200: no host, dropped
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	outside, err := dialer.New(dialer.Resolver(resolver), dialer.FallbackDelay(50*time.Millisecond), dialer.Timeout(2*time.Second))
	require.NoError(t, err)
	c, err := outside.DialContext(ctx, "tcp4", hostAddr(port))
	if err == nil {
		c.Close()
	}
	require.Error(t, err, "the process's own namespace has no route to the lab")

	inside, err := dialer.New(dialer.Resolver(resolver), dialer.FallbackDelay(50*time.Millisecond),
		dialer.RunAttempt(func(attempt func() (net.Conn, error)) (c net.Conn, err error) {
			err = a.Run(func() error { c, err = attempt(); return err })
			return c, err
		}))
	require.NoError(t, err)
	start := time.Now()
	c, err = inside.DialContext(ctx, "tcp4", hostAddr(port))
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, a.Addr().String(), c.LocalAddr().(*net.TCPAddr).IP.String(), "the socket is host A's")
	assert.Equal(t, ln.Addr().String(), c.RemoteAddr().String())
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "the first address was tried first, for the fallback delay")
}
