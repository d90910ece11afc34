package sockopt_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/internal/tlstest"
	"github.com/nettune/nettune/sockopt"
)

// Options nettune has no type for, set through the escape hatch before
// connect and read back from the kernel.
func TestRawOptionsNettuneDoesNotListAreSetAndReadBack(t *testing.T) {
	ln := listenTCP(t, false)
	freebind := sockopt.RawInt(unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
	syncnt := sockopt.RawInt(unix.IPPROTO_TCP, unix.TCP_SYNCNT, 3)
	four := make([]byte, 4)
	binary.NativeEndian.PutUint32(four, 2)
	syncntBytes := sockopt.Raw(unix.IPPROTO_TCP, unix.TCP_SYNCNT, four)
	for _, set := range []sockopt.RawOption{freebind, syncnt, syncntBytes} {
		t.Run(set.String(), func(t *testing.T) {
			c, _ := connPair(t, ln, false, set)
			got, err := sockopt.Get(c, set)
			require.NoError(t, err)
			assert.Equal(t, set, got, "getsockopt returns the value set")

			rep, err := sockopt.Verify(c, set)
			require.NoError(t, err)
			assert.True(t, rep.OK(), "Verify compares the value read back:\n%s", rep)

			// Before the set, the kernel holds its default: Get reads
			// what the socket holds, not the option's own value.
			plain, _ := connPair(t, ln, false)
			def, err := sockopt.Get(plain, set)
			require.NoError(t, err)
			assert.NotEqual(t, set, def, "a fresh socket holds the default, not %v", set)
		})
	}
}

func TestRawIPv6OnlyIsSetOnAListenerBeforeBind(t *testing.T) {
	v6only := sockopt.RawInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	lc := net.ListenConfig{Control: sockopt.ListenControl(v6only)}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	got, err := sockopt.Get(ln, v6only)
	require.NoError(t, err)
	assert.Equal(t, v6only, got)

	// Go makes "tcp" listeners on [::] dual-stack (IPV6_V6ONLY=0): the raw
	// option turns that off before bind.
	dual := sockopt.RawInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	ln2, err := lc.Listen(context.Background(), "tcp", "[::1]:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln2.Close() })
	got, err = sockopt.Get(ln2, dual)
	require.NoError(t, err)
	assert.Equal(t, v6only, got, "the listener holds the raw value, not Go's")
}

func TestARawOptionTheKernelDoesNotKnowFailsWithItsErrno(t *testing.T) {
	ln := listenTCP(t, false)
	for _, bad := range []sockopt.RawOption{
		sockopt.RawInt(unix.IPPROTO_TCP, 9999, 1), // no such TCP option
		sockopt.RawInt(9999, 1, 1),                // no such level
	} {
		t.Run(bad.String(), func(t *testing.T) {
			d := net.Dialer{Control: sockopt.DialControl(bad)}
			d.SetMultipathTCP(false)
			_, err := d.Dial("tcp4", ln.Addr().String())
			require.Error(t, err)
			assert.ErrorIs(t, err, unix.ENOPROTOOPT)
			var se *sockopt.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, bad, se.Option, "the error names the raw option")
			var sys *os.SyscallError
			require.ErrorAs(t, err, &sys)
			assert.Equal(t, "setsockopt", sys.Syscall)
			assert.Contains(t, se.Error(), "sockopt "+bad.String()+": setsockopt: ", "kernel-style message")

			c, _ := connPair(t, ln, false)
			_, err = sockopt.Get(c, bad)
			var errno unix.Errno
			require.ErrorAs(t, err, &errno, "getsockopt fails with the errno (ENOPROTOOPT, or EOPNOTSUPP for a level)")
			assert.ErrorAs(t, err, &se)
			rep, err := sockopt.Verify(c, bad)
			require.NoError(t, err)
			assert.False(t, rep.OK(), "a raw option that cannot be read back is not applied")
		})
	}
}

func TestARawValueReadBackDifferentIsNotApplied(t *testing.T) {
	ln := listenTCP(t, false)
	c, _ := connPair(t, ln, false)
	// TCP_SYNCNT is at most 255: the kernel refuses more (EINVAL).
	err := sockopt.Apply(c, sockopt.RawInt(unix.IPPROTO_TCP, unix.TCP_SYNCNT, 1000))
	assert.ErrorIs(t, err, unix.EINVAL)
	rep, err := sockopt.Verify(c, sockopt.RawInt(unix.IPPROTO_TCP, unix.TCP_SYNCNT, 1000))
	require.NoError(t, err)
	require.Len(t, rep, 1)
	assert.Equal(t, sockopt.NotApplied, rep[0].Verdict)
	def, _ := sockopt.Get(c, sockopt.RawInt(unix.IPPROTO_TCP, unix.TCP_SYNCNT, 0))
	n, _ := def.Int()
	assert.Contains(t, rep[0].Reason, "the socket holds "+itoa(n), "the reason shows the value read back, without the name")
}

// A TCP-level option that Multipath TCP does not support fails on an
// MPTCP socket with the errno and the hint that says how to turn it off.
func TestARawTCPOptionOnAMultipathSocketFailsWithTheHint(t *testing.T) {
	ln := listenTCP(t, true)
	if mp, err := sockopt.IsMPTCP(ln); err != nil || !mp {
		t.Skipf("no Multipath TCP listener here (mptcp=%v, err=%v)", mp, err)
	}
	err := sockopt.Apply(ln, sockopt.RawInt(unix.IPPROTO_TCP, unix.TCP_SYNCNT, 3))
	require.Error(t, err, "MPTCP does not support TCP_SYNCNT")
	var se *sockopt.Error
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Hint, "SetMultipathTCP(false)")
	assert.False(t, sockopt.TCPOnly(sockopt.RawInt(unix.IPPROTO_TCP, unix.TCP_SYNCNT, 3)),
		"which raw options MPTCP supports is not known: the kernel's errno says")
}

func itoa(n int) string { return sockopt.RawInt(0, 0, n).String()[len("RAW(level=0,name=0)="):] }

func TestGetReturnsTheTypeOfItsArgument(t *testing.T) {
	ln := listenTCP(t, false)
	c, _ := connPair(t, ln, false, sockopt.UserTimeout(1500*time.Millisecond))
	var ut sockopt.UserTimeout
	ut, err := sockopt.Get(c, sockopt.UserTimeout(0))
	require.NoError(t, err)
	assert.Equal(t, 1500*time.Millisecond, time.Duration(ut))

	// Through the interface, the dynamic type is the argument's.
	var o sockopt.Option = sockopt.NoDelay(false)
	got, err := sockopt.Get(c, o)
	require.NoError(t, err)
	assert.Equal(t, sockopt.NoDelay(true), got, "Go sets TCP_NODELAY on every conn")

	_, err = sockopt.Get(c, sockopt.Option(nil))
	assert.Error(t, err, "a nil Option is an error, not a panic")
}

// tlsPair returns both ends of a TLS 1.3 connection over loopback TCP,
// handshake done.
func tlsPair(t *testing.T, ln *net.TCPListener) (client, server *tls.Conn) {
	t.Helper()
	scfg, ccfg, err := tlstest.Configs()
	require.NoError(t, err)
	c, a := connPair(t, ln, false)
	client, server = tls.Client(c, ccfg), tls.Server(a, scfg)
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	require.NoError(t, client.SetDeadline(time.Now().Add(30*time.Second)))
	require.NoError(t, client.Handshake())
	require.NoError(t, <-done)
	return client, server
}

func TestEveryFunctionTakesATLSConnWithoutNetConn(t *testing.T) {
	ln := listenTCP(t, false)
	client, server := tlsPair(t, ln)
	idle := sockopt.KeepAliveIdle(42 * time.Second)

	require.NoError(t, sockopt.Apply(client, idle))
	got, err := sockopt.Get(client, sockopt.KeepAliveIdle(0))
	require.NoError(t, err)
	assert.Equal(t, idle, got)
	rep, err := sockopt.Verify(client, idle)
	require.NoError(t, err)
	assert.True(t, rep.OK(), "%s", rep)
	ti, err := sockopt.ReadTCPInfo(server)
	require.NoError(t, err)
	assert.Equal(t, sockopt.StateEstablished, ti.State)
	mp, err := sockopt.IsMPTCP(client)
	require.NoError(t, err)
	assert.False(t, mp)
}

// wrapped is a conn that, like *tls.Conn, hands out the conn it wraps.
type wrapped struct {
	net.Conn
	inner net.Conn
}

func (w wrapped) NetConn() net.Conn { return w.inner }

func TestAConnWithoutASocketIsAnErrorNamingItsType(t *testing.T) {
	ln := listenTCP(t, false)
	c, _ := connPair(t, ln, false)
	nested := wrapped{Conn: c, inner: wrapped{Conn: c, inner: c}}
	_, err := sockopt.ReadTCPInfo(nested)
	require.NoError(t, err, "NetConn is followed through more than one layer")

	p1, p2 := net.Pipe()
	t.Cleanup(func() { p1.Close(); p2.Close() })
	for _, c := range []any{p1, wrapped{Conn: p1}, nil, 42} {
		_, err := sockopt.Verify(c, sockopt.NoDelay(true))
		require.Error(t, err, "%T", c)
		assert.Contains(t, err.Error(), "sockopt: ")
		assert.False(t, errors.Is(err, unix.EINVAL))
	}
	_, err = sockopt.ReadTCPInfo(p1)
	assert.ErrorContains(t, err, "net.pipe")
}
