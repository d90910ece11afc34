package dialer_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/dialer"
)

// The addresses below (RFC 3849 and RFC 5737 documentation ranges) are
// only ever handed to instrumented dial functions that never dial them.
var (
	v6a, v6b, v6c = "2001:db8::a", "2001:db8::b", "2001:db8::c"
	v4a, v4b      = "192.0.2.1", "192.0.2.2"
)

// attempts records the addresses an instrumented dial function was asked
// for, in order.
type attempts struct {
	mu   sync.Mutex // guards seen
	seen []string
}

func (a *attempts) add(addr string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, addr)
	return len(a.seen)
}

func (a *attempts) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

// refuseAll is a dial function that fails every attempt at once, never
// touching the network, and notes the addresses.
func (a *attempts) refuseAll(dialer.DialFunc) dialer.DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		a.add(address)
		return nil, &net.OpError{Op: "dial", Net: network, Err: errRefused}
	}
}

func hostPorts(port string, hosts ...string) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = net.JoinHostPort(h, port)
	}
	return out
}

func TestAttemptsInterleaveFamiliesStartingWithTheFirstAnswer(t *testing.T) {
	var a attempts
	d, err := dialer.NewWithDial(a.refuseAll,
		dialer.Resolver(resolverFor(v6a, v6b, v6c, v4a, v4b)),
		dialer.FallbackDelay(time.Hour)) // only a failure starts the next attempt
	require.NoError(t, err)

	_, err = d.DialContext(context.Background(), "tcp", "dual.example:443")
	want := hostPorts("443", v6a, v4a, v6b, v4b, v6c)
	assert.Equal(t, want, a.list(), "RFC 8305 order: families alternate, each in the resolver's order")

	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "tcp", de.Network)
	assert.Equal(t, "dual.example:443", de.Address)
	assert.Len(t, de.Errs, 5, "one error per address")
	assert.Empty(t, de.NotTried)
	assert.ErrorIs(t, err, errRefused)
}

func TestIPv4FirstAnswersStartWithIPv4(t *testing.T) {
	var a attempts
	d, err := dialer.NewWithDial(a.refuseAll,
		dialer.Resolver(resolverFor(v4a, v4b, v6a)), dialer.FallbackDelay(time.Hour))
	require.NoError(t, err)
	_, err = d.DialContext(context.Background(), "tcp", "dual.example:80")
	require.Error(t, err)
	assert.Equal(t, hostPorts("80", v4a, v6a, v4b), a.list())
}

func TestWithoutFallbackAddressesAreTriedOneByOneInTheResolversOrder(t *testing.T) {
	var a attempts
	d, err := dialer.NewWithDial(a.refuseAll,
		dialer.Resolver(resolverFor(v6a, v6b, v4a, v4b)), dialer.FallbackDelay(-1))
	require.NoError(t, err)
	_, err = d.DialContext(context.Background(), "tcp", "dual.example:80")
	require.Error(t, err)
	assert.Equal(t, hostPorts("80", v6a, v6b, v4a, v4b), a.list())
}

func TestInterleaveKeepsEveryAddressOnce(t *testing.T) {
	in := []netip.AddrPort{
		netip.MustParseAddrPort("[2001:db8::a]:1"), netip.MustParseAddrPort("192.0.2.1:1"),
		netip.MustParseAddrPort("192.0.2.2:1"), netip.MustParseAddrPort("192.0.2.3:1"),
	}
	out := dialer.Interleave(in)
	assert.Equal(t, []netip.AddrPort{in[0], in[1], in[2], in[3]}, out)
	assert.Equal(t, in[:1], dialer.Interleave(in[:1]))
	assert.Empty(t, dialer.Interleave(nil))
}

func TestOnlyAddressesOfTheNetworksFamilyAreDialed(t *testing.T) {
	for _, tc := range []struct {
		network, lookup string
		want            []string
	}{
		{"tcp4", "ip4", hostPorts("80", v4a)},
		{"tcp6", "ip6", hostPorts("80", v6a)},
		{"tcp", "ip", hostPorts("80", v6a, v4a)},
	} {
		t.Run(tc.network, func(t *testing.T) {
			var a attempts
			r := resolverFor(v6a, v4a)
			d, err := dialer.NewWithDial(a.refuseAll, dialer.Resolver(r), dialer.FallbackDelay(time.Hour))
			require.NoError(t, err)
			_, err = d.DialContext(context.Background(), tc.network, "dual.example:80")
			require.Error(t, err)
			assert.Equal(t, tc.want, a.list())
			assert.Equal(t, []string{tc.lookup}, r.networks, "the resolver is asked for the network's family")
		})
	}
}

func TestIPv4MappedAnswersAreDialedAsIPv4(t *testing.T) {
	var a attempts
	d, err := dialer.NewWithDial(a.refuseAll, dialer.Resolver(resolverFor("::ffff:192.0.2.1")))
	require.NoError(t, err)
	_, err = d.DialContext(context.Background(), "tcp4", "dual.example:80")
	require.Error(t, err)
	assert.Equal(t, hostPorts("80", v4a), a.list())
}

func TestALocalAddressLimitsTheDialToItsFamily(t *testing.T) {
	var a attempts
	d, err := dialer.NewWithDial(a.refuseAll,
		dialer.Resolver(resolverFor(v6a, v4a, v6b, v4b)),
		dialer.LocalAddr(netip.MustParseAddrPort("127.0.0.1:0")), dialer.FallbackDelay(time.Hour))
	require.NoError(t, err)
	_, err = d.DialContext(context.Background(), "tcp", "dual.example:80")
	require.Error(t, err)
	assert.Equal(t, hostPorts("80", v4a, v4b), a.list())
}

func TestANameWithoutASuitableAddressFailsWithoutDialing(t *testing.T) {
	var a attempts
	d, err := dialer.NewWithDial(a.refuseAll, dialer.Resolver(resolverFor(v6a)))
	require.NoError(t, err)
	_, err = d.DialContext(context.Background(), "tcp4", "dual.example:80")
	var ae *net.AddrError
	require.ErrorAs(t, err, &ae)
	var oe *net.OpError
	assert.ErrorAs(t, err, &oe, "wrapped the way net wraps it")
	assert.Empty(t, a.list())
}

func TestResolverErrorsComeBackInsideANetOpError(t *testing.T) {
	var a attempts
	boom := errors.New("resolver down")
	d, err := dialer.NewWithDial(a.refuseAll, dialer.Resolver(&fakeResolver{err: boom}))
	require.NoError(t, err)
	_, err = d.DialContext(context.Background(), "tcp", "dual.example:80")
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "dial", oe.Op)
	var dnsErr *net.DNSError
	assert.ErrorAs(t, err, &dnsErr)
	assert.ErrorIs(t, err, boom)
	assert.Empty(t, a.list())
}

func TestAServiceNameIsLookedUpAsAPort(t *testing.T) {
	var a attempts
	d, err := dialer.NewWithDial(a.refuseAll, dialer.Resolver(resolverFor(v4a)))
	require.NoError(t, err)
	_, err = d.DialContext(context.Background(), "tcp", "dual.example:http")
	require.Error(t, err)
	assert.Equal(t, hostPorts("80", v4a), a.list())
}

func TestTheNextAttemptStartsAfterTheFallbackDelayAndTheLoserIsCancelled(t *testing.T) {
	var a attempts
	loserErr := make(chan error, 1)
	winner, peer := net.Pipe()
	defer peer.Close()
	// The attempts run in goroutines of their own, so the order in which
	// they reach the hook is not the order they were started in: the hook
	// goes by the address.
	hook := func(dialer.DialFunc) dialer.DialFunc {
		return func(ctx context.Context, network, address string) (net.Conn, error) {
			a.add(address)
			if address == net.JoinHostPort(v6a, "80") {
				<-ctx.Done() // a black hole: never answers
				loserErr <- ctx.Err()
				return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
			}
			return winner, nil
		}
	}
	d, err := dialer.NewWithDial(hook, dialer.Resolver(resolverFor(v6a, v4a)), dialer.FallbackDelay(time.Millisecond))
	require.NoError(t, err)

	c, err := d.DialContext(context.Background(), "tcp", "dual.example:80")
	require.NoError(t, err)
	defer c.Close()
	assert.Same(t, winner, c, "the second address won while the first hung")
	assert.ElementsMatch(t, hostPorts("80", v6a, v4a), a.list())
	select {
	case err := <-loserErr:
		assert.ErrorIs(t, err, context.Canceled, "the hung attempt is cancelled once another won")
	case <-time.After(wait):
		t.Fatal("the losing attempt was never cancelled")
	}
}

// trackedConn notes when it is closed.
type trackedConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func TestAConnectionThatCompletesAfterAnotherWonIsClosed(t *testing.T) {
	var a attempts
	secondDone := make(chan struct{})
	late := &trackedConn{closed: make(chan struct{})}
	var peers []net.Conn
	var mu sync.Mutex
	pipe := func() net.Conn {
		c, p := net.Pipe()
		mu.Lock()
		peers = append(peers, p)
		mu.Unlock()
		return c
	}
	late.Conn = pipe()
	t.Cleanup(func() {
		for _, p := range peers {
			p.Close()
		}
	})
	hook := func(dialer.DialFunc) dialer.DialFunc {
		return func(ctx context.Context, network, address string) (net.Conn, error) {
			a.add(address)
			if address == net.JoinHostPort(v6a, "80") { // by address: see above
				<-secondDone
				<-ctx.Done()     // cancelled because the second one won...
				return late, nil // ...but its connect completed all the same
			}
			defer close(secondDone)
			return pipe(), nil
		}
	}
	d, err := dialer.NewWithDial(hook, dialer.Resolver(resolverFor(v6a, v4a)), dialer.FallbackDelay(time.Millisecond))
	require.NoError(t, err)
	c, err := d.DialContext(context.Background(), "tcp", "dual.example:80")
	require.NoError(t, err)
	defer c.Close()
	assert.NotSame(t, late, c)
	select {
	case <-late.closed:
	case <-time.After(wait):
		t.Fatal("the connection that lost the race was left open")
	}
}

func TestCancellingTheDialStopsItAndListsTheAddressesNotTried(t *testing.T) {
	started := make(chan struct{})
	hook := func(dialer.DialFunc) dialer.DialFunc {
		return func(ctx context.Context, network, address string) (net.Conn, error) {
			close(started) // called once only: the dial ends before a second attempt
			<-ctx.Done()
			return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		}
	}
	d, err := dialer.NewWithDial(hook, dialer.Resolver(resolverFor(v6a, v4a)), dialer.FallbackDelay(time.Hour))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	_, err = d.DialContext(ctx, "tcp", "dual.example:80")
	assert.ErrorIs(t, err, context.Canceled)
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	assert.Len(t, de.Errs, 1)
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:80")}, de.NotTried)
	assert.Equal(t, context.Canceled, de.Stopped, "why the second address was not tried")
	assert.False(t, de.Timeout(), "a cancelled dial is not a timeout")
}

func TestADialWhoseContextEndedBeforeTheFirstAttemptTriesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"deadline passed", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a attempts
			// The fake resolver answers whatever the context says.
			d, err := dialer.NewWithDial(a.refuseAll, dialer.Resolver(resolverFor(v6a, v4a)))
			require.NoError(t, err)
			ctx, cancel := tc.ctx()
			defer cancel()
			_, err = d.DialContext(ctx, "tcp", "dual.example:80")
			var de *dialer.Error
			require.ErrorAs(t, err, &de)
			assert.Empty(t, a.list(), "no attempt started")
			assert.Empty(t, de.Errs)
			assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::a]:80"), netip.MustParseAddrPort("192.0.2.1:80")}, de.NotTried)
			assert.Equal(t, tc.want, de.Stopped)
			assert.ErrorIs(t, err, tc.want, "errors.Is reaches why nothing was tried")
			assert.Equal(t, tc.want == context.DeadlineExceeded, de.Timeout())
		})
	}
}

func TestEachAttemptGetsAShareOfTheTimeLeft(t *testing.T) {
	var mu sync.Mutex
	var shares []time.Duration
	hook := func(dialer.DialFunc) dialer.DialFunc {
		return func(ctx context.Context, network, address string) (net.Conn, error) {
			dl, ok := ctx.Deadline()
			require.True(t, ok, "every attempt has a deadline when the dial has one")
			mu.Lock()
			shares = append(shares, time.Until(dl))
			mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: network, Err: errRefused}
		}
	}
	const timeout = 40 * time.Second
	d, err := dialer.NewWithDial(hook, dialer.Resolver(resolverFor(v6a, v6b, v4a, v4b)),
		dialer.Timeout(timeout), dialer.FallbackDelay(-1))
	require.NoError(t, err)
	_, err = d.DialContext(context.Background(), "tcp", "dual.example:80")
	require.Error(t, err)
	require.Len(t, shares, 4)
	// Each attempt fails at once, so the time left stays near 40s:
	// shares are about 40/4, 40/3, 40/2 and 40/1 seconds. The slack allows
	// for a loaded machine; a share never exceeds its fraction.
	for i, s := range shares {
		full := timeout / time.Duration(4-i)
		assert.LessOrEqual(t, s, full, "attempt %d gets no more than its share", i)
		assert.Greater(t, s, full-10*time.Second, "attempt %d gets about its share", i)
	}
}

func TestAttemptDeadlineSplitsTheTimeLeftWithAFloor(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		left      time.Duration
		remaining int
		want      time.Duration
	}{
		{10 * time.Second, 4, 2500 * time.Millisecond},
		{10 * time.Second, 1, 10 * time.Second},
		{3 * time.Second, 4, dialer.MinAttemptTime}, // later addresses lose their time first
		{time.Second, 4, time.Second},               // never past the dial's deadline
	} {
		got := dialer.AttemptDeadline(now, now.Add(tc.left), tc.remaining)
		assert.Equal(t, now.Add(tc.want), got, "%v left for %d addresses", tc.left, tc.remaining)
	}
	assert.True(t, dialer.AttemptDeadline(now, time.Time{}, 3).IsZero(), "no deadline stays none")
	past := now.Add(-time.Second)
	assert.Equal(t, past, dialer.AttemptDeadline(now, past, 3), "a passed deadline stays passed")
}

func TestADeadAddressIsLeftAtOnceForTheNextOne(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	probe, err := net.Listen("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), port).String())
	require.NoError(t, err, "precondition: nothing listens on [::1] at the port")
	probe.Close()

	var rec recorder
	d, err := dialer.New(dialer.Resolver(resolverFor("::1", "127.0.0.1")),
		dialer.FallbackDelay(time.Hour), // the refused attempt, not a timer, starts the next
		dialer.RecordConnectTime(&rec), dialer.Timeout(wait))
	require.NoError(t, err)
	c, err := d.DialContext(context.Background(), "tcp", hostAddr(port))
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, ln.Addr().String(), c.RemoteAddr().String())
	assert.Len(t, rec.recorded(), 1, "one successful dial, one connect time")
}

func TestWhenEveryAddressFailsTheErrorHoldsEachFailure(t *testing.T) {
	port := unusedPort(t)
	var rec recorder
	d, err := dialer.New(dialer.Resolver(resolverFor("::1", "127.0.0.1")), dialer.RecordConnectTime(&rec))
	require.NoError(t, err)
	_, err = d.DialContext(context.Background(), "tcp", hostAddr(port))
	require.Error(t, err)

	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	require.Len(t, de.Errs, 2)
	for i, want := range []string{"::1", "127.0.0.1"} {
		var oe *net.OpError
		require.ErrorAs(t, de.Errs[i], &oe)
		assert.Equal(t, netip.AddrPortFrom(netip.MustParseAddr(want), port).String(), oe.Addr.String(),
			"error %d names its address", i)
		assert.ErrorIs(t, de.Errs[i], syscall.ECONNREFUSED)
	}
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "errors.Is reaches the attempts")
	var ne net.Error
	assert.ErrorAs(t, err, &ne, "it is a net.Error, as net's dial errors are")
	assert.False(t, de.Timeout())
	assert.Empty(t, rec.recorded(), "a failed dial records no connect time")
}

func TestTheRecorderGetsOneConnectTimePerSuccessfulDialAndNoneForFailures(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	var rec recorder
	d, err := dialer.New(dialer.RecordConnectTime(&rec))
	require.NoError(t, err)
	for range 3 {
		start := time.Now()
		c, err := d.Dial("tcp", ln.Addr().String())
		elapsed := time.Since(start)
		require.NoError(t, err)
		c.Close()
		got := rec.recorded()
		require.NotEmpty(t, got)
		last := got[len(got)-1]
		assert.Positive(t, last)
		assert.LessOrEqual(t, last, elapsed, "the connect time is part of the dial")
	}
	_, err = d.Dial("tcp", net.JoinHostPort("127.0.0.1", strconvItoa(unusedPort(t))))
	require.Error(t, err)
	assert.Len(t, rec.recorded(), 3, "the failed dial recorded nothing")
}
