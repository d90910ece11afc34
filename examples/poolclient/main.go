// Command poolclient puts nettune's connection pool in front of a real
// request/response protocol, an echo server, and measures what it buys:
// the same requests sent over a fresh connection each, then through
// pool.ConnPool, from several goroutines at once.
//
//	go run ./examples/poolclient                      # against an embedded echo server
//	go run ./examples/poolclient -addr 127.0.0.1:7007 # against examples/echoserver
//
// With the embedded server it then closes every server-side connection,
// as a restarting server or an idle timeout would, lets the pool sit idle
// for the -liveness threshold (at least 10ms), and shows the pool's liveness check
// finding the dead idle connections before they are used.
// A request is sent again, once, on a new connection when it fails on a
// pooled one (safe here: an echo is idempotent).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync/atomic"
	"time"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/examples/internal/echo"
	"github.com/nettune/nettune/pool"
)

func main() { cli.Main("poolclient", run) }

// about is the paragraph of -h.
const about = `Sends echo requests over a fresh connection each, then through pool.ConnPool,
from several goroutines at once, and prints the latencies side by side. With
the embedded server it then drops every server-side connection and shows the
liveness check finding the dead ones before they are used.`

type config struct {
	cli.LoadFlags
	addr     string
	size     int
	maxSize  int
	liveness time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	f := cli.NewFlagSet("poolclient", stderr, about, "[flags]")
	f.DialAddr(&cfg.addr, "addr", "", "echo server `host:port` (default: start one on loopback)")
	f.LoadFlags(&cfg.LoadFlags, 4000)
	f.Int(&cfg.size, "size", 64, 1, 1<<20, "request size in `bytes`; the server echoes them back")
	f.Int(&cfg.maxSize, "max-size", 0, 0, math.MaxInt, "pool.MaxSize (0: as many as -workers)")
	f.Duration(&cfg.liveness, "liveness", time.Millisecond, cli.AnyDuration, "pool.LivenessCheck: peek at connections quiet (no data read, no check passed) this long before handing them out (0: the pool's default, 1s; negative: no check)")
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	if cfg.maxSize == 0 {
		cfg.maxSize = cfg.Workers
	}
	return cfg, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	addr, where := cfg.addr, "given server"
	var srv *echo.Server
	if addr == "" {
		if srv, err = echo.Start(ctx, 0, nil); err != nil {
			return fmt.Errorf("start loopback echo server: %w", err)
		}
		defer func() { err = errors.Join(err, srv.Close()) }()
		addr, where = srv.Addr(), "embedded echo server"
	}
	d, err := dialer.New(dialer.Timeout(cfg.Timeout))
	if err != nil {
		return err
	}
	popts := []pool.ConnOption{pool.MaxSize(cfg.maxSize), pool.DialTimeout(cfg.Timeout), pool.LivenessCheck(cfg.liveness)}
	cp, err := pool.NewConnPool(d.DialContext, "tcp", addr, popts...)
	if errors.Is(err, errors.ErrUnsupported) {
		// No liveness check on this platform (it needs unix).
		fmt.Fprintf(stderr, "poolclient: %v: going on without it\n", err)
		cp, err = pool.NewConnPool(d.DialContext, "tcp", addr, popts[:2]...)
	}
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	defer func() { err = errors.Join(err, cp.Close()) }()

	fmt.Fprintf(stdout, "poolclient: %d requests of %d bytes to %s (%s), %d goroutines at once\n", cfg.N, cfg.size, addr, where, cfg.Workers)
	fresh, _, err := load(ctx, cfg, cfg.N, func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }, false)
	if err != nil {
		return fmt.Errorf("fresh connections to %s: %w", addr, err)
	}
	pooled, _, err := load(ctx, cfg, cfg.N, func(ctx context.Context) (net.Conn, error) { return cp.Get(ctx) }, true)
	if err != nil {
		return fmt.Errorf("pooled connections to %s: %w", addr, err)
	}
	fmt.Fprintln(stdout)
	cli.WriteLatencyTable(stdout, []cli.LatencyRow{
		fresh.Row("fresh connection per request"),
		pooled.Row(fmt.Sprintf("pooled (pool.ConnPool, MaxSize %d)", cfg.maxSize)),
	})
	fmt.Fprintf(stdout, "  speed-up: %s at p50, %s at p99, %s at p99.9\n",
		cli.Ratio(cli.Speedup(fresh.Snap, pooled.Snap, 0.5)),
		cli.Ratio(cli.Speedup(fresh.Snap, pooled.Snap, 0.99)),
		cli.Ratio(cli.Speedup(fresh.Snap, pooled.Snap, 0.999)))
	st := cp.Stats()
	fmt.Fprintf(stdout, "  pool: %d gets, %d served from idle, %d waited (%v in all), %d dials\n",
		st.Gets, st.Hits, st.Waits, st.WaitTime.Round(time.Microsecond), st.Dials)

	if srv != nil {
		// The server drops every connection, as a restart would, and the
		// pool sits idle while it restarts: longer than the liveness
		// threshold, so every idle connection is checked before reuse.
		closed := srv.CloseConns()
		threshold := cfg.liveness
		if threshold == 0 {
			threshold = time.Second // the pool's default, which 0 asks for
		}
		idle := max(threshold, 10*time.Millisecond)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(idle):
		}
		before := cp.Stats().Closed.Health
		n := max(cfg.N/10, cfg.Workers)
		after, retried, err := load(ctx, cfg, n, func(ctx context.Context) (net.Conn, error) { return cp.Get(ctx) }, true)
		if err != nil {
			return fmt.Errorf("after the server closed its connections: %w", err)
		}
		fmt.Fprintf(stdout, "\nafter the server closed all %d of its connections and the pool sat idle for %v:\n", closed, idle)
		cli.WriteLatencyTable(stdout, []cli.LatencyRow{after.Row("pooled, the first requests after")})
		fmt.Fprintf(stdout, "  %d requests failed, %d sent again on a new connection; the liveness check discarded %d dead idle connections\n",
			after.Failed, retried, cp.Stats().Closed.Health-before)
	}
	return nil
}

// load sends n requests from cfg.Workers goroutines, each on a connection
// from get. A request that fails on a pooled connection is sent again once
// (the echo is idempotent); the second return value counts those.
func load(ctx context.Context, cfg *config, n int, get func(context.Context) (net.Conn, error), pooled bool) (*cli.LoadResult, int64, error) {
	var retried atomic.Int64
	res, err := cli.Load(ctx, n, cfg.Workers, func() func(context.Context) error {
		req, resp := bytes.Repeat([]byte{'e'}, cfg.size), make([]byte, cfg.size)
		return func(ctx context.Context) error {
			err := request(ctx, cfg.Timeout, get, req, resp)
			if err != nil && pooled {
				retried.Add(1)
				err = request(ctx, cfg.Timeout, get, req, resp)
			}
			return err
		}
	})
	return res, retried.Load(), err
}

// request sends one echo request on a connection from get and closes it
// (for a pooled connection: returns it to the pool, or discards it after
// an error).
func request(ctx context.Context, timeout time.Duration, get func(context.Context) (net.Conn, error), req, resp []byte) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := get(ctx)
	if err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	err = c.SetDeadline(dl)
	if err == nil {
		_, err = c.Write(req)
	}
	if err == nil {
		_, err = io.ReadFull(c, resp)
	}
	if err == nil && !bytes.Equal(req, resp) {
		err = errors.New("the server answered with other bytes than it was sent")
		if pc, ok := c.(*pool.Conn); ok {
			pc.MarkUnusable()
		}
	}
	return errors.Join(err, c.Close())
}
