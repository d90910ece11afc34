package grpcnet_test

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/integration/grpcnet"
	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/sockopt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// seedKeepalive is the client keep-alive of the seed's "gRPC for Low-Latency
// RPC" section: grpc.keepalive_time_ms 10000, grpc.keepalive_timeout_ms 5000,
// grpc.keepalive_permit_without_calls true. (Its 4 MiB receive limit and
// retries are grpc-go's defaults already.)
var seedKeepalive = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}

// conns records the connections a dial function returned or a listener
// accepted, as they are (a *net.TCPConn), so that grpc still sees the type
// it sets TCP_USER_TIMEOUT on.
type conns struct {
	mu    sync.Mutex // guards conns
	conns []net.Conn
}

func (c *conns) add(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns = append(c.conns, conn)
}

func (c *conns) only(t testing.TB) net.Conn {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Len(t, c.conns, 1, "connections")
	return c.conns[0]
}

type recordingListener struct {
	net.Listener
	accepted *conns
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.add(c)
	}
	return c, err
}

// serve starts a gRPC server with the health service on a nettune listener
// on 127.0.0.1 and returns its port and the connections it accepts.
func serve(t *testing.T, lopts []listener.Option, sopts ...grpc.ServerOption) (port uint16, accepted *conns) {
	t.Helper()
	cfg, err := listener.New(lopts...)
	require.NoError(t, err)
	l, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted = new(conns)
	srv := grpc.NewServer(sopts...)
	healthgrpc.RegisterHealthServer(srv, health.NewServer())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(recordingListener{l, accepted}) }()
	t.Cleanup(func() {
		srv.Stop()
		assert.NoError(t, <-done, "Serve")
	})
	return netip.MustParseAddrPort(l.Addr().String()).Port(), accepted
}

// call makes one health check RPC to target over dial and returns the
// connections dial made.
func call(t *testing.T, target string, dial func(context.Context, string, string) (net.Conn, error), kp keepalive.ClientParameters) *conns {
	t.Helper()
	dialed := new(conns)
	record := func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err == nil {
			dialed.add(c)
		}
		return c, err
	}
	cc, err := grpc.NewClient(target,
		append(grpcnet.DialOptions(record, kp), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cc.Close(), "ClientConn.Close") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthgrpc.NewHealthClient(cc).Check(ctx, &healthgrpc.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthgrpc.HealthCheckResponse_SERVING, resp.GetStatus())
	return dialed
}

func userTimeout(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	got, err := sockopt.Get(c, sockopt.UserTimeout(0))
	require.NoError(t, err)
	return time.Duration(got)
}

func TestPassthroughTargetMakesGRPCAskTheDialersResolver(t *testing.T) {
	port, _ := serve(t, nil)
	cache, err := dnscache.New(dnscache.Static(map[string][]netip.Addr{"localhost": {netip.MustParseAddr("127.0.0.1")}}))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, cache.Close()) })
	d, err := dialer.New(dialer.Resolver(cache))
	require.NoError(t, err)
	address := net.JoinHostPort("localhost", itoa(port))

	// grpc's default "dns" scheme resolves localhost itself and dials
	// an IP address: the cache is never asked.
	call(t, address, d.DialContext, keepalive.ClientParameters{})
	st := cache.Stats()
	assert.Zero(t, st.Hits+st.Misses, "cache lookups with a dns:/// target: %+v", st)

	// passthrough:/// hands "localhost:port" to the dialer, which asks the cache.
	call(t, grpcnet.Target(address), d.DialContext, keepalive.ClientParameters{})
	st = cache.Stats()
	assert.Equal(t, uint64(1), st.Hits+st.Misses, "cache lookups with a passthrough:/// target: %+v", st)
}

// gRPC replaces the TCP_USER_TIMEOUT that the dialer and the listener set:
// with the client's keep-alive timeout on the client, and with 20 s on a
// server configured with no keep-alive at all.
func TestGRPCReplacesTheUserTimeoutOfTheDialerAndTheListener(t *testing.T) {
	const asked = 30 * time.Second
	port, accepted := serve(t, []listener.Option{listener.ConnSockopt(sockopt.UserTimeout(asked))})
	d, err := dialer.New(dialer.Sockopt(sockopt.UserTimeout(asked)))
	require.NoError(t, err)
	dialed := call(t, grpcnet.Target(net.JoinHostPort("127.0.0.1", itoa(port))), d.DialContext, seedKeepalive)

	client, server := dialed.only(t), accepted.only(t)
	assert.Equal(t, seedKeepalive.Timeout, userTimeout(t, client), "client TCP_USER_TIMEOUT after grpc")
	assert.Equal(t, 20*time.Second, userTimeout(t, server), "server TCP_USER_TIMEOUT after grpc")
	for _, c := range []net.Conn{client, server} {
		report, err := sockopt.Verify(c, sockopt.UserTimeout(asked))
		require.NoError(t, err)
		assert.False(t, report.OK(), "Verify sees the replaced value:\n%v", report)
		t.Logf("%v → %v", c.LocalAddr(), report)
	}

	// Without keep-alive the client leaves the dialer's value alone.
	dialed = call(t, grpcnet.Target(net.JoinHostPort("127.0.0.1", itoa(port))), d.DialContext, keepalive.ClientParameters{})
	assert.Equal(t, asked, userTimeout(t, dialed.only(t)), "client TCP_USER_TIMEOUT without keep-alive")
}

// The recipe: the dialer and the listener set the values that grpc will
// set, so that a connection's TCP_USER_TIMEOUT does not change under it and
// Verify agrees with the configuration on both sides.
func TestRecipeGivesTheDialerAndListenerGRPCsUserTimeout(t *testing.T) {
	serverKeepalive := keepalive.ServerParameters{Time: time.Minute, Timeout: 10 * time.Second}
	sut, ok := grpcnet.ServerUserTimeout(serverKeepalive)
	require.True(t, ok)
	port, accepted := serve(t, []listener.Option{listener.ConnSockopt(sockopt.UserTimeout(sut))},
		grpc.KeepaliveParams(serverKeepalive),
		grpc.KeepaliveEnforcementPolicy(grpcnet.EnforcementPolicy(seedKeepalive)))

	cut, ok := grpcnet.ClientUserTimeout(seedKeepalive)
	require.True(t, ok)
	d, err := dialer.New(dialer.Sockopt(sockopt.UserTimeout(cut)))
	require.NoError(t, err)
	dialed := call(t, grpcnet.Target(net.JoinHostPort("127.0.0.1", itoa(port))), d.DialContext, seedKeepalive)

	for name, c := range map[string]struct {
		conn net.Conn
		want time.Duration
	}{"client": {dialed.only(t), cut}, "server": {accepted.only(t), sut}} {
		report, err := sockopt.Verify(c.conn, sockopt.UserTimeout(c.want))
		require.NoError(t, err)
		assert.True(t, report.OK(), "%s:\n%v", name, report)
	}
}

func TestUserTimeoutsAreGRPCs(t *testing.T) {
	for _, tc := range []struct {
		kp   keepalive.ClientParameters
		want time.Duration
		ok   bool
	}{
		{keepalive.ClientParameters{}, 0, false},
		{seedKeepalive, 5 * time.Second, true},
		{keepalive.ClientParameters{PermitWithoutStream: true}, 20 * time.Second, true},
		{keepalive.ClientParameters{Time: time.Minute}, 20 * time.Second, true},
	} {
		got, ok := grpcnet.ClientUserTimeout(tc.kp)
		assert.Equal(t, tc.want, got, "ClientUserTimeout(%+v)", tc.kp)
		assert.Equal(t, tc.ok, ok, "ClientUserTimeout(%+v)", tc.kp)
	}
	got, ok := grpcnet.ServerUserTimeout(keepalive.ServerParameters{})
	assert.True(t, ok)
	assert.Equal(t, 20*time.Second, got, "a server with no keep-alive configured")
	assert.Equal(t, keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true},
		grpcnet.EnforcementPolicy(seedKeepalive))
}

func itoa(port uint16) string { return strconv.Itoa(int(port)) }
