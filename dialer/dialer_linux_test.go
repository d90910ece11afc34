//go:build linux

package dialer_test

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/internal/netnstest"
	"github.com/nettune/nettune/sockopt"
)

func isRoot() bool { return os.Geteuid() == 0 }

// needsRoot are the options whose values below need CAP_NET_ADMIN.
func needsRoot(o sockopt.Option) bool {
	switch o := o.(type) {
	case sockopt.Mark, sockopt.ReceiveBufferForce, sockopt.SendBufferForce:
		return true
	case sockopt.Priority:
		return o > 6
	}
	return false
}

// dialable are the socket options that mean something on a dialed
// connection, each with a value that reads back as asked (or as its
// documented equivalent, which sockopt.Verify accepts).
var dialable = []sockopt.Option{
	sockopt.NoDelay(false),
	sockopt.KeepAlive(false),
	sockopt.KeepAliveIdle(33 * time.Second),
	sockopt.KeepAliveInterval(11 * time.Second),
	sockopt.KeepAliveCount(4),
	sockopt.UserTimeout(12345 * time.Millisecond),
	sockopt.ReceiveBuffer(1 << 16),
	sockopt.SendBuffer(1 << 16),
	sockopt.ReceiveBufferForce(70000),
	sockopt.SendBufferForce(70000),
	sockopt.ReuseAddr(true),
	sockopt.ReusePort(true),
	sockopt.FastOpenConnect(true),
	sockopt.Congestion("reno"),
	sockopt.NotSentLowat(16384),
	sockopt.MaxSegment(1200),
	sockopt.WindowClamp(20000),
	sockopt.Linger(3 * time.Second),
	sockopt.TOS(0x13), // the kernel strips the ECN bits: reads back 0x10
	sockopt.Mark(7),
	sockopt.Priority(3),
	sockopt.BindToDevice("lo"),
	sockopt.BusyPoll(50 * time.Microsecond),
	sockopt.BindAddressNoPort(true),
}

// dialTCP dials ln with d and returns the conn, closed when the test ends.
func dialTCP(t testing.TB, d *dialer.Dialer, ln net.Listener) *net.TCPConn {
	t.Helper()
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.IsType(t, &net.TCPConn{}, c)
	return c.(*net.TCPConn)
}

func requireVerified(t testing.TB, c *net.TCPConn, opts ...sockopt.Option) {
	t.Helper()
	rep, err := sockopt.Verify(c, opts...)
	require.NoError(t, err)
	assert.True(t, rep.OK(), "every option set reads back set:\n%s", rep)
}

func TestEverySockoptReadsBackFromTheDialedConn(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	for _, o := range dialable {
		t.Run(o.String(), func(t *testing.T) {
			if needsRoot(o) && !isRoot() {
				t.Skip("needs CAP_NET_ADMIN: not root")
			}
			d, err := dialer.New(dialer.Sockopt(o))
			require.NoError(t, err)
			c := dialTCP(t, d, ln)
			requireVerified(t, c, o)
		})
	}
}

func TestATypicalOptionSetAllReadsBackTogether(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	set := []sockopt.Option{
		sockopt.NoDelay(false),
		sockopt.UserTimeout(40 * time.Second),
		sockopt.ReceiveBuffer(1 << 18),
		sockopt.SendBuffer(1 << 18),
		sockopt.NotSentLowat(1 << 14),
		sockopt.Congestion("reno"),
		sockopt.TOS(0x10),
		sockopt.Linger(time.Second),
	}
	opts := []dialer.Option{
		dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}),
	}
	for _, o := range set {
		opts = append(opts, dialer.Sockopt(o))
	}
	d, err := dialer.New(opts...)
	require.NoError(t, err)
	c := dialTCP(t, d, ln)
	requireVerified(t, c, append(set,
		sockopt.KeepAlive(true), sockopt.KeepAliveIdle(30*time.Second),
		sockopt.KeepAliveInterval(5*time.Second), sockopt.KeepAliveCount(3))...)
}

func TestKeepAliveConfigReadsBack(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	sysIdle, err := netnstest.Sysctl("net.ipv4.tcp_keepalive_time")
	require.NoError(t, err)
	secs, err := strconv.Atoi(sysIdle)
	require.NoError(t, err)

	cases := []struct {
		name string
		opts []dialer.Option
		want []sockopt.Option
	}{
		{"set", []dialer.Option{dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 33 * time.Second, Interval: 11 * time.Second, Count: 4})},
			[]sockopt.Option{sockopt.KeepAlive(true), sockopt.KeepAliveIdle(33 * time.Second), sockopt.KeepAliveInterval(11 * time.Second), sockopt.KeepAliveCount(4)}},
		{"zero fields take Go's defaults", []dialer.Option{dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true})},
			[]sockopt.Option{sockopt.KeepAlive(true), sockopt.KeepAliveIdle(15 * time.Second), sockopt.KeepAliveInterval(15 * time.Second), sockopt.KeepAliveCount(9)}},
		{"negative fields keep the system's", []dialer.Option{dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: -1, Interval: 20 * time.Second, Count: -1})},
			[]sockopt.Option{sockopt.KeepAlive(true), sockopt.KeepAliveIdle(time.Duration(secs) * time.Second), sockopt.KeepAliveInterval(20 * time.Second)}},
		{"off", []dialer.Option{dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: false})},
			[]sockopt.Option{sockopt.KeepAlive(false)}},
		{"no option: like net.Dialer", nil,
			[]sockopt.Option{sockopt.KeepAlive(true), sockopt.KeepAliveIdle(15 * time.Second), sockopt.NoDelay(true)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := dialer.New(tc.opts...)
			require.NoError(t, err)
			c := dialTCP(t, d, ln)
			for _, o := range tc.want {
				got, err := sockopt.Get(c, o)
				require.NoError(t, err)
				assert.Equal(t, o, got, "read back %s", o.Name())
			}
		})
	}
}

func TestNagleStaysOnWhenAskedEvenThoughGoTurnsItOff(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	d, err := dialer.New(dialer.Sockopt(sockopt.NoDelay(false)))
	require.NoError(t, err)
	c := dialTCP(t, d, ln)
	v, err := unix.GetsockoptInt(fd(t, c), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	require.NoError(t, err)
	assert.Equal(t, 0, v, "TCP_NODELAY read back with getsockopt")
}

func fd(t testing.TB, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	var n int
	require.NoError(t, rc.Control(func(f uintptr) { n = int(f) }))
	return n
}

func TestALocalAddressIsBoundBeforeConnect(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	d, err := dialer.New(dialer.LocalAddr(netip.MustParseAddrPort("127.0.0.2:0")))
	require.NoError(t, err)
	c := dialTCP(t, d, ln)
	assert.Equal(t, netip.MustParseAddr("127.0.0.2"), c.LocalAddr().(*net.TCPAddr).AddrPort().Addr())
}

func TestSetsockoptErrorsReachTheErrnoThroughNetOpError(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	bad, errno := sockopt.Option(sockopt.Congestion("nope")), unix.ENOENT
	if !isRoot() {
		bad, errno = sockopt.Mark(1), unix.EPERM // SO_MARK needs CAP_NET_ADMIN
	}
	var rec recorder
	d, err := dialer.New(dialer.Sockopt(bad), dialer.RecordConnectTime(&rec))
	require.NoError(t, err, "New makes no system call: the value is valid")
	_, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
	require.Error(t, err)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe, "net's error type")
	var se *sockopt.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, bad, se.Option, "the error names the option")
	assert.ErrorIs(t, err, errno)
	assert.Empty(t, rec.recorded(), "a failed dial records nothing")
}

// mptcpListener listens on 127.0.0.1 with Multipath TCP on, or skips the
// test when the kernel has none.
func mptcpListener(t *testing.T) *net.TCPListener {
	t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	if mp, err := sockopt.IsMPTCP(ln.(*net.TCPListener)); err != nil || !mp {
		t.Skip("kernel without Multipath TCP (net.mptcp.enabled=0?)")
	}
	return ln.(*net.TCPListener)
}

func soProtocol(t testing.TB, c *net.TCPConn) int {
	t.Helper()
	p, err := unix.GetsockoptInt(fd(t, c), unix.SOL_SOCKET, unix.SO_PROTOCOL)
	require.NoError(t, err)
	return p
}

func TestMultipathTCPOnGivesAnMPTCPSocketWithEveryOptionSet(t *testing.T) {
	ln := mptcpListener(t)
	set := []sockopt.Option{
		sockopt.ReceiveBuffer(1 << 17),
		sockopt.SendBuffer(1 << 17),
		sockopt.NoDelay(false),
		sockopt.Linger(2 * time.Second),
	}
	opts := []dialer.Option{dialer.MultipathTCP(true),
		dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 20 * time.Second, Interval: 7 * time.Second, Count: 5})}
	for _, o := range set {
		require.False(t, sockopt.TCPOnly(o), "precondition: %v is not TCP-only", o)
		opts = append(opts, dialer.Sockopt(o))
	}
	d, err := dialer.New(opts...)
	require.NoError(t, err)
	c := dialTCP(t, d, ln)
	assert.Equal(t, unix.IPPROTO_MPTCP, soProtocol(t, c), "SO_PROTOCOL is IPPROTO_MPTCP (262)")
	mp, err := c.MultipathTCP()
	require.NoError(t, err)
	assert.True(t, mp, "the connection really uses MPTCP")
	requireVerified(t, c, append(set,
		sockopt.KeepAlive(true), sockopt.KeepAliveIdle(20*time.Second),
		sockopt.KeepAliveInterval(7*time.Second), sockopt.KeepAliveCount(5))...)
}

func TestATCPOnlyOptionTurnsMultipathTCPOffEvenWhenGODEBUGTurnsItOn(t *testing.T) {
	ln := mptcpListener(t)
	t.Setenv("GODEBUG", "multipathtcp=1") // dialers default to MPTCP

	plain, err := dialer.New(dialer.Sockopt(sockopt.ReceiveBuffer(1 << 16)))
	require.NoError(t, err)
	c := dialTCP(t, plain, ln)
	if soProtocol(t, c) != unix.IPPROTO_MPTCP {
		t.Skip("GODEBUG=multipathtcp=1 set at run time did not reach net; cannot show the override")
	}

	ut := sockopt.UserTimeout(2500 * time.Millisecond)
	d, err := dialer.New(dialer.Sockopt(ut))
	require.NoError(t, err)
	c = dialTCP(t, d, ln)
	assert.Equal(t, unix.IPPROTO_TCP, soProtocol(t, c), "TCP_USER_TIMEOUT asked for: plain TCP")
	requireVerified(t, c, ut)
}

// blackHole listens on addr with a backlog of zero and fills it, so that
// the kernel drops every further SYN: a dial there hangs until cancelled.
func blackHole(t testing.TB, addr netip.AddrPort) {
	t.Helper()
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: int(addr.Port()), Addr: addr.Addr().As16()}
	if addr.Addr().Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
	}
	s, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(s) })
	require.NoError(t, unix.Bind(s, sa))
	require.NoError(t, unix.Listen(s, 0))
	filler, err := net.DialTimeout("tcp", addr.String(), wait)
	require.NoError(t, err, "the first connection fills the queue")
	t.Cleanup(func() { filler.Close() })
}

func TestABlackHoledAddressIsOvertakenAfterTheFallbackDelay(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	blackHole(t, netip.AddrPortFrom(netip.IPv6Loopback(), port))

	holeErr := make(chan error, 1)
	hook := func(real dialer.DialFunc) dialer.DialFunc {
		return func(ctx context.Context, network, address string) (net.Conn, error) {
			c, err := real(ctx, network, address)
			if netip.MustParseAddrPort(address).Addr().Is6() {
				holeErr <- err
			}
			return c, err
		}
	}
	var rec recorder
	d, err := dialer.NewWithDial(hook, dialer.Resolver(resolverFor("::1", "127.0.0.1")),
		dialer.FallbackDelay(10*time.Millisecond), dialer.Timeout(wait), dialer.RecordConnectTime(&rec))
	require.NoError(t, err)
	c, err := d.DialContext(context.Background(), "tcp", hostAddr(port))
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, ln.Addr().String(), c.RemoteAddr().String(), "IPv4 won while [::1] hung")
	select {
	case err := <-holeErr:
		assert.ErrorIs(t, err, context.Canceled, "the hung connect is cancelled, not left running")
	case <-time.After(wait):
		t.Fatal("the black-holed attempt was never cancelled")
	}
	assert.Len(t, rec.recorded(), 1)
}

func TestAnAttemptToABlackHoleEndsAtItsShareOfTheDeadline(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	blackHole(t, netip.AddrPortFrom(netip.IPv6Loopback(), port))

	// Serial, with 4.2s for two addresses: [::1] gets 2.1s, then 127.0.0.1
	// what is left. Without per-attempt deadlines the dial would time out
	// in the black hole.
	d, err := dialer.New(dialer.Resolver(resolverFor("::1", "127.0.0.1")),
		dialer.FallbackDelay(-1), dialer.Timeout(4200*time.Millisecond))
	require.NoError(t, err)
	c, err := d.DialContext(context.Background(), "tcp", hostAddr(port))
	require.NoError(t, err, "the second address got the time the first did not use")
	c.Close()
}

func TestADialThatRunsOutOfTimeIsATimeoutError(t *testing.T) {
	port := unusedPort(t)
	hole := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	blackHole(t, hole)
	d, err := dialer.New(dialer.Resolver(resolverFor("::1")), dialer.Timeout(200*time.Millisecond))
	require.NoError(t, err)
	for _, addr := range []string{hostAddr(port), hole.String()} {
		_, err = d.DialContext(context.Background(), "tcp", addr)
		var ne net.Error
		require.ErrorAs(t, err, &ne, "%s: a net.Error", addr)
		assert.True(t, ne.Timeout(), "%s: net.Error.Timeout reports the timeout: %v", addr, err)
	}
}

// dropNetAdmin removes CAP_NET_ADMIN and CAP_NET_RAW (which this kernel
// also accepts for SO_MARK and SO_PRIORITY) from the effective set of the
// calling thread, which it locks for the rest of the goroutine's life: the thread
// is discarded when the goroutine ends, so no other code runs without it.
// Capabilities are per thread on Linux, and net calls Control on the
// dialing goroutine's thread.
func dropNetAdmin(t *testing.T) {
	t.Helper()
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	require.NoError(t, unix.Capget(&hdr, &data[0]))
	for _, c := range []int{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW} {
		data[c/32].Effective &^= 1 << (c % 32)
	}
	require.NoError(t, unix.Capset(&hdr, &data[0]))
}

func TestWithoutNetworkCapabilitiesPrivilegedOptionsFailWithEPERM(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	for _, o := range []sockopt.Option{sockopt.Mark(1), sockopt.Priority(7), sockopt.ReceiveBufferForce(1 << 20)} {
		t.Run(o.String(), func(t *testing.T) {
			if isRoot() {
				dropNetAdmin(t)
			}
			d, err := dialer.New(dialer.Sockopt(o))
			require.NoError(t, err)
			_, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
			var oe *net.OpError
			require.ErrorAs(t, err, &oe)
			var se *sockopt.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, o, se.Option)
			assert.ErrorIs(t, err, unix.EPERM)
		})
	}
}

func TestAnAddressTheDeadlineLeftNoTimeForIsListedAsNotTried(t *testing.T) {
	// Serial dialing, 100 ms for two addresses: the first is black-holed
	// and keeps its attempt until the dial's deadline (an attempt gets at
	// least min(time left, MinAttemptTime)), so no time is left for the
	// second one, which must be reported as not tried, never as a failed
	// attempt with a deadline that had already passed.
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	hole := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	blackHole(t, hole)
	second := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)

	d, err := dialer.New(dialer.Resolver(resolverFor("::1", "127.0.0.1")), dialer.FallbackDelay(-1))
	require.NoError(t, err)
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		c, err := d.DialContext(ctx, "tcp", hostAddr(port))
		cancel()
		if c != nil {
			c.Close()
		}
		var de *dialer.Error
		require.ErrorAs(t, err, &de, "dial %d", i)
		require.Len(t, de.Errs, 1, "dial %d: only the black hole was tried: %v", i, err)
		var oe *net.OpError
		require.ErrorAs(t, de.Errs[0], &oe)
		assert.Equal(t, hole.String(), oe.Addr.String(), "dial %d", i)
		assert.Equal(t, []netip.AddrPort{second}, de.NotTried, "dial %d: %v", i, err)
		assert.Equal(t, context.DeadlineExceeded, de.Stopped, "dial %d: why the second was not tried", i)
		assert.True(t, de.Timeout(), "dial %d", i)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "dial %d", i)
	}
}

// sockets notes the addresses for which a dial made a socket.
type sockets struct {
	mu   sync.Mutex // guards seen
	seen map[string]bool
}

func (s *sockets) hook(network, address string, c syscall.RawConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[address] = true
}

func (s *sockets) take() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.seen
	s.seen = map[string]bool{}
	return seen
}

// holesAndRefusal returns four addresses on one port: three black holes
// ([::1], 127.0.0.2, 127.0.0.3) and 127.0.0.1, where nothing listens.
func holesAndRefusal(t *testing.T) (addrs []string, port uint16) {
	t.Helper()
	port = unusedPort(t)
	for _, ip := range []string{"::1", "127.0.0.2", "127.0.0.3"} {
		blackHole(t, netip.AddrPortFrom(netip.MustParseAddr(ip), port))
	}
	return []string{"::1", "127.0.0.2", "127.0.0.1", "127.0.0.3"}, port
}

func TestEveryAddressIsEitherAFailedAttemptWithASocketOrNotTried(t *testing.T) {
	// The bookkeeping of a failed dial, across fallback delays and
	// deadlines: every address appears exactly once, among the errors or
	// among the addresses not tried, and the errors are exactly the
	// addresses for which a socket was made (connect follows Control).
	ips, port := holesAndRefusal(t)
	var s sockets
	s.take()
	for _, delay := range []time.Duration{-1, time.Millisecond, 20 * time.Millisecond, 0} {
		d, err := dialer.NewWithSocketHook(s.hook, dialer.Resolver(resolverFor(ips...)), dialer.FallbackDelay(delay))
		require.NoError(t, err)
		for _, timeout := range []time.Duration{-1, time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond} {
			for rep := range 3 {
				name := fmt.Sprintf("FallbackDelay(%v), timeout %v, dial %d", delay, timeout, rep)
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				c, err := d.DialContext(ctx, "tcp", hostAddr(port))
				cancel()
				if c != nil {
					c.Close()
				}
				made := s.take()
				var de *dialer.Error
				require.ErrorAs(t, err, &de, name)
				seen := map[string]int{}
				for _, e := range de.Errs {
					var oe *net.OpError
					if assert.ErrorAs(t, e, &oe, "%s: an attempt's error names its address", name) && assert.NotNil(t, oe.Addr, name) {
						seen[oe.Addr.String()]++
						assert.True(t, made[oe.Addr.String()], "%s: %s is a failed attempt but no socket was made for it: %v", name, oe.Addr, err)
					}
				}
				for _, a := range de.NotTried {
					seen[a.String()]++
					assert.False(t, made[a.String()], "%s: %s is listed as not tried but a socket was made for it: %v", name, a, err)
				}
				for _, ip := range ips {
					a := netip.AddrPortFrom(netip.MustParseAddr(ip), port).String()
					assert.Equal(t, 1, seen[a], "%s: %s appears once, as an error or not tried: %v", name, a, err)
				}
				assert.Len(t, seen, len(ips), "%s: no other address: %v", name, err)
				if len(de.NotTried) > 0 {
					assert.Equal(t, context.DeadlineExceeded, de.Stopped, "%s: why addresses were not tried", name)
					assert.ErrorIs(t, err, context.DeadlineExceeded, name)
				} else {
					assert.NoError(t, de.Stopped, name)
				}
				if timeout < 0 {
					assert.Empty(t, de.Errs, "%s: a dial whose deadline has passed tries nothing", name)
				}
				// An attempt cut by its deadline may end with net's poll
				// deadline error (a timeout, not context.DeadlineExceeded).
				assert.True(t, de.Timeout(), "%s: the dial ran out of time: %v", name, err)
			}
		}
	}
}

// protocols notes the SO_PROTOCOL of every socket a dial made.
type protocols struct {
	mu  sync.Mutex // guards got
	got []int
}

func (p *protocols) hook(network, address string, c syscall.RawConn) {
	proto := -1
	_ = c.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL); err == nil {
			proto = v
		}
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, proto)
}

func (p *protocols) take() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	got := p.got
	p.got = nil
	return got
}

func TestATCPOnlyOptionMakesOnePlainTCPSocketPerDialNotAWastedMPTCPOne(t *testing.T) {
	// Go falls back to plain TCP when Control fails on an MPTCP socket, so
	// the connection looks the same whether or not the Dialer turned
	// MPTCP off: count the sockets each dial makes and their protocol.
	ln := mptcpListener(t)
	t.Setenv("GODEBUG", "multipathtcp=1") // dialers default to MPTCP
	var p protocols

	plain, err := dialer.NewWithSocketHook(p.hook, dialer.Sockopt(sockopt.ReceiveBuffer(1<<16)))
	require.NoError(t, err)
	dialTCP(t, plain, ln)
	if got := p.take(); len(got) != 1 || got[0] != unix.IPPROTO_MPTCP {
		t.Skipf("GODEBUG=multipathtcp=1 set at run time did not make an MPTCP dial (sockets: %v)", got)
	}

	for _, o := range []sockopt.Option{sockopt.UserTimeout(2500 * time.Millisecond), sockopt.WindowClamp(20000), sockopt.NotSentLowat(16384)} {
		require.True(t, sockopt.TCPOnly(o), "precondition: %v is TCP-only", o)
		d, err := dialer.NewWithSocketHook(p.hook, dialer.Sockopt(o))
		require.NoError(t, err)
		c := dialTCP(t, d, ln)
		assert.Equal(t, []int{unix.IPPROTO_TCP}, p.take(), "%v: one socket per dial, plain TCP (%d), no MPTCP (%d) socket first", o, unix.IPPROTO_TCP, unix.IPPROTO_MPTCP)
		requireVerified(t, c, o)
	}
}

func TestControlRunsAfterTheDialersOwnOptionsAndItsOptionReadsBack(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	var sawUserTimeout atomic.Int64
	set := func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// The Sockopt option is already set when Control runs.
			v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
			if err != nil {
				serr = err
				return
			}
			sawUserTimeout.Store(int64(v))
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_SYNCNT, 3)
		})
		return cmp.Or(err, serr)
	}
	d, err := dialer.New(dialer.Sockopt(sockopt.UserTimeout(7*time.Second)), dialer.Control(set))
	require.NoError(t, err)
	c := dialTCP(t, d, ln)
	v, err := unix.GetsockoptInt(fd(t, c), unix.IPPROTO_TCP, unix.TCP_SYNCNT)
	require.NoError(t, err)
	assert.Equal(t, 3, v, "TCP_SYNCNT set by Control reads back on the dialed conn")
	assert.Equal(t, int64(7000), sawUserTimeout.Load(), "Control ran after the Sockopt options were set")

	nd := d.NetDialer()
	c2, err := nd.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c2.Close()
	v, err = unix.GetsockoptInt(fd(t, c2.(*net.TCPConn)), unix.IPPROTO_TCP, unix.TCP_SYNCNT)
	require.NoError(t, err)
	assert.Equal(t, 3, v, "NetDialer's copy runs Control too")
}

func TestAControlErrorFailsTheDialWithTheErrorInTheChain(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	// TCP_SYNCNT above 127 is EINVAL.
	bad := func(network, address string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = os.NewSyscallError("setsockopt", unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_SYNCNT, 1000))
		}); err != nil {
			return err
		}
		return serr
	}
	d, err := dialer.New(dialer.Control(bad))
	require.NoError(t, err)
	for _, address := range []string{ln.Addr().String(), "localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)} {
		c, err := d.Dial("tcp4", address)
		require.Error(t, err, address)
		assert.Nil(t, c)
		assert.ErrorIs(t, err, unix.EINVAL, "%s: the errno is in the chain: %v", address, err)
		var oe *dialer.OptionError
		require.ErrorAs(t, err, &oe, address)
		assert.Equal(t, dialer.Control(bad).String(), oe.Option.String())
		var ope *net.OpError
		assert.ErrorAs(t, err, &ope, "%s: net wraps it as for any Control error", address)
	}
}

func TestARawSockoptIsTheCheckedAlternativeToControl(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	syncnt := sockopt.RawInt(unix.IPPROTO_TCP, unix.TCP_SYNCNT, 5)
	d, err := dialer.New(dialer.Sockopt(syncnt))
	require.NoError(t, err)
	c := dialTCP(t, d, ln)
	v, err := unix.GetsockoptInt(fd(t, c), unix.IPPROTO_TCP, unix.TCP_SYNCNT)
	require.NoError(t, err)
	assert.Equal(t, 5, v)
}
