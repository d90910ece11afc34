package netlab_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/netlab"
)

// netstat reads a TcpExt counter of the host's namespace.
func netstat(t testing.TB, h *netlab.Host, name string) int64 {
	var v int64 = -1
	require.NoError(t, h.Run(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/netstat")
		if err != nil {
			return err
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i+1 < len(lines); i += 2 {
			names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			if len(names) == 0 || names[0] != "TcpExt:" || len(names) != len(values) {
				continue
			}
			for j, n := range names {
				if n == name {
					v, err = strconv.ParseInt(values[j], 10, 64)
					return err
				}
			}
		}
		return nil
	}))
	require.GreaterOrEqual(t, v, int64(0), "TcpExt %s in host %s", name, h)
	return v
}

// request sends "req!" on c and reads the 4-byte answer; it returns the
// time from start.
func request(t testing.TB, c net.Conn, start time.Time) time.Duration {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
	_, err := io.WriteString(c, "req!")
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "resp", string(buf))
	return time.Since(start)
}

func answer(c net.Conn) {
	buf := make([]byte, 4)
	for {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := io.WriteString(c, "resp"); err != nil {
			return
		}
	}
}

// On a path with a 100 ms RTT: a request on a pooled connection costs one
// round trip, on a fresh connection two, and on a fresh connection with
// TCP Fast Open (a cookie cached) one, since the request rides on the
// SYN. The lower bounds are physics, the kernel's counters prove the SYN
// carried data, and the upper bounds leave a whole RTT (100 ms) of slack
// for a loaded machine.
func TestFastOpenAndPoolingSaveARoundTripOnTheLab(t *testing.T) {
	const rtt = 100 * time.Millisecond
	lab := newLab(t, netlab.Path(netlab.Profile{Delay: rtt / 2}))
	a, b := lab.A(), lab.B()
	require.NoError(t, a.SetSysctl("net.ipv4.tcp_fastopen", "1"))
	require.NoError(t, b.SetSysctl("net.ipv4.tcp_fastopen", "3"))

	lc, err := listener.New(listener.FastOpen(true))
	require.NoError(t, err)
	var ln net.Listener
	require.NoError(t, b.Run(func() error {
		l, err := lc.Listen(context.Background(), "tcp", netip.AddrPortFrom(b.Addr(), 0).String())
		ln = l
		return err
	}))
	serve(t, ln, answer)
	addr := ln.Addr().String()

	// Fresh, then pooled.
	start := time.Now()
	plain := dial(t, a, addr)
	fresh := request(t, plain, start)
	pooled := request(t, plain, time.Now())
	assert.GreaterOrEqual(t, fresh, 2*rtt, "a fresh connection's request: handshake + request")
	assert.GreaterOrEqual(t, pooled, rtt, "a pooled request")
	assert.Less(t, pooled, 2*rtt, "a pooled request needs one round trip")

	d, err := dialer.New(dialer.FastOpen(true))
	require.NoError(t, err)
	dialTFO := func() (net.Conn, time.Duration) {
		start := time.Now()
		var c net.Conn
		require.NoError(t, a.Run(func() (err error) {
			c, err = d.DialContext(context.Background(), "tcp", addr)
			return err
		}))
		t.Cleanup(func() { c.Close() })
		return c, request(t, c, start)
	}
	_, first := dialTFO() // fetches the cookie: two round trips
	active, passive := netstat(t, a, "TCPFastOpenActive"), netstat(t, b, "TCPFastOpenPassive")
	_, withCookie := dialTFO()
	assert.Equal(t, active+1, netstat(t, a, "TCPFastOpenActive"), "the client's SYN carried data, acknowledged")
	assert.Equal(t, passive+1, netstat(t, b, "TCPFastOpenPassive"), "the server accepted data in the SYN")
	assert.GreaterOrEqual(t, withCookie, rtt)
	assert.Less(t, withCookie, 2*rtt, "Fast Open with a cookie: the request rides on the SYN")
	t.Logf("RTT %v: fresh %v, pooled %v; Fast Open first %v, with a cookie %v (saved %v)",
		rtt, fresh, pooled, first, withCookie, fresh-withCookie)
}
