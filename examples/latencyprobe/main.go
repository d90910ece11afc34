// Command latencyprobe measures what the latency techniques of nettune buy
// on a realistic network path, how close each comes to what physics
// allows, and which call gives it; and how a real server answers.
//
// With no arguments it starts a netlab lab (three network namespaces: a
// client, a server and a DNS resolver) on netlab's CrossContinent path
// (30 ms each way, so a 60 ms RTT, 1 ms jitter, 0.01% loss, 100 Mbit/s;
// the resolver 20 ms away) and measures each technique without and with:
// connection reuse (pool), TLS (full, resumed, pooled), TCP Fast Open,
// Nagle's algorithm turned back on, the DNS cache (and serve-stale through
// a resolver outage), dead-peer detection with TCP_USER_TIMEOUT, socket
// buffers against the bandwidth-delay product, cubic against bbr on a
// lossy path, Happy Eyeballs past a blackholed cached address (the
// dialer's racing attempts make their sockets in the client host through
// dialer.RunAttempt), a burst of connects against a small and an adequate listen backlog, and
// HTTP/2 against HTTP/1.1 under concurrent requests. It prints a summary first: p50 and p99 without and with,
// the saving per request and in round trips, the floor (round trips × RTT,
// or the link's rate), how close "with" gets, and the call or sysctl that
// gives it; then what this host would do with those settings (sockopt
// preflight), then a section per technique (histograms with -hist). A
// technique that cannot run is listed with the reason.
//
//	go run ./examples/latencyprobe
//
// The lab needs root (or CAP_SYS_ADMIN); where it cannot start, the run
// falls back to loopback, and one line says why and how to get the lab.
// -preset picks another netlab path (lan, same-region, cross-continent,
// intercontinental, lossy-mobile); -rtt, -loss, -bandwidth and -jitter
// change the preset's figures (-rate is the open-loop request rate, so the
// link's rate is -bandwidth); -loopback skips the lab; -techniques pool,tfo
// measures only those. The default run takes under a minute.
//
// With -target host:port it measures connect time and request round trips
// against that server, with socket options from flags, and prints what the
// kernel actually applied (sockopt.Verify), what this host will do with the
// options (sockopt.System.ExplainFor) and the kernel's own RTT (TCP_INFO).
// The request writes -size bytes and reads the same number back, so the
// target must echo; use -connect-only for servers that do not. Shortcuts
// set one option each: -rcvbuf 262144, -congestion bbr, …, and the
// switches -nodelay, -quickack, -fastopen and -mptcp (-nodelay=false turns
// Nagle's algorithm on). With -tls a first handshake checks that the
// target speaks TLS.
//
//	go run ./examples/latencyprobe -target 127.0.0.1:7 -sockopt TCP_USER_TIMEOUT=5s -rcvbuf 262144 -nodelay
//
// -json prints the results as JSON on stdout, -plot FILE.svg writes a
// percentile plot. The plot is written beside FILE.svg under a temporary
// name and renamed to it only when the run succeeds: a failed or interrupted
// run leaves FILE.svg as it was. FILE.svg must be a regular file or not
// exist yet; a device such as /dev/null, a fifo or a directory is refused
// before measuring; on success one line on stderr says where the plot was
// written. Progress goes to stderr. Exit status: 0 on success, 2 for bad
// flags or options (the message names the flag, the value and what the
// flag takes), 1 when the measurement fails (such as an unreachable
// target).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/netlab"
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

	// The path of the comparison run.
	loopback   bool           // -loopback: do not try the lab
	preset     string         // -preset
	profile    netlab.Profile // the preset with -rtt, -loss, -bandwidth and -jitter applied
	pathGiven  bool           // a path flag was given: the lab is required
	techniques []string       // -techniques, in the program's order
	given      map[string]bool
}

// about is the paragraph of -h.
const about = `Without -target: measures what each latency technique buys, without and with,
on an emulated cross-continent path (netlab: needs root) or, where the lab
cannot run, on loopback, and how close each comes to what physics allows.
With -target: measures connect time and round trips against a server that
echoes, with the socket options given, and shows what the kernel applied.`

// shortcuts are flags that set one socket option each: the flag, the
// option, the flag's value in -h (none: a switch), what it takes, and its
// help.
var shortcuts = []struct{ flag, option, arg, want, help string }{
	{"nodelay", "TCP_NODELAY", "", "true or false", "set TCP_NODELAY (-nodelay=false turns Nagle's algorithm on)"},
	{"quickack", "TCP_QUICKACK", "", "true or false", "set TCP_QUICKACK"},
	{"rcvbuf", "SO_RCVBUF", "bytes", "a number of bytes", "SO_RCVBUF (the kernel doubles it and clamps at 2*rmem_max)"},
	{"sndbuf", "SO_SNDBUF", "bytes", "a number of bytes", "SO_SNDBUF"},
	{"congestion", "TCP_CONGESTION", "name", "a congestion control such as cubic or bbr", "TCP_CONGESTION, such as cubic or bbr"},
	{"user-timeout", "TCP_USER_TIMEOUT", "duration", "a duration such as 5s, 0 or more", "TCP_USER_TIMEOUT"},
	{"tos", "IP_TOS", "byte", "a byte, decimal or 0x hex such as 0xb8", "IP_TOS / IPV6_TCLASS"},
	{"mss", "TCP_MAXSEG", "bytes", "a number of bytes", "TCP_MAXSEG"},
	{"notsent-lowat", "TCP_NOTSENT_LOWAT", "bytes", "a number of bytes", "TCP_NOTSENT_LOWAT"},
	{"fastopen", "TCP_FASTOPEN_CONNECT", "", "true or false", "TCP Fast Open on the client side (TCP_FASTOPEN_CONNECT)"},
}

// targetOnly are the flags that make sense only with -target, besides the
// shortcuts.
var targetOnly = []string{"tls", "insecure", "connect-only", "sockopt", "mptcp"}

// pathFlags are the flags that shape the lab's path.
var pathFlags = []string{"preset", "rtt", "loss", "bandwidth", "jitter"}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	f := cli.NewFlagSet("latencyprobe", stderr, about, "[flags]", "-target host:port [flags]")
	f.DialAddr(&cfg.target, "target", "", "measure this `host:port` instead of the built-in comparison")
	f.Bool(&cfg.tls, "tls", false, "with -target: speak TLS (the handshake is measured apart)")
	f.Bool(&cfg.insecure, "insecure", false, "with -tls: do not verify the server's certificate")
	f.Bool(&cfg.connectOnly, "connect-only", false, "with -target: measure connect time only (for servers that do not echo)")
	f.Int(&cfg.n, "n", 5000, 1, math.MaxInt, "samples per measurement (in the lab, when not given: 30)")
	f.Int(&cfg.tlsN, "tls-n", 1000, 1, math.MaxInt, "samples of the fresh-TLS-connection measurements (each is a full handshake; in the lab, when not given: 15)")
	f.Int(&cfg.nagleN, "nagle-n", 40, 1, math.MaxInt, "samples of the Nagle-on measurement (each costs a delayed-ACK timeout, ~40ms; in the lab, when not given: 8)")
	f.Int(&cfg.warmup, "warmup", 20, 0, math.MaxInt, "unrecorded calls before each measurement (in the lab, when not given: 2)")
	f.Float(&cfg.rate, "rate", 0, "requests per second, a positive number up to 1e9 (0: a closed loop)",
		func(r float64) bool { return r >= 0 && r <= 1e9 },
		"open loop: start requests at this `rate` per second, latency counted from the intended start (0: closed loop)")
	f.Duration(&cfg.timeout, "timeout", 5*time.Second, 1, "limit for each sample (dial, handshake or exchange)")
	f.Int(&cfg.size, "size", 64, 1, 1<<20, "request size in `bytes`; the server echoes the same number back")
	f.Bool(&cfg.json, "json", false, "print the results as JSON on stdout")
	f.String(&cfg.plot, "plot", "", "write a percentile plot (latency vs percentile, log scales) to this SVG `file`, a regular file created or replaced only when the run succeeds")
	f.Bool(&cfg.quiet, "quiet", false, "no progress on stderr")
	f.Bool(&cfg.hist, "hist", false, "print a text histogram of each measurement")
	cfg.preset = defaultPreset
	f.Func("preset", "name", "one of "+presetNames(), "the lab's path: "+presetNames()+" (default "+defaultPreset+", netlab's CrossContinent)", func(v string) error {
		if _, ok := presetProfile(v); !ok {
			return errors.New("no such preset")
		}
		cfg.preset = v
		return nil
	})
	var rtt, jitter time.Duration
	var loss float64
	var bandwidth int64
	f.Duration(&rtt, "rtt", 0, 0, "the lab path's round-trip time (half each way), replacing the preset's")
	f.Duration(&jitter, "jitter", 0, 0, "the lab path's jitter each way, replacing the preset's")
	f.Float(&loss, "loss", 0, "a probability from 0 to 1", func(v float64) bool { return v >= 0 && v <= 1 },
		"the lab path's random loss each way, a probability (0.001 is 0.1%), replacing the preset's")
	f.Func("bandwidth", "bit/s", "bits per second, such as 50M or 1G (0: unlimited)",
		"the lab path's rate each way, such as 50M (-rate is the request rate of an open loop)", func(v string) (err error) {
			bandwidth, err = parseBandwidth(v)
			return err
		})
	f.Bool(&cfg.loopback, "loopback", false, "measure on loopback even where the lab could run")
	techniques := strings.Join(techniqueNames, ",")
	f.Func("techniques", "list", "a comma-separated list of "+techniques, "measure only these techniques, such as pool,tfo (default all: "+techniques+")", func(v string) (err error) {
		cfg.techniques, err = parseTechniques(v)
		return err
	})
	f.Sockopts((*cli.Sockopts)(&cfg.sockopts), "sockopt", "with -target: set a socket option, as sockopt prints it (TCP_USER_TIMEOUT=5s, SO_RCVBUF=262144, IP_TOS=0xb8); repeatable")
	short := make([]sockopt.Option, len(shortcuts)) // in the order of shortcuts, after -sockopt's
	for i, s := range shortcuts {
		f.Func(s.flag, s.arg, s.want, "with -target: "+s.help, func(v string) (err error) {
			short[i], err = sockopt.Parse(s.option + "=" + v)
			return err
		})
	}
	var mptcp bool
	f.Bool(&mptcp, "mptcp", false, "with -target: Multipath TCP on (-mptcp) or off (-mptcp=false); not given, the dialer's default")
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	for _, o := range short {
		if o != nil {
			cfg.sockopts = append(cfg.sockopts, o)
		}
	}
	if f.Given("mptcp") {
		cfg.mptcp = &mptcp
	}
	cfg.given = map[string]bool{}
	for _, name := range []string{"n", "tls-n", "nagle-n", "warmup"} {
		cfg.given[name] = f.Given(name)
	}
	if cfg.techniques == nil {
		cfg.techniques = techniqueNames
	}
	cfg.techniques = sorted(cfg.techniques)
	cfg.profile, _ = presetProfile(cfg.preset)
	if f.Given("rtt") {
		cfg.profile.Delay = rtt / 2
		cfg.profile.Jitter = min(cfg.profile.Jitter, cfg.profile.Delay)
	}
	if f.Given("jitter") {
		cfg.profile.Jitter = jitter
	}
	if f.Given("loss") {
		cfg.profile.Loss = loss
	}
	if f.Given("bandwidth") {
		cfg.profile.Rate = bandwidth
		cfg.profile.QueueBytes, cfg.profile.QueuePackets = 0, 0
	}
	for _, name := range pathFlags {
		cfg.pathGiven = cfg.pathGiven || f.Given(name)
	}
	if err := cfg.profile.Validate(); err != nil {
		return nil, usagef("the path: %w", err)
	}
	return cfg, cfg.validate(f)
}

// validate checks what involves more than one flag; each flag checked its
// own value.
func (cfg *config) validate(f *cli.FlagSet) error {
	if cfg.target == "" {
		for _, name := range targetOnly {
			if f.Given(name) {
				return usagef("-%s needs -target host:port", name)
			}
		}
		for _, s := range shortcuts {
			if f.Given(s.flag) {
				return usagef("-%s needs -target host:port", s.flag)
			}
		}
		if cfg.loopback && cfg.pathGiven {
			return usagef("-loopback and the path flags (-%s) exclude each other", strings.Join(pathFlags, ", -"))
		}
		if cfg.size < 2 {
			return &cli.UsageError{Err: &cli.FlagError{Flag: "size", Value: strconv.Itoa(cfg.size),
				Want: "at least 2 bytes for the loopback comparison, which splits each request in two writes"}}
		}
		return nil
	}
	for _, name := range append([]string{"tls-n", "nagle-n", "loopback", "techniques"}, pathFlags...) {
		if f.Given(name) {
			return usagef("-%s is for the loopback comparison, not with -target", name)
		}
	}
	if cfg.insecure && !cfg.tls {
		return usagef("-insecure needs -tls")
	}
	return nil
}

// run is the whole program: main is a thin wrapper around it so that tests
// can run it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWith(ctx, args, stdout, stderr, netlab.New)
}

// labDefaults sets the sample counts not given on the command line to
// those of a lab run, where each sample costs round trips of tens of
// milliseconds: enough for a p50 and a rough p99 within the minute the
// default run takes.
func (cfg *config) labDefaults() {
	for _, d := range []struct {
		flag string
		p    *int
		n    int
	}{{"n", &cfg.n, 30}, {"tls-n", &cfg.tlsN, 15}, {"nagle-n", &cfg.nagleN, 8}, {"warmup", &cfg.warmup, 2}} {
		if !cfg.given[d.flag] {
			*d.p = d.n
		}
	}
}

// runWith is run with the lab's constructor given, so that a test can
// make the lab unavailable.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, newLab func(...netlab.Option) (*netlab.Lab, error)) (err error) {
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
	rep := &report{cfg: cfg, started: time.Now()}
	var p *prober
	if cfg.target == "" {
		var pa *path
		if pa, err = openPath(cfg, newLab); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, pa.close()) }()
		rep.path = pa
		if pa.lab != nil {
			cfg.labDefaults()
		}
		p = &prober{timeout: cfg.timeout, rate: cfg.rate, warmup: cfg.warmup, progress: newProgress(stderr, cfg.quiet, 0)}
		if !cfg.quiet {
			fmt.Fprintf(stderr, "latencyprobe: path: %s\n", pa.describe())
		}
		rep.comparisons, rep.emulation, err = runCompare(ctx, cfg, p, pa)
	} else {
		p = &prober{timeout: cfg.timeout, rate: cfg.rate, warmup: cfg.warmup, progress: newProgress(stderr, cfg.quiet, targetSteps(cfg))}
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
		// On stderr, with -quiet too: stdout may be the JSON document.
		fmt.Fprintf(stderr, "latencyprobe: plot written to %s\n", cfg.plot)
	}
	if cfg.json {
		return rep.writeJSON(stdout)
	}
	return rep.writeText(stdout)
}
