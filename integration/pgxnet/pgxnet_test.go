//go:build unix

package pgxnet_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/integration/internal/servertest"
	"github.com/nettune/nettune/integration/pgxnet"
	"github.com/nettune/nettune/sockopt"
)

// startPostgres runs initdb into a temporary directory and starts postgres
// on it, listening on 127.0.0.1 and on a unix socket in that directory,
// with trust authentication for the user postgres. Run as root, it runs
// both as the system user postgres, since postgres refuses to run as root.
// It returns the TCP port and the socket directory.
func startPostgres(t *testing.T) (port int, socketDir string) {
	t.Helper()
	bin := servertest.Binary(t, "postgres", "postgresql", "/usr/lib/postgresql/*/bin")
	initdb := filepath.Join(filepath.Dir(bin), "initdb")
	dir := t.TempDir()
	cred := postgresUser(t, dir)
	data := filepath.Join(dir, "data")

	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale", "C", "--no-sync", "--no-instructions")
	cmd.Dir, cmd.SysProcAttr = dir, &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "initdb:\n%s", out)

	port = servertest.FreePort(t)
	cmd = exec.Command(bin, "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off")
	cmd.Dir, cmd.SysProcAttr = dir, &syscall.SysProcAttr{Credential: cred}
	// SIGINT is postgres's fast shutdown: it does not wait for clients.
	servertest.Start(t, cmd, "database system is ready to accept connections", syscall.SIGINT)
	return port, dir
}

// postgresUser returns the credentials of the system user postgres and
// gives it dir, when the test runs as root; otherwise nil (the current
// user).
func postgresUser(t *testing.T, dir string) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root, postgres needs the system user postgres (made by the Debian package postgresql): %v", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	require.NoError(t, err)
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	require.NoError(t, err)
	// t.TempDir's parent is private to root (0700): let postgres through.
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o711))
	require.NoError(t, os.Chown(dir, int(uid), int(gid)))
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// addrs records the addresses a dial function was called with.
type addrs struct {
	mu   sync.Mutex // guards list
	list []string
}

func (a *addrs) wrap(dial func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		a.mu.Lock()
		a.list = append(a.list, network+" "+address)
		a.mu.Unlock()
		return dial(ctx, network, address)
	}
}

func (a *addrs) get() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.list...)
}

func TestPgx(t *testing.T) {
	port, socketDir := startPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connString := func(host string) string {
		return "host=" + host + " port=" + strconv.Itoa(port) + " user=postgres dbname=postgres sslmode=disable"
	}
	newCache := func(t *testing.T, name string) *dnscache.Cache {
		cache, err := dnscache.New(dnscache.Static(map[string][]netip.Addr{name: {netip.MustParseAddr("127.0.0.1")}}))
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, cache.Close()) })
		return cache
	}
	connect := func(t *testing.T, cfg *pgx.ConnConfig) {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		require.NoError(t, err)
		defer func() { assert.NoError(t, conn.Close(ctx)) }()
		var one int
		require.NoError(t, conn.QueryRow(ctx, "select 1").Scan(&one))
		assert.Equal(t, 1, one)
	}

	t.Run("DialFuncAloneIsHandedAddressesNotNames", func(t *testing.T) {
		cache := newCache(t, "localhost")
		d, err := dialer.New(dialer.Resolver(cache))
		require.NoError(t, err)
		cfg, err := pgx.ParseConfig(connString("localhost"))
		require.NoError(t, err)
		var dialed addrs
		cfg.DialFunc = dialed.wrap(pgxnet.DialFunc(d.DialContext))
		connect(t, cfg) // localhost is in /etc/hosts for pgx's own resolver
		st := cache.Stats()
		assert.Zero(t, st.Hits+st.Misses, "cache lookups with DialFunc alone: %+v", st)
		for _, a := range dialed.get() {
			_, err := netip.ParseAddrPort(a[len("tcp "):])
			assert.NoError(t, err, "pgx dialed %q: an IP address", a)
		}
	})

	t.Run("LookupFuncMakesPgxAskTheCache", func(t *testing.T) {
		cache := newCache(t, "db.nettune.test") // a name only the cache knows
		d, err := dialer.New()
		require.NoError(t, err)
		cfg, err := pgx.ParseConfig(connString("db.nettune.test"))
		require.NoError(t, err)
		cfg.DialFunc = pgxnet.DialFunc(d.DialContext)
		cfg.LookupFunc = cache.LookupHost
		connect(t, cfg)
		st := cache.Stats()
		assert.Equal(t, uint64(1), st.Hits+st.Misses, "cache lookups: %+v", st)
	})

	t.Run("PgxpoolDialsWithTheNettuneDialer", func(t *testing.T) {
		cache := newCache(t, "db.nettune.test")
		const idle = 42 * time.Second
		d, err := dialer.New(dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: 5 * time.Second, Count: 3}))
		require.NoError(t, err)
		cfg, err := pgxpool.ParseConfig(connString("db.nettune.test"))
		require.NoError(t, err)
		// pgxpool's dial and lookup functions are in its ConnConfig.
		cfg.ConnConfig.DialFunc = pgxnet.DialFunc(d.DialContext)
		cfg.ConnConfig.LookupFunc = cache.LookupHost
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		defer pool.Close()

		conn, err := pool.Acquire(ctx)
		require.NoError(t, err)
		defer conn.Release()
		var one int
		require.NoError(t, conn.QueryRow(ctx, "select 1").Scan(&one))
		assert.Equal(t, 1, one)
		report, err := sockopt.Verify(conn.Conn().PgConn().Conn(), sockopt.KeepAlive(true), sockopt.KeepAliveIdle(idle))
		require.NoError(t, err)
		assert.True(t, report.OK(), "the dialer's keep-alive is on the pool's conn:\n%v", report)
	})

	t.Run("DialFuncDialsUnixSocketsThatTheDialerRefuses", func(t *testing.T) {
		d, err := dialer.New()
		require.NoError(t, err)
		cfg, err := pgx.ParseConfig(connString(socketDir))
		require.NoError(t, err)
		cfg.DialFunc = d.DialContext
		_, err = pgx.ConnectConfig(ctx, cfg)
		var unknown net.UnknownNetworkError
		assert.ErrorAs(t, err, &unknown, "the nettune dialer with host=%s", socketDir)

		cfg.DialFunc = pgxnet.DialFunc(d.DialContext)
		connect(t, cfg)
	})
}
