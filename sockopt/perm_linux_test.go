package sockopt_test

import (
	"context"
	"net"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/sockopt"
)

// withoutNetCaps runs f on an OS thread whose effective capabilities
// lack CAP_NET_ADMIN and CAP_NET_RAW (SO_MARK and SO_PRIORITY accept
// either, measured on 6.18). Linux keeps capabilities per thread, so the rest of
// the test binary keeps root; the thread is discarded afterwards (the
// goroutine exits still locked to it).
func withoutNetCaps(t *testing.T, f func()) {
	t.Helper()
	if !isRoot() {
		t.Skip("needs root to hold CAP_NET_ADMIN in the first place")
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		data[0].Effective &^= 1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_NET_RAW
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		f()
		done <- nil
	}()
	require.NoError(t, <-done)
}

func TestPrivilegedOptionsFailWithEPERMAndNameTheCapability(t *testing.T) {
	if !isRoot() {
		t.Skip("needs root to hold CAP_NET_ADMIN in the first place")
	}
	ln := listenTCP(t, false)
	cases := []sockopt.Option{
		sockopt.Mark(7),
		sockopt.ReceiveBufferForce(1 << 20),
		sockopt.SendBufferForce(1 << 20),
		sockopt.Priority(7),
	}
	for _, o := range cases {
		t.Run(o.String(), func(t *testing.T) {
			var err error
			withoutNetCaps(t, func() {
				d := net.Dialer{Control: sockopt.Control(o)}
				var c net.Conn
				c, err = d.DialContext(context.Background(), "tcp4", ln.Addr().String())
				if c != nil {
					c.Close()
				}
			})
			require.Error(t, err)
			var opErr *net.OpError
			assert.ErrorAs(t, err, &opErr, "net wraps it in *net.OpError")
			assert.ErrorIs(t, err, unix.EPERM, "the errno survives the wrapping")
			var se *sockopt.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, o, se.Option)
			assert.Contains(t, se.Hint, "CAP_NET_ADMIN", "the hint names the capability")
		})
	}
	// The same options succeed with the capability.
	_, a := connPair(t, ln, false)
	assert.NoError(t, sockopt.Apply(a, cases...))
}

func TestCongestionOutsideTheAllowedListFailsWithEPERMNamingTheList(t *testing.T) {
	if !isRoot() {
		t.Skip("needs root to hold CAP_NET_ADMIN in the first place")
	}
	sys, err := sockopt.ReadSystem()
	require.NoError(t, err)
	var name string
	for _, n := range sys.AvailableCongestion {
		if !slices.Contains(sys.AllowedCongestion, n) {
			name = n
			break
		}
	}
	if name == "" {
		t.Skip("every available congestion control is allowed on this host")
	}
	ln := listenTCP(t, false)
	_, a := connPair(t, ln, false)
	var aerr error
	withoutNetCaps(t, func() { aerr = sockopt.Apply(a, sockopt.Congestion(name)) })
	assert.ErrorIs(t, aerr, unix.EPERM)
	var se *sockopt.Error
	require.ErrorAs(t, aerr, &se)
	assert.Contains(t, se.Hint, "tcp_allowed_congestion_control")
	assert.Contains(t, se.Hint, sys.AllowedCongestion[0], "the hint lists the allowed names")
	assert.NoError(t, sockopt.Apply(a, sockopt.Congestion(name)), "with CAP_NET_ADMIN it is allowed")
}
