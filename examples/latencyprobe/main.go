// Command latencyprobe measures what the latency techniques of nettune buy,
// and how a real server answers.
//
// With no arguments it starts an embedded loopback echo server (plain and
// TLS, with a self-signed certificate made at start) and an embedded
// loopback DNS server, then measures side by side: a fresh TCP connection
// per request versus a pooled one, the same with TLS, Nagle's algorithm on
// versus off on a write-write-read exchange, and a DNS lookup on every dial
// versus the DNS cache. For each it prints p50, p95, p99, p99.9 and max,
// a text histogram and the speed-up ratios.
//
//	go run ./examples/latencyprobe
//
// With -target host:port it measures connect time and request round trips
// against that server, with socket options from flags, and prints what the
// kernel actually applied (sockopt.Verify), what this host will do with the
// options (sockopt.System.Explain) and the kernel's own RTT (TCP_INFO).
// The request writes -size bytes and reads the same number back, so the
// target must echo; use -connect-only for servers that do not.
//
//	go run ./examples/latencyprobe -target 127.0.0.1:7 -sockopt TCP_USER_TIMEOUT=5s -rcvbuf 262144
//
// -json prints the results as JSON on stdout, -plot FILE.svg writes a
// percentile plot. The plot is written beside FILE.svg under a temporary
// name and renamed to it only when the run succeeds: a failed or interrupted
// run leaves FILE.svg as it was. FILE.svg must be a regular file or not
// exist yet; a device such as /dev/null, a fifo or a directory is refused
// before measuring. Progress goes to stderr. Exit status: 0 on success,
// 2 for bad flags or options, 1 when the measurement fails (such as an
// unreachable target).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/sockopt"
)

func main() { cli.Main("latencyprobe", run) }

func usagef(format string, args ...any) error { return cli.Usagef(format, args...) }

// config is the parsed command line.
type config struct {
	target      string
	tls         bool
	insecure    bool
	connectOnly bool
	n           int
	tlsN        int
	nagleN      int
	warmup      int
	rate        float64
	timeout     time.Duration
	size        int
	json        bool
	plot        string
	quiet       bool
	hist        bool
	sockopts    []sockopt.Option
	mptcp       *bool
}

// convenience flags: flag name, the socket option it sets, and its help.
var shortcuts = []struct{ flag, option, help string }{
	{"nodelay", "TCP_NODELAY", "set TCP_NODELAY to this `bool` (false turns Nagle's algorithm on)"},
	{"quickack", "TCP_QUICKACK", "set TCP_QUICKACK to this `bool`"},
	{"rcvbuf", "SO_RCVBUF", "SO_RCVBUF in `bytes` (the kernel doubles it and clamps at 2*rmem_max)"},
	{"sndbuf", "SO_SNDBUF", "SO_SNDBUF in `bytes`"},
	{"congestion", "TCP_CONGESTION", "TCP_CONGESTION `name`, such as cubic or bbr"},
	{"user-timeout", "TCP_USER_TIMEOUT", "TCP_USER_TIMEOUT `duration`"},
	{"tos", "IP_TOS", "IP_TOS / IPV6_TCLASS `byte` (decimal or 0x hex)"},
	{"mss", "TCP_MAXSEG", "TCP_MAXSEG in `bytes`"},
	{"notsent-lowat", "TCP_NOTSENT_LOWAT", "TCP_NOTSENT_LOWAT in `bytes`"},
	{"fastopen", "TCP_FASTOPEN_CONNECT", "TCP Fast Open on the client side (TCP_FASTOPEN_CONNECT): `bool`"},
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("latencyprobe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.target, "target", "", "measure this `host:port` instead of the built-in loopback comparison")
	fs.BoolVar(&cfg.tls, "tls", false, "with -target: speak TLS (the handshake is measured apart)")
	fs.BoolVar(&cfg.insecure, "insecure", false, "with -tls: do not verify the server's certificate")
	fs.BoolVar(&cfg.connectOnly, "connect-only", false, "with -target: measure connect time only (for servers that do not echo)")
	fs.IntVar(&cfg.n, "n", 5000, "samples per measurement")
	fs.IntVar(&cfg.tlsN, "tls-n", 1000, "samples of the fresh-TLS-connection measurement (each is a full handshake)")
	fs.IntVar(&cfg.nagleN, "nagle-n", 40, "samples of the Nagle-on measurement (each costs a delayed-ACK timeout, ~40ms)")
	fs.IntVar(&cfg.warmup, "warmup", 20, "unrecorded calls before each measurement")
	fs.Float64Var(&cfg.rate, "rate", 0, "open loop: start requests at this `rate` per second, latency counted from the intended start (0: closed loop)")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "limit for each sample (dial, handshake or exchange)")
	fs.IntVar(&cfg.size, "size", 64, "request size in `bytes`; the server echoes the same number back")
	fs.BoolVar(&cfg.json, "json", false, "print the results as JSON on stdout")
	fs.StringVar(&cfg.plot, "plot", "", "write a percentile plot (latency vs percentile, log scales) to this SVG `file`, a regular file created or replaced only when the run succeeds")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress on stderr")
	fs.BoolVar(&cfg.hist, "hist", true, "print a text histogram of each measurement")
	fs.Var((*cli.Sockopts)(&cfg.sockopts), "sockopt", "with -target: set a socket option, `NAME=value` as sockopt prints it (TCP_USER_TIMEOUT=5s, SO_RCVBUF=262144, IP_TOS=0xb8); repeatable")
	shortVals := make(map[string]*string, len(shortcuts))
	for _, s := range shortcuts {
		shortVals[s.flag] = fs.String(s.flag, "", "with -target: "+s.help)
	}
	mptcp := fs.Bool("mptcp", false, "with -target: ask for Multipath TCP on or off")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: latencyprobe [flags]            loopback comparison of techniques\n"+
			"       latencyprobe -target host:port [flags]   measure a server\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, s := range shortcuts {
		if !set[s.flag] {
			continue
		}
		o, err := sockopt.Parse(s.option + "=" + *shortVals[s.flag])
		if err != nil {
			return nil, usagef("-%s %s: %w", s.flag, *shortVals[s.flag], err)
		}
		cfg.sockopts = append(cfg.sockopts, o)
	}
	if set["mptcp"] {
		cfg.mptcp = mptcp
	}
	return cfg, cfg.validate(set)
}

func (cfg *config) validate(set map[string]bool) error {
	switch {
	case cfg.n < 1:
		return usagef("-n %d: need at least 1 sample", cfg.n)
	case cfg.tlsN < 1:
		return usagef("-tls-n %d: need at least 1 sample", cfg.tlsN)
	case cfg.nagleN < 1:
		return usagef("-nagle-n %d: need at least 1 sample", cfg.nagleN)
	case cfg.warmup < 0:
		return usagef("-warmup %d: must not be negative", cfg.warmup)
	case cfg.rate < 0 || math.IsNaN(cfg.rate) || math.IsInf(cfg.rate, 0):
		return usagef("-rate %v: must be a finite number of requests per second, 0 for a closed loop", cfg.rate)
	case cfg.rate > 0 && cfg.rate > 1e9:
		return usagef("-rate %v: at most 1e9 per second (one request per nanosecond)", cfg.rate)
	case cfg.timeout <= 0:
		return usagef("-timeout %v: must be positive", cfg.timeout)
	case cfg.size < 1 || cfg.size > 1<<20:
		return usagef("-size %d: must be from 1 to %d bytes", cfg.size, 1<<20)
	}
	if cfg.target == "" {
		for _, name := range []string{"tls", "insecure", "connect-only", "sockopt", "mptcp"} {
			if set[name] {
				return usagef("-%s needs -target host:port", name)
			}
		}
		for _, s := range shortcuts {
			if set[s.flag] {
				return usagef("-%s needs -target host:port", s.flag)
			}
		}
		if cfg.size < 2 {
			return usagef("-size %d: the comparison splits each request in two writes, so it needs at least 2 bytes", cfg.size)
		}
		return nil
	}
	for _, name := range []string{"tls-n", "nagle-n"} {
		if set[name] {
			return usagef("-%s is for the loopback comparison, not with -target", name)
		}
	}
	if cfg.insecure && !cfg.tls {
		return usagef("-insecure needs -tls")
	}
	host, port, err := net.SplitHostPort(cfg.target)
	if err != nil {
		return usagef("-target %q: want host:port: %w", cfg.target, err)
	}
	if host == "" {
		return usagef("-target %q: no host", cfg.target)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return usagef("-target %q: port %q is not a number from 1 to 65535", cfg.target, port)
	}
	return nil
}

// run is the whole program: main is a thin wrapper around it so that tests
// can run it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var plot *plotFile
	if cfg.plot != "" {
		if plot, err = createPlot(cfg.plot); err != nil {
			return usagef("-plot: %w", err)
		}
		defer plot.discard() // a failed or interrupted run leaves the destination as it was
	}
	var steps int
	if cfg.target == "" {
		steps = compareSteps
	} else {
		steps = targetSteps(cfg)
	}
	p := &prober{timeout: cfg.timeout, rate: cfg.rate, warmup: cfg.warmup, progress: newProgress(stderr, cfg.quiet, steps)}
	rep := &report{cfg: cfg, started: time.Now()}
	if cfg.target == "" {
		rep.comparisons, err = runCompare(ctx, cfg, p)
	} else {
		rep.target, err = runTarget(ctx, cfg, p)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		return err
	}
	rep.elapsed = time.Since(rep.started)
	if plot != nil {
		if err := plot.commit(rep.allSeries()); err != nil {
			return err
		}
	}
	if cfg.json {
		return rep.writeJSON(stdout)
	}
	return rep.writeText(stdout)
}
