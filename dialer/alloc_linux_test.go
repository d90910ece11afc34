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
		// context that can end (the caller's, or Timeout's), the Dialer
		// notes whether its attempt made a socket (an address it did not
		// is NotTried in *Error) from net's Control hook, in a state of
		// its own that Control finds through the attempt's context (1).
		// When no option needs a Control anyway, the hook costs what net
		// builds for it: the RawConn, the address as a string (the IP,
		// the port and the two joined) and the network name ("tcp4"),
		// 5. The Dialer saves 3 elsewhere: the literal it hands net is
		// one string where net.Dialer's caller builds two, net does not
		// partition a single address for Happy Eyeballs, and an IPv4
		// address in its IPv4-mapped form costs net's parse one
		// allocation less. 6 - 3 = 3. With options, the one Control
		// serves both.
		extra float64
	}{
		{"no options", &net.Dialer{}, []dialer.Option{dialer.MultipathTCP(false)}, context.Background(), 0},
		{"typical options", &net.Dialer{KeepAliveConfig: allocKeepAlive, Control: sockopt.DialControl(allocSockopts...)}, typicalOpts, context.Background(), 0},
		{"no options, a context that can end", &net.Dialer{}, []dialer.Option{dialer.MultipathTCP(false)}, deadline, 3},
		{"no options, a Timeout", &net.Dialer{Timeout: time.Hour}, []dialer.Option{dialer.MultipathTCP(false), dialer.Timeout(time.Hour)}, context.Background(), 3},
		{"typical options, a context that can end", &net.Dialer{KeepAliveConfig: allocKeepAlive, Control: sockopt.DialControl(allocSockopts...)}, typicalOpts, deadline, 0},
		{"typical options, a Timeout", &net.Dialer{Timeout: time.Hour, KeepAliveConfig: allocKeepAlive, Control: sockopt.DialControl(allocSockopts...)}, append(typicalOpts[:len(typicalOpts):len(typicalOpts)], dialer.Timeout(time.Hour)), context.Background(), 0},
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

func TestAHappyEyeballsDialAllocatesNoMoreThanNetDialersRace(t *testing.T) {
	// Both race ::1 against 127.0.0.1 for a name a loopback DNS server
	// answers, through the same *net.Resolver; ::1 answers first. The
	// Dialer parses its answer into net again (see the next test), but
	// its race is lighter than net's, and under a context that never
	// ends its attempts need no Control: the only context that can end
	// one is the race's own, cancelled once another attempt has won.
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

	typicalOpts := []dialer.Option{dialer.KeepAliveConfig(allocKeepAlive)}
	for _, o := range allocSockopts {
		typicalOpts = append(typicalOpts, dialer.Sockopt(o))
	}
	deadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, tc := range []struct {
		name string
		net  func() *net.Dialer
		opts []dialer.Option
		ctx  context.Context
		// extra: under a context that can end, the Dialer tracks its
		// attempts through net's Control hook (see the first test: 5
		// when no option needs a Control), less the one allocation by
		// which its race is lighter than net's: 4.
		extra float64
	}{
		{"no options", func() *net.Dialer { return &net.Dialer{} }, []dialer.Option{dialer.MultipathTCP(false)}, context.Background(), 0},
		{"typical options", func() *net.Dialer {
			return &net.Dialer{KeepAliveConfig: allocKeepAlive, Control: sockopt.DialControl(allocSockopts...)}
		}, typicalOpts, context.Background(), 0},
		{"no options, a context that can end", func() *net.Dialer { return &net.Dialer{} }, []dialer.Option{dialer.MultipathTCP(false)}, deadline, 4},
		{"typical options, a context that can end", func() *net.Dialer {
			return &net.Dialer{KeepAliveConfig: allocKeepAlive, Control: sockopt.DialControl(allocSockopts...)}
		}, typicalOpts, deadline, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nd := tc.net()
			nd.Resolver = res
			nd.SetMultipathTCP(false)
			viaNet := dialAllocs(t, tc.ctx, v6, nd.DialContext, address)
			d, err := dialer.New(append(tc.opts, dialer.Resolver(res))...)
			require.NoError(t, err)
			viaNettune := dialAllocs(t, tc.ctx, v6, d.DialContext, address)
			t.Logf("allocations per dial: net.Dialer %.1f, dialer.Dialer %.1f", viaNet, viaNettune)
			assert.LessOrEqual(t, viaNettune, viaNet+tc.extra, "allocations of a two-address dial through a *net.Resolver, against net.Dialer's")
		})
	}
	_ = v4 // listens so that a late IPv4 attempt would connect too
}

func TestADialThroughGosResolverAllocatesOnlyTheReparseMoreThanNetDialer(t *testing.T) {
	// With a *net.Resolver, net.Dialer dials the *net.TCPAddr list its
	// own lookup built. The Dialer dials the answer itself, address by
	// address (its RFC 8305 race, its *Error), and net's only API for
	// that (before Go 1.26's DialTCP) takes the address as a string: the
	// Dialer writes the literal, and net parses it back into a
	// []net.IPAddr, the IP's bytes, a *net.TCPAddr and a list (5), where
	// net.Dialer built the *net.TCPAddr and the list while resolving (2)
	// and then partitions the list for Happy Eyeballs, which a single
	// address spares the Dialer (1): 2 more. For tcp4 and tcp6 the
	// resolver's API for one family, LookupIP(ctx, "ip4", host), builds a
	// *net.IPAddr, a list and a []net.IP on top of that (3), and net.Dialer
	// does not partition (0): 6 more.
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	srv, err := dnstest.Start()
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	srv.SetAddrs("one.example", time.Hour, netip.MustParseAddr("127.0.0.1"))

	typicalOpts := []dialer.Option{dialer.KeepAliveConfig(allocKeepAlive)}
	for _, o := range allocSockopts {
		typicalOpts = append(typicalOpts, dialer.Sockopt(o))
	}
	type row struct {
		name, network, host string
		res                 *net.Resolver
		net                 *net.Dialer
		opts                []dialer.Option
		ctx                 context.Context
		extra               float64
	}
	// Under a context that can end, the attempt's tracking adds its state
	// (1) and, without options, the Control hook (5): see the first test.
	deadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	rows := []row{
		{"a loopback DNS server, no options", "tcp", "one.example", srv.Resolver(), &net.Dialer{}, []dialer.Option{dialer.MultipathTCP(false)}, context.Background(), 2},
		{"a loopback DNS server, typical options", "tcp", "one.example", srv.Resolver(), &net.Dialer{KeepAliveConfig: allocKeepAlive, Control: sockopt.DialControl(allocSockopts...)}, typicalOpts, context.Background(), 2},
		{"a loopback DNS server, no options, a context that can end", "tcp", "one.example", srv.Resolver(), &net.Dialer{}, []dialer.Option{dialer.MultipathTCP(false)}, deadline, 2 + 6},
		{"a loopback DNS server, typical options, a context that can end", "tcp", "one.example", srv.Resolver(), &net.Dialer{KeepAliveConfig: allocKeepAlive, Control: sockopt.DialControl(allocSockopts...)}, typicalOpts, deadline, 2 + 1},
	}
	if _, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err == nil {
		rows = append(rows, row{"localhost from /etc/hosts, tcp4, typical options", "tcp4", "localhost", net.DefaultResolver, &net.Dialer{KeepAliveConfig: allocKeepAlive, Control: sockopt.DialControl(allocSockopts...)}, typicalOpts, context.Background(), 6})
	} else {
		t.Logf("localhost does not resolve here, its row skipped: %v", err)
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			address := net.JoinHostPort(tc.host, port)
			tc.net.Resolver = tc.res
			tc.net.SetMultipathTCP(false)
			dial := func(dial func(ctx context.Context, network, address string) (net.Conn, error)) func(ctx context.Context, _, address string) (net.Conn, error) {
				return func(ctx context.Context, _, address string) (net.Conn, error) { return dial(ctx, tc.network, address) }
			}
			viaNet := dialAllocs(t, tc.ctx, ln, dial(tc.net.DialContext), address)
			d, err := dialer.New(append(tc.opts, dialer.Resolver(tc.res))...)
			require.NoError(t, err)
			viaNettune := dialAllocs(t, tc.ctx, ln, dial(d.DialContext), address)
			t.Logf("allocations per dial: net.Dialer %.1f, dialer.Dialer %.1f", viaNet, viaNettune)
			assert.LessOrEqual(t, viaNettune, viaNet+tc.extra, "allocations of a dial through a *net.Resolver, against net.Dialer's")
		})
	}
}
