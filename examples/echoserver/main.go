// Command echoserver is a TCP echo server built on nettune's listener: a
// reuse-port group of listeners, one accept loop each, per-connection socket
// options set on every accepted connection, and a graceful shutdown on
// SIGINT or SIGTERM that drains the accept queues instead of resetting them.
//
//	go run ./examples/echoserver -addr 127.0.0.1:7007 -listeners 4
//	go run ./examples/latencyprobe -target 127.0.0.1:7007
//
// Every byte a client sends is written back. An accept error that is
// temporary, such as EMFILE when the process is out of file descriptors, is
// printed and retried after a wait (5ms, doubling up to 1s, as net/http
// does); connections that arrive meanwhile wait in the kernel's queue.
//
// On shutdown the server stops accepting (each listener is drained:
// connections already queued in the kernel are taken out and served, not
// reset), waits up to -grace for clients to hang up, then closes what is
// left and prints how many connections each listener accepted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/sockopt"
)

func main() { cli.Main("echoserver", run) }

// about is the paragraph of -h.
const about = `A TCP echo server on a reuse-port group of listeners, with socket options on
every accepted connection. SIGINT or SIGTERM drains the listeners, waits
-grace for clients to hang up, and prints how the connections were spread.`

type config struct {
	addr      string
	listeners int
	backlog   int
	grace     time.Duration
	lopts     cli.Sockopts
	copts     cli.Sockopts
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	f := cli.NewFlagSet("echoserver", stderr, about, "[flags]")
	f.ListenAddr(&cfg.addr, "addr", "127.0.0.1:7007", "listen on this `host:port` (port 0 picks a free one)")
	f.Int(&cfg.listeners, "listeners", runtime.NumCPU(), 1, 1024, "listeners in the reuse-port group, one accept loop each")
	f.Int(&cfg.backlog, "backlog", 0, 0, math.MaxInt, "accept queue length per listener, read back from the kernel (0: Go's choice, net.core.somaxconn)")
	f.Duration(&cfg.grace, "grace", 5*time.Second, 0, "on shutdown, how long to wait for clients to hang up")
	f.Sockopts(&cfg.lopts, "sockopt", "socket option for the listening sockets (repeatable)")
	f.Sockopts(&cfg.copts, "conn-sockopt", "socket option for every accepted connection (repeatable); replaces the defaults")
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	if len(cfg.copts) == 0 {
		// Tuned defaults for a request/response server: no Nagle delay,
		// and a dead peer found within about a minute even while data is
		// unacknowledged (keepalive alone waits while data is in flight).
		cfg.copts = cli.Sockopts{
			sockopt.NoDelay(true),
			sockopt.KeepAlive(true),
			sockopt.KeepAliveIdle(30 * time.Second),
			sockopt.KeepAliveInterval(10 * time.Second),
			sockopt.KeepAliveCount(3),
			sockopt.UserTimeout(60 * time.Second),
		}
	}
	return cfg, nil
}

// server is the echo service: it tracks its connections so that shutdown
// can wait for them, then close the ones left.
type server struct {
	wg       sync.WaitGroup // accept loops and connection handlers
	mu       sync.Mutex     // guards conns
	conns    map[net.Conn]struct{}
	echoed   atomic.Int64
	accepted []atomic.Int64 // per listener
	errs     io.Writer
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	opts := []listener.Option{}
	for _, o := range cfg.lopts {
		opts = append(opts, listener.Sockopt(o))
	}
	for _, o := range cfg.copts {
		opts = append(opts, listener.ConnSockopt(o))
	}
	if cfg.backlog > 0 {
		opts = append(opts, listener.Backlog(cfg.backlog))
	}
	lc, err := listener.New(opts...)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	g, err := lc.ListenGroup(ctx, "tcp", cfg.addr, cfg.listeners)
	if err != nil {
		return err
	}
	ls := g.Listeners()
	s := &server{conns: map[net.Conn]struct{}{}, accepted: make([]atomic.Int64, len(ls)), errs: stderr}
	fmt.Fprintf(stdout, "echoserver: listening on %s with %d listeners (reuse-port group)\n", g.Addr(), len(ls))
	fmt.Fprintf(stdout, "echoserver: %s\n", lc)
	if got, asked := ls[0].Backlog(); got > 0 {
		fmt.Fprintf(stdout, "echoserver: accept queue %d per listener (asked %d)\n", got, asked)
	}
	if migrate, err := listener.MigrateRequests(); err == nil {
		fmt.Fprintf(stdout, "echoserver: net.ipv4.tcp_migrate_req=%t (shutdown drains the queues either way)\n", migrate)
	}
	for i, l := range ls {
		s.wg.Add(1)
		go s.acceptLoop(ctx, i, l)
	}

	<-ctx.Done()
	fmt.Fprintf(stdout, "echoserver: shutting down: draining %d listeners\n", len(ls))
	drained := 0
	for i, l := range ls {
		conns, err := l.Drain()
		if err != nil && !errors.Is(err, errors.ErrUnsupported) { // unsupported: g.Close closes it
			fmt.Fprintf(stderr, "echoserver: drain listener %d: %v\n", i, err)
		}
		for _, c := range conns {
			drained++
			s.accepted[i].Add(1)
			s.serve(c)
		}
	}
	if err := g.Close(); err != nil {
		fmt.Fprintf(stderr, "echoserver: close the listeners: %v\n", err)
	}
	left := s.wait(cfg.grace)
	fmt.Fprintf(stdout, "echoserver: %d queued connections drained and served, %d closed after the %v grace period\n", drained, left, cfg.grace)
	for i := range s.accepted {
		fmt.Fprintf(stdout, "echoserver: listener %d accepted %d connections\n", i, s.accepted[i].Load())
	}
	fmt.Fprintf(stdout, "echoserver: %d bytes echoed\n", s.echoed.Load())
	return nil
}

// acceptLoop serves the connections of listener i until it is closed. A
// temporary error, such as EMFILE when the process is out of file
// descriptors, is reported and retried after a wait (5ms doubling to 1s,
// as net/http does); the loop ends early only on a permanent error.
func (s *server) acceptLoop(ctx context.Context, i int, l *listener.Listener) {
	defer s.wg.Done()
	logf := func(format string, args ...any) {
		fmt.Fprintf(s.errs, "echoserver: listener %d: "+format+"\n", append([]any{i}, args...)...)
	}
	err := cli.Serve(ctx, l, func(c net.Conn) {
		s.accepted[i].Add(1)
		s.serve(c)
	}, logf)
	if err != nil {
		logf("accept: %v; this listener no longer accepts", err)
	}
}

// serve echoes c in its own goroutine.
func (s *server) serve(c net.Conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		n, _ := io.Copy(c, c)
		s.echoed.Add(n)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
}

// wait waits up to grace for every connection to end, then closes the
// ones left, waits for their handlers, and returns how many it closed.
func (s *server) wait(grace time.Duration) int {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return 0
	case <-t.C:
	}
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	<-done
	return n
}
