package redisnet_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/integration/internal/servertest"
	"github.com/nettune/nettune/integration/redisnet"
	"github.com/nettune/nettune/internal/tlstest"
	"github.com/nettune/nettune/sockopt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startRedis starts redis-server on 127.0.0.1 with no persistence, and
// with TLS on its port when tlsArgs are given; it returns the address.
func startRedis(t *testing.T, tlsArgs ...string) string {
	t.Helper()
	bin := servertest.Binary(t, "redis-server", "redis-server")
	port := strconv.Itoa(servertest.FreePort(t))
	args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
	if tlsArgs == nil {
		args = append(args, "--port", port)
	} else {
		args = append(append(args, "--port", "0", "--tls-port", port), tlsArgs...)
	}
	servertest.Start(t, exec.Command(bin, args...), "Ready to accept connections", syscall.SIGTERM)
	return net.JoinHostPort("127.0.0.1", port)
}

func newClient(t *testing.T, opt *redis.Options) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { assert.NoError(t, rdb.Close()) })
	return rdb
}

func TestGoRedisDialsWithTheNettuneDialer(t *testing.T) {
	addr := startRedis(t)
	const idle = 42 * time.Second
	d, err := dialer.New(dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: 5 * time.Second, Count: 3}))
	require.NoError(t, err)
	var conns []net.Conn
	dial := redisnet.Dialer(d.DialContext, nil)
	rdb := newClient(t, &redis.Options{
		Addr: addr,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err == nil {
				conns = append(conns, c) // one at a time: PoolSize 1
			}
			return c, err
		},
		PoolSize: 1,
		Protocol: 3,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, rdb.Set(ctx, "nettune", "ok", 0).Err())
	got, err := rdb.Get(ctx, "nettune").Result()
	require.NoError(t, err)
	assert.Equal(t, "ok", got)

	require.Len(t, conns, 1, "go-redis dialed through the nettune dialer")
	report, err := sockopt.Verify(conns[0], sockopt.KeepAlive(true), sockopt.KeepAliveIdle(idle))
	require.NoError(t, err)
	assert.True(t, report.OK(), "the dialer's keep-alive is on the conn go-redis uses:\n%v", report)
}

func TestGoRedisWithACustomDialerNeedsTheDialerToDoTLS(t *testing.T) {
	serverTLS, clientTLS, err := tlstest.Configs()
	require.NoError(t, err)
	addr := startRedis(t, tlsFiles(t, serverTLS)...)
	d, err := dialer.New()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The pitfall: with a Dialer, go-redis ignores TLSConfig and speaks
	// plain text to the TLS port.
	plain := newClient(t, &redis.Options{Addr: addr, TLSConfig: clientTLS, Dialer: d.DialContext, MaxRetries: -1})
	err = plain.Ping(ctx).Err()
	assert.Error(t, err, "Options.TLSConfig with Options.Dialer")
	t.Logf("Options.TLSConfig with Options.Dialer: %v", err)

	rdb := newClient(t, &redis.Options{Addr: addr, Dialer: redisnet.Dialer(d.DialContext, clientTLS)})
	assert.NoError(t, rdb.Ping(ctx).Err(), "TLS done by redisnet.Dialer")

	// With no ServerName the host of the address is verified (here
	// 127.0.0.1, which the certificate names), as go-redis's own dialer does.
	noName := clientTLS.Clone()
	noName.ServerName = ""
	rdb = newClient(t, &redis.Options{Addr: addr, Dialer: redisnet.Dialer(d.DialContext, noName)})
	assert.NoError(t, rdb.Ping(ctx).Err(), "TLS with the ServerName taken from the address")
	assert.Empty(t, noName.ServerName, "the caller's tls.Config is left as it was")
}

// tlsFiles writes the certificate and key of cfg as PEM files and returns
// the redis-server arguments that use them, without client certificates.
func tlsFiles(t *testing.T, cfg *tls.Config) []string {
	t.Helper()
	dir := t.TempDir()
	cert := cfg.Certificates[0]
	key, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	require.NoError(t, err)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: key}), 0o600))
	return []string{"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-auth-clients", "no"}
}
