package sockopt_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/internal/netnstest"
	"github.com/nettune/nettune/internal/servetest"
	"github.com/nettune/nettune/sockopt"
)

// fastOpenRoundTrip dials ln with TCP_FASTOPEN_CONNECT, writes and reads
// back a message, and returns the client's TCP_INFO options.
func fastOpenRoundTrip(t *testing.T, addr string) sockopt.TCPOptions {
	t.Helper()
	d := net.Dialer{Control: sockopt.DialControl(sockopt.FastOpenConnect(true))}
	d.SetMultipathTCP(false)
	c, err := d.DialContext(context.Background(), "tcp4", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	msg := []byte("idempotent hello")
	_, err = c.Write(msg)
	require.NoError(t, err)
	buf := make([]byte, len(msg))
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	ti, err := sockopt.ReadTCPInfo(c)
	require.NoError(t, err)
	return ti.Options
}

func listenFastOpen(t *testing.T) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: sockopt.ListenControl(sockopt.FastOpen(16))}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	servetest.Serve(t, ln, servetest.Echo)
	return ln
}

func TestFastOpenCarriesDataInTheSYNWhenTheHostAllowsIt(t *testing.T) {
	if !netnstest.Enter(t, map[string]string{"net.ipv4.tcp_fastopen": "3"}) {
		return
	}
	sys, err := sockopt.ReadSystem()
	require.NoError(t, err)
	assert.Empty(t, sys.Explain(sockopt.FastOpen(16), sockopt.FastOpenConnect(true)),
		"tcp_fastopen=3 enables both sides: nothing to warn about")
	ln := listenFastOpen(t)
	first := fastOpenRoundTrip(t, ln.Addr().String()) // fetches the cookie
	assert.Zero(t, first&sockopt.OptSYNData, "no cookie yet: the first SYN carries no data")
	second := fastOpenRoundTrip(t, ln.Addr().String())
	assert.NotZero(t, second&sockopt.OptSYNData, "with the cookie cached the data rode in the SYN: %v", second)
}

func TestFastOpenIsAnIgnoredNoOpWhenTheServerBitIsOff(t *testing.T) {
	if !netnstest.Enter(t, map[string]string{"net.ipv4.tcp_fastopen": "1"}) {
		return
	}
	sys, err := sockopt.ReadSystem()
	require.NoError(t, err)
	fs := sys.Explain(sockopt.FastOpen(16), sockopt.FastOpenConnect(true))
	require.Len(t, fs, 1, "%s", fs)
	assert.Equal(t, sockopt.Ignored, fs[0].Verdict, "Explain predicts the no-op")
	ln := listenFastOpen(t) // setsockopt succeeds all the same
	fastOpenRoundTrip(t, ln.Addr().String())
	second := fastOpenRoundTrip(t, ln.Addr().String())
	assert.Zero(t, second&sockopt.OptSYNData, "as predicted, the server never took data in the SYN")
}
