//go:build linux

package dialer_test

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/internal/dnstest"
	"github.com/nettune/nettune/sockopt"
)

// memoryResolver answers from memory, as a warm DNS cache does: the same
// slice every time, no allocation.
type memoryResolver map[string][]netip.Addr

func (m memoryResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ips, ok := m[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// allocKeepAlive and allocSockopts are a client's usual options, as in
// benchmarks/dialer.
var (
	allocKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 10 * time.Second, Count: 5}
	allocSockopts  = []sockopt.Option{
		sockopt.UserTimeout(110 * time.Second),
		sockopt.ReceiveBuffer(256 << 10),
		sockopt.SendBuffer(256 << 10),
		sockopt.NotSentLowat(16 << 10),
	}
)

// dialAllocs is the mean number of allocations of dialing address with
// dial, accepting the connection on ln and closing both ends: the same
// work around either implementation, done in this goroutine so that the
// count covers all of it and nothing else.
func dialAllocs(t *testing.T, ctx context.Context, ln net.Listener, dial func(ctx context.Context, network, address string) (net.Conn, error), address string) float64 {
	t.Helper()
	return testing.AllocsPerRun(200, func() {
		c, err := dial(ctx, "tcp", address)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0) // no TIME_WAIT piles up
		c.Close()
		s.Close()
	})
}

func TestADialToANameAllocatesNoMoreThanNetDialerDoingTheSameWork(t *testing.T) {
	// net.Dialer takes only a *net.Resolver: the same work for it is a
	// lookup in the same memory resolver, then a dial of the IP literal.
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	res := memoryResolver{"svc.example": {netip.MustParseAddr("127.0.0.1")}}
	deadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	typicalOpts := []dialer.Option{dialer.KeepAliveConfig(allocKeepAlive)}
	for _, o := range allocSockopts {
		typicalOpts = append(typicalOpts, dialer.Sockopt(o))
	}
	for _, tc := range []struct {
		name string
		net  *net.Dialer
		opts []dialer.Option
		ctx  context.Context
		// extra is what the dial may allocate beyond net.Dialer. With a
		// context that can end, the Dialer notes whether its attempt
		// made a socket (an address it did not is NotTried in *Error)
		// from net's Control hook. When no option needs a Control
		// anyway, that costs the attempt's state and what net builds for
		// the hook: the RawConn, the address string (two) and the
		// network name, 5 in all. With options, the same one Control
		// serves both.
		extra float64
	}{
		{"no options", &net.Dialer{}, []dialer.Option{dialer.MultipathTCP(false)}, context.Background(), 0},
		{"typical options", &net.Dialer{KeepAliveConfig: allocKeepAlive, Control: sockopt.DialControl(allocSockopts...)}, typicalOpts, context.Background(), 0},
		{"no options, a context that can end", &net.Dialer{}, []dialer.Option{dialer.MultipathTCP(false)}, deadline, 5},
		{"typical options, a context that can end", &net.Dialer{KeepAliveConfig: allocKeepAlive, Control: sockopt.DialControl(allocSockopts...)}, typicalOpts, deadline, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.net.SetMultipathTCP(false)
			viaNet := dialAllocs(t, tc.ctx, ln, func(ctx context.Context, network, address string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(address)
				if err != nil {
					return nil, err
				}
				ips, err := res.LookupNetIP(ctx, "ip", host)
				if err != nil {
					return nil, err
				}
				return tc.net.DialContext(ctx, network, net.JoinHostPort(ips[0].String(), port))
			}, net.JoinHostPort("svc.example", port))

			d, err := dialer.New(append(tc.opts, dialer.Resolver(res))...)
			require.NoError(t, err)
			viaNettune := dialAllocs(t, tc.ctx, ln, d.DialContext, net.JoinHostPort("svc.example", port))
			t.Logf("allocations per dial: net.Dialer %.1f, dialer.Dialer %.1f", viaNet, viaNettune)
			assert.LessOrEqual(t, viaNettune, viaNet+tc.extra, "allocations of a dial to a name through a memory resolver, against net.Dialer's lookup + dial")
		})
	}
}

func TestAHappyEyeballsDialAllocatesLittleMoreThanNetDialersRace(t *testing.T) {
	// Both race ::1 against 127.0.0.1 for a name a loopback DNS server
	// answers, through the same *net.Resolver; ::1 answers first. The
	// allowance, 6, is what is left of two costs net.Dialer does not
	// have, once the race's bookkeeping (lighter than net's) is taken
	// off: the Control hook through which the Dialer learns that an
	// attempt made a socket (5, see above), and the IP literal it hands
	// net, which net parses again where net.Dialer goes straight from
	// its lookup to its own address type (4).
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	v4, v6, port := listenBoth(t)
	srv, err := dnstest.Start()
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	srv.SetAddrs("dual.example", time.Hour, netip.IPv6Loopback(), netip.MustParseAddr("127.0.0.1"))
	res := srv.Resolver()
	address := net.JoinHostPort("dual.example", strconv.Itoa(int(port)))

	nd := &net.Dialer{Resolver: res}
	nd.SetMultipathTCP(false)
	viaNet := dialAllocs(t, context.Background(), v6, nd.DialContext, address)
	d, err := dialer.New(dialer.Resolver(res), dialer.MultipathTCP(false))
	require.NoError(t, err)
	viaNettune := dialAllocs(t, context.Background(), v6, d.DialContext, address)
	t.Logf("allocations per dial: net.Dialer %.1f, dialer.Dialer %.1f", viaNet, viaNettune)
	assert.LessOrEqual(t, viaNettune, viaNet+6, "allocations of a two-address dial through a *net.Resolver, against net.Dialer's")
	_ = v4 // listens so that a late IPv4 attempt would connect too
}
