package listener_test

import (
	"context"
	"io"
	"log"
	"math"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/sockopt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // poll interval, not a wait for the condition
	}
}

func listen(t testing.TB, opts ...listener.Option) *listener.Listener {
	t.Helper()
	cfg, err := listener.New(opts...)
	require.NoError(t, err)
	l, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

type accepted struct {
	c   net.Conn
	err error
}

// dialAccept dials l with d and returns the client conn and what Accept
// returned for it.
func dialAccept(t testing.TB, l net.Listener, d *net.Dialer) (net.Conn, net.Conn, error) {
	t.Helper()
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	if d == nil {
		d = &net.Dialer{}
	}
	client, err := d.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	a := <-ch
	if a.c != nil {
		t.Cleanup(func() { a.c.Close() })
	}
	return client, a.c, a.err
}

// readBack asserts that every option reads back from c with its value.
func readBack(t *testing.T, c syscall.Conn, opts ...sockopt.Option) {
	t.Helper()
	for _, o := range opts {
		got, err := sockopt.Get(c, o)
		if assert.NoError(t, err, "getsockopt %s", o.Name()) {
			assert.Equal(t, o, got, "%s read back from the socket", o.Name())
		}
	}
}

func TestAcceptedConnsCarryEveryPerConnectionOption(t *testing.T) {
	perConn := []sockopt.Option{
		sockopt.NoDelay(false),
		sockopt.KeepAlive(true),
		sockopt.KeepAliveIdle(42 * time.Second),
		sockopt.KeepAliveInterval(7 * time.Second),
		sockopt.KeepAliveCount(3),
		sockopt.UserTimeout(5 * time.Second),
		sockopt.NotSentLowat(16384),
		sockopt.Linger(2 * time.Second),
		sockopt.TOS(0x20),
		// After TOS: setting IP_TOS also sets SO_PRIORITY from the TOS.
		sockopt.Priority(3),
		sockopt.Congestion("reno"),
		sockopt.WindowClamp(65536),
	}
	opts := make([]listener.Option, len(perConn))
	for i, o := range perConn {
		opts[i] = listener.ConnSockopt(o)
	}
	l := listen(t, opts...)
	for range 3 { // every Accept, not only the first
		_, c, err := dialAccept(t, l, nil)
		require.NoError(t, err)
		require.IsType(t, &net.TCPConn{}, c, "Accept hands out the concrete *net.TCPConn")
		readBack(t, c.(*net.TCPConn), perConn...)
	}
}

func TestKeepAliveOptionConfiguresEveryAcceptedConn(t *testing.T) {
	l := listen(t, listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 33 * time.Second, Interval: 5 * time.Second, Count: 4}))
	_, c, err := dialAccept(t, l, nil)
	require.NoError(t, err)
	readBack(t, c.(*net.TCPConn), sockopt.KeepAlive(true), sockopt.KeepAliveIdle(33*time.Second),
		sockopt.KeepAliveInterval(5*time.Second), sockopt.KeepAliveCount(4))

	off := listen(t, listener.KeepAliveConfig(net.KeepAliveConfig{Enable: false}))
	_, c, err = dialAccept(t, off, nil)
	require.NoError(t, err)
	readBack(t, c.(*net.TCPConn), sockopt.KeepAlive(false))
}

func TestListeningSockoptsReadBackFromTheListener(t *testing.T) {
	l := listen(t,
		listener.FastOpenQueue(16),
		listener.DeferAccept(5*time.Second),
		listener.Sockopt(sockopt.ReuseAddr(true)),
		listener.Backlog(17),
	)
	tl := l.TCPListener()
	readBack(t, tl, sockopt.FastOpen(16), sockopt.ReuseAddr(true))
	// The kernel rounds TCP_DEFER_ACCEPT up to its SYN-ACK retransmit
	// schedule: 5 s reads back as 7 s (DESIGN fact 7).
	readBack(t, tl, sockopt.DeferAccept(7*time.Second))
	got, asked := l.Backlog()
	assert.Equal(t, 17, got, "the backlog the kernel keeps after the second listen(2)")
	assert.Equal(t, 17, asked)
}

func TestDeferAcceptHandsOutAConnOnceItsDataArrived(t *testing.T) {
	l := listen(t, listener.DeferAccept(5*time.Second))
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	client, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	_, err = client.Write([]byte("ping"))
	require.NoError(t, err)
	a := <-ch
	require.NoError(t, a.err)
	defer a.c.Close()
	buf := make([]byte, 4)
	_, err = io.ReadFull(a.c, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
}

func TestDefaultBacklogIsReadBack(t *testing.T) {
	l := listen(t)
	got, asked := l.Backlog()
	assert.Equal(t, 0, asked, "no Backlog option")
	assert.Positive(t, got, "Go's backlog (somaxconn) is read back")
}

// beyondInt32 is a backlog the kernel cannot take; where int has 32 bits it
// wraps to a negative one, refused as well.
var beyondInt32 = int(int64(maxInt32) + 1)

var maxInt32 int32 = math.MaxInt32 // a variable: the conversion above is not a constant one

func TestNewRejectsBadValuesAndConflictingOptions(t *testing.T) {
	ka := listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Minute})
	cases := []struct {
		name string
		opts []listener.Option
		bad  listener.Option // the option the error names
	}{
		{"negative backlog", []listener.Option{listener.Backlog(-1)}, listener.Backlog(-1)},
		{"backlog beyond int32", []listener.Option{listener.Backlog(beyondInt32)}, listener.Backlog(beyondInt32)},
		{"nil socket option", []listener.Option{listener.Sockopt(nil)}, listener.Sockopt(nil)},
		{"nil conn option", []listener.Option{listener.ConnSockopt(nil)}, listener.ConnSockopt(nil)},
		{"negative user timeout", []listener.Option{listener.ConnSockopt(sockopt.UserTimeout(-time.Second))}, listener.ConnSockopt(sockopt.UserTimeout(-time.Second))},
		{"negative fast open queue", []listener.Option{listener.FastOpenQueue(-1)}, listener.FastOpenQueue(-1)},
		{"fast open two ways", []listener.Option{listener.FastOpen(true), listener.Sockopt(sockopt.FastOpen(8))}, listener.FastOpen(true)},
		{"nil control", []listener.Option{listener.Control(nil)}, listener.Control(nil)},
		{"nil conn control", []listener.Option{listener.ConnControl(nil)}, listener.ConnControl(nil)},
		{"defer accept in milliseconds", []listener.Option{listener.DeferAccept(1500 * time.Millisecond)}, listener.DeferAccept(1500 * time.Millisecond)},
		{"no delay on the listening socket", []listener.Option{listener.Sockopt(sockopt.NoDelay(false))}, listener.Sockopt(sockopt.NoDelay(false))},
		{"keepalive idle on the listening socket", []listener.Option{listener.Sockopt(sockopt.KeepAliveIdle(time.Minute))}, listener.Sockopt(sockopt.KeepAliveIdle(time.Minute))},
		{"fast open on accepted conns", []listener.Option{listener.ConnSockopt(sockopt.FastOpen(8))}, listener.ConnSockopt(sockopt.FastOpen(8))},
		{"fast open connect on a listener", []listener.Option{listener.Sockopt(sockopt.FastOpenConnect(true))}, listener.Sockopt(sockopt.FastOpenConnect(true))},
		{"two receive buffer sizes", []listener.Option{
			listener.Sockopt(sockopt.ReceiveBuffer(1 << 16)), listener.Sockopt(sockopt.ReceiveBuffer(1 << 17)),
		}, listener.Sockopt(sockopt.ReceiveBuffer(1 << 17))},
		{"two user timeouts per conn", []listener.Option{
			listener.ConnSockopt(sockopt.UserTimeout(time.Second)), listener.ConnSockopt(sockopt.UserTimeout(2 * time.Second)),
		}, listener.ConnSockopt(sockopt.UserTimeout(2 * time.Second))},
		{"keepalive config and keepalive sockopt", []listener.Option{ka, listener.ConnSockopt(sockopt.KeepAliveIdle(time.Minute))}, ka},
		{"keepalive disabled with timers", []listener.Option{listener.KeepAliveConfig(net.KeepAliveConfig{Idle: time.Minute})}, listener.KeepAliveConfig(net.KeepAliveConfig{Idle: time.Minute})},
		{"keepalive idle in milliseconds", []listener.Option{listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 1500 * time.Millisecond})}, listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 1500 * time.Millisecond})},
		{"keepalive count beyond 127", []listener.Option{listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Count: 128})}, listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Count: 128})},
		{"multipath with a TCP-only conn option", []listener.Option{listener.MultipathTCP(true), listener.ConnSockopt(sockopt.UserTimeout(time.Second))}, listener.MultipathTCP(true)},
		{"multipath with a TCP-only listener option", []listener.Option{listener.Sockopt(sockopt.WindowClamp(1 << 16)), listener.MultipathTCP(true)}, listener.MultipathTCP(true)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := listener.New(tc.opts...)
			require.Error(t, err)
			assert.Nil(t, cfg)
			var oe *listener.OptionError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, tc.bad, oe.Option, "the error names the offending option: %v", err)
		})
	}
	_, err := listener.New(nil)
	var oe *listener.OptionError
	require.ErrorAs(t, err, &oe, "a nil Option")
	assert.Nil(t, oe.Option)
	assert.Equal(t, "listener: nil Option", err.Error())
}

func TestOptionErrorPrintsTheOptionItsCauseAndItsConflicts(t *testing.T) {
	_, err := listener.New(listener.Backlog(-1))
	require.Error(t, err)
	assert.Equal(t, "listener.Backlog(-1): must be between 0 (Go's default) and 2147483647", err.Error())

	ka := listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Minute})
	idle := listener.ConnSockopt(sockopt.KeepAliveIdle(time.Minute))
	_, err = listener.New(ka, idle)
	var oe *listener.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, ka, oe.Option)
	assert.Equal(t, []listener.Option{idle}, oe.Conflicts)
	assert.Regexp(t, `^listener\.KeepAliveConfig\(.+\): .+ \(conflicts with listener\.ConnSockopt\(TCP_KEEPIDLE=1m0s\)\)$`, err.Error())

	ut := listener.ConnSockopt(sockopt.UserTimeout(time.Second))
	wc := listener.Sockopt(sockopt.WindowClamp(1 << 16))
	_, err = listener.New(wc, listener.MultipathTCP(true), ut)
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, []listener.Option{wc, ut}, oe.Conflicts, "every TCP-only option is named")
}

func TestNewRefusesKeepAliveFieldsWithEnableFalseSayingWhatToWrite(t *testing.T) {
	for _, cfg := range []net.KeepAliveConfig{{Idle: 30 * time.Second}, {Interval: time.Second}, {Count: 2}, {Count: -1}} {
		_, err := listener.New(listener.KeepAliveConfig(cfg))
		var oe *listener.OptionError
		require.ErrorAs(t, err, &oe, "%+v", cfg)
		assert.Contains(t, err.Error(), "set Enable: true to use them, or leave them zero to turn keep-alive off")
	}
}

func TestNewAcceptsTheSameSockoptTwiceWithOneValue(t *testing.T) {
	cfg, err := listener.New(listener.Sockopt(sockopt.FastOpen(8)), listener.Sockopt(sockopt.FastOpen(8)), listener.Backlog(5), listener.Backlog(9))
	require.NoError(t, err)
	l, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	got, asked := l.Backlog()
	assert.Equal(t, 9, asked, "the last Backlog wins")
	assert.Equal(t, 9, got)
}

func TestListenRefusesNetworksOtherThanTCP(t *testing.T) {
	cfg, err := listener.New()
	require.NoError(t, err)
	for _, network := range []string{"udp", "unix", "ip4"} {
		_, err := cfg.Listen(context.Background(), network, "127.0.0.1:0")
		var op *net.OpError
		assert.ErrorAs(t, err, &op, network)
		var unknown net.UnknownNetworkError
		assert.ErrorAs(t, err, &unknown, network)
	}
}

func TestListenErrorsAreOpErrorsReachingTheErrno(t *testing.T) {
	l := listen(t)
	// Binding the same address again without SO_REUSEPORT.
	cfg, err := listener.New(listener.FastOpenQueue(4))
	require.NoError(t, err)
	_, err = cfg.Listen(context.Background(), "tcp", l.Addr().String())
	var op *net.OpError
	require.ErrorAs(t, err, &op)
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
}

func TestListenConfigCarriesTheListeningSockopts(t *testing.T) {
	cfg, err := listener.New(listener.FastOpenQueue(12), listener.ConnSockopt(sockopt.UserTimeout(time.Second)),
		listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 20 * time.Second}))
	require.NoError(t, err)
	lc := cfg.ListenConfig()
	assert.False(t, lc.MultipathTCP(), "Multipath TCP is off for the TCP-only TCP_USER_TIMEOUT")
	assert.Equal(t, 20*time.Second, lc.KeepAliveConfig.Idle)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	readBack(t, ln.(*net.TCPListener), sockopt.FastOpen(12))
}

func TestConfigPrintsItsOptions(t *testing.T) {
	cfg, err := listener.New(listener.Backlog(128), listener.ConnSockopt(sockopt.NoDelay(false)), listener.MultipathTCP(false))
	require.NoError(t, err)
	assert.Equal(t, "listener.Config{listener.Backlog(128), listener.ConnSockopt(TCP_NODELAY=false), listener.MultipathTCP(false)}", cfg.String())
}

func TestOptionsAreComparableValues(t *testing.T) {
	assert.Equal(t, listener.Backlog(3), listener.Backlog(3))
	assert.True(t, listener.FastOpenQueue(3) == listener.FastOpenQueue(3))
	assert.True(t, listener.DeferAccept(time.Second) == listener.DeferAccept(time.Second))
	assert.True(t, listener.Control(nil) == listener.Control(nil), "a Control option is comparable")
	for o, want := range map[listener.Option]string{
		listener.Backlog(1024):                          "listener.Backlog(1024)",
		listener.StrictBacklog(true):                    "listener.StrictBacklog(true)",
		listener.FastOpen(true):                         "listener.FastOpen(true)",
		listener.FastOpenQueue(256):                     "listener.FastOpenQueue(256)",
		listener.DeferAccept(5 * time.Second):           "listener.DeferAccept(5s)",
		listener.ReusePort(true):                        "listener.ReusePort(true)",
		listener.Sockopt(sockopt.ReuseAddr(true)):       "listener.Sockopt(SO_REUSEADDR=true)",
		listener.ConnSockopt(sockopt.NoDelay(true)):     "listener.ConnSockopt(TCP_NODELAY=true)",
		listener.MultipathTCP(false):                    "listener.MultipathTCP(false)",
		listener.Control(nil):                           "listener.Control(nil)",
		listener.ConnControl(nil):                       "listener.ConnControl(nil)",
		listener.KeepAliveConfig(net.KeepAliveConfig{}): "listener.KeepAliveConfig(net.KeepAliveConfig{Enable:false, Idle:0s, Interval:0s, Count:0})",
	} {
		assert.Equal(t, want, o.String())
	}
	assert.False(t, listener.ConnSockopt(sockopt.NoDelay(true)) == listener.ConnSockopt(sockopt.NoDelay(false)))
	logger := log.New(io.Discard, "", 0)
	assert.True(t, listener.ErrorLog(logger) == listener.ErrorLog(logger))
	assert.Equal(t, "listener.ErrorLog(*log.Logger)", listener.ErrorLog(logger).String())
	assert.Equal(t, "listener.ErrorLog(nil)", listener.ErrorLog(nil).String())
}

// errReset is what a client reads on a connection the server reset.
var errReset = syscall.ECONNRESET

// deadline is a generous read deadline that keeps a broken test from
// hanging.
func deadline() time.Time { return time.Now().Add(20 * time.Second) }

func TestASockoptTheKernelRefusesFailsListenWithTheErrno(t *testing.T) {
	cfg, err := listener.New(listener.Sockopt(sockopt.Congestion("nettune-none")))
	require.NoError(t, err)
	l, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.Error(t, err)
	assert.Nil(t, l)
	var op *net.OpError
	require.ErrorAs(t, err, &op)
	assert.Equal(t, "listen", op.Op)
	var se *sockopt.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, sockopt.Option(sockopt.Congestion("nettune-none")), se.Option)
	assert.ErrorIs(t, err, syscall.ENOENT)
}

func TestIPv6ListenerSetsPerConnectionOptionsToo(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	probe.Close()
	cfg, err := listener.New(listener.ConnSockopt(sockopt.TOS(0x20)), listener.ConnSockopt(sockopt.NoDelay(false)))
	require.NoError(t, err)
	l, err := cfg.Listen(context.Background(), "tcp6", "[::1]:0")
	require.NoError(t, err)
	defer l.Close()
	_, c, err := dialAccept(t, l, nil)
	require.NoError(t, err)
	readBack(t, c.(*net.TCPConn), sockopt.TOS(0x20), sockopt.NoDelay(false))
}
