package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/internal/dnstest"
	"github.com/nettune/nettune/internal/tlstest"
	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/pool"
	"github.com/nettune/nettune/sockopt"
)

// side is one side of a comparison: a latency series, or a throughput.
type side struct {
	label  string
	s      *series // latency; for a throughput side, the one transfer's measured window
	bps    float64 // throughput sides only
	capped bool    // the measurement stopped at a bound: the real figure is larger
}

// comparison is one technique measured without and with.
type comparison struct {
	name     string // pool, tls, … (the JSON name)
	title    string
	without  side
	with     side
	extra    []side        // further variants (TLS resumed, writev, autotuning)
	floor    time.Duration // what physics allows for "with" (0: none stated)
	floorRTT float64       // floor in round trips
	floorBps float64       // for throughput techniques: the link's rate
	how      string        // the nettune call or sysctl that gives "with"
	note     string        // how it was measured
	skipped  string        // why it did not run ("" when it ran)
	detail   []string      // further lines for the section (DNS queries, outage…)
	outage   *outage       // dns only: the resolver outage
}

// outage is how lookups fared while the resolver was down and the cached
// answer had expired.
type outage struct {
	n                         int           // lookups each side
	failedWithout, failedWith int           // without the cache, with serve-stale
	worstWithout, worstWith   time.Duration // the longest lookup each side
}

func (c *comparison) throughput() bool { return c.floorBps > 0 || c.without.bps > 0 }

// speedup is without/with at quantile q (0 when with is 0).
func (c *comparison) speedup(q float64) float64 {
	if c.without.s == nil || c.with.s == nil {
		return 0
	}
	return cli.Speedup(c.without.s.snap, c.with.s.snap, q)
}

// dnsName is the name the embedded DNS server answers for.
const dnsName = "echo.latencyprobe.test"

// bench is what the techniques share: the path, the servers on its server
// host, the TLS identities and the request buffers.
type bench struct {
	cfg       *config
	p         *prober
	path      *path
	plain     *server
	secure    *server     // speaks TLS
	serverTLS *tls.Config // the server's identity
	clientTLS *tls.Config // trusts it
	d         *dialer.Dialer
	req, resp []byte
	fresh     *series // a fresh TCP connection per request, once measured
}

// runCompare measures each technique cfg selects on the path.
//
// The bulk downloads (buffers, congestion) run last, and the relay's
// lateness is read before them: they keep the relay busy, and its
// lateness then says nothing about the latency techniques. The
// comparisons come back in the program's order.
func runCompare(ctx context.Context, cfg *config, p *prober, pa *path) (_ []*comparison, emu *emulation, err error) {
	b, err := startBench(ctx, cfg, p, pa)
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, b.close()) }()
	why := map[string]string{}
	for _, name := range cfg.techniques {
		if why[name] = b.cannot(name); why[name] == "" {
			p.progress.steps += techniqueSteps[name]
		}
	}
	if why["pool"] == "" && why["tfo"] == "" && slices.Contains(cfg.techniques, "pool") && slices.Contains(cfg.techniques, "tfo") {
		p.progress.steps-- // they share the fresh-connection measurement
	}
	bulk := func(name string) bool { return name == "buffers" || name == "congestion" }
	order := slices.Clone(cfg.techniques)
	slices.SortStableFunc(order, func(x, y string) int {
		switch {
		case bulk(x) == bulk(y):
			return 0
		case bulk(x):
			return 1
		}
		return -1
	})
	var out []*comparison
	for _, name := range order {
		if bulk(name) && emu == nil {
			emu = pa.emulation()
		}
		var c *comparison
		if why := why[name]; why != "" {
			c = &comparison{name: name, skipped: why}
		} else {
			c, err = b.run(ctx, name)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		c.title = techniqueTitles[name]
		out = append(out, c)
	}
	if emu == nil {
		emu = pa.emulation()
	}
	slices.SortStableFunc(out, func(x, y *comparison) int {
		return slices.Index(techniqueNames, x.name) - slices.Index(techniqueNames, y.name)
	})
	return out, emu, nil
}

var techniqueTitles = map[string]string{
	"pool":       "Connection reuse: a fresh TCP connection per request vs a pooled one",
	"tls":        "TLS: a full handshake per request vs a resumed session vs a pooled connection",
	"tfo":        "TCP Fast Open: plain connect vs a SYN carrying the request (cookie cached)",
	"nagle":      "Nagle's algorithm, if someone turns it back on: a write-write-read request",
	"dns":        "DNS: a lookup at the resolver's distance on every dial vs a dnscache hit",
	"deadpeer":   "Dead peer: the path blackholes while a request waits for its answer",
	"buffers":    "Socket buffers vs the bandwidth-delay product: one bulk download",
	"congestion": "Congestion control on a lossy path: cubic vs bbr",
	"eyeballs":   "Happy Eyeballs over cached addresses, the first one blackholed",
	"backlog":    "Listen backlog under a burst of connects",
	"http2":      "HTTP/2 multiplexing vs HTTP/1.1 connections",
}

// techniqueSteps is how many measurements each technique takes, for the
// progress line.
var techniqueSteps = map[string]int{"pool": 2, "tls": 3, "tfo": 2, "nagle": 3, "dns": 2, "deadpeer": 1, "buffers": 3, "congestion": 2, "backlog": 2, "http2": 2, "eyeballs": 2}

// cannot says why technique name cannot run on this path, or "".
func (b *bench) cannot(name string) string {
	lab := b.path.lab != nil
	switch name {
	case "tfo":
		if lab {
			return ""
		}
		if sys, err := sockopt.ReadSystem(); err != nil || sys.FastOpen&3 != 3 {
			return "on loopback it needs net.ipv4.tcp_fastopen=3 on this host (client and server bits); the lab sets it per host"
		}
	case "deadpeer":
		if !lab {
			return "needs the lab: loopback cannot blackhole"
		}
	case "buffers", "congestion":
		if !lab {
			return "needs the lab: loopback has no link rate, delay or loss"
		}
		if b.path.profile.Rate == 0 {
			return "the path has no rate limit (-bandwidth 0): there is no link rate to reach"
		}
		if name == "buffers" && b.path.rtt() < time.Millisecond {
			return "the path's RTT is under 1 ms: every buffer covers its bandwidth-delay product"
		}
	case "eyeballs":
		if runtime.GOOS != "linux" {
			return "needs Linux: its blackholed address is a listener whose accept queue is full, which needs listener.Backlog"
		}
	}
	return ""
}

func (b *bench) run(ctx context.Context, name string) (*comparison, error) {
	switch name {
	case "pool":
		return b.connReuse(ctx)
	case "tls":
		return b.tlsReuse(ctx)
	case "tfo":
		return b.fastOpen(ctx)
	case "nagle":
		return b.nagle(ctx)
	case "dns":
		return b.dnsCache(ctx)
	case "deadpeer":
		return b.deadPeer(ctx)
	case "buffers":
		return b.buffers(ctx)
	case "congestion":
		return b.congestion(ctx)
	case "backlog":
		return b.backlog(ctx)
	case "http2":
		return b.http2(ctx)
	case "eyeballs":
		return b.eyeballs(ctx)
	}
	return nil, fmt.Errorf("no such technique %q", name)
}

// startBench starts the echo servers, plain and TLS (with a self-signed
// certificate made now), on the path's server host.
func startBench(ctx context.Context, cfg *config, p *prober, pa *path) (_ *bench, err error) {
	b := &bench{cfg: cfg, p: p, path: pa, req: payload(cfg.size), resp: make([]byte, cfg.size)}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.close())
		}
	}()
	if b.serverTLS, b.clientTLS, err = tlstest.Configs(); err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	b.clientTLS.ServerName = "localhost" // the certificate's name; lab addresses are not in it
	lc, err := listener.New()
	if err != nil {
		return nil, err
	}
	for _, s := range []**server{&b.plain, &b.secure} {
		ln, err := pa.server.listen(ctx, lc)
		if err != nil {
			return nil, fmt.Errorf("listen on %v: %w", pa.server.addr, err)
		}
		var tcfg *tls.Config
		if s == &b.secure {
			tcfg = b.serverTLS
		}
		*s = serve(ln, tcfg, echoHandler(cfg.size))
	}
	if b.d, err = dialer.New(dialer.Timeout(cfg.timeout)); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *bench) close() error {
	var errs []error
	for _, s := range []*server{b.plain, b.secure} {
		if s != nil {
			errs = append(errs, s.close())
		}
	}
	return errors.Join(errs...)
}

// dial is the bench dialer's DialContext on the client host.
func (b *bench) dial() func(ctx context.Context, network, address string) (net.Conn, error) {
	return b.path.client.dialFunc(b.d)
}

// freshTCP measures a fresh TCP connection per request, once: pool and
// tfo share it.
func (b *bench) freshTCP(ctx context.Context) (*series, error) {
	if b.fresh != nil {
		return b.fresh, nil
	}
	s, err := b.p.measure(ctx, "tcp_fresh", "fresh TCP connection per request", b.cfg.n, freshExchange(b.dial(), b.plain.addr(), b.req, b.resp))
	b.fresh = s
	return s, err
}

// connReuse measures a fresh TCP connection per request against a pooled
// one.
func (b *bench) connReuse(ctx context.Context) (*comparison, error) {
	fresh, err := b.freshTCP(ctx)
	if err != nil {
		return nil, err
	}
	pooled, err := measurePooled(ctx, b.p, "tcp_pooled", "pooled TCP connection", b.cfg, b.dial(), b.plain.addr(), b.req, b.resp)
	if err != nil {
		return nil, err
	}
	return &comparison{name: "pool",
		without: side{label: "fresh connection", s: fresh}, with: side{label: "pooled", s: pooled},
		floorRTT: 1, how: "pool.NewConnPool(d.DialContext, \"tcp\", addr)",
		note: fmt.Sprintf("each sample: a %d-byte request and its echo; fresh = connect (1 RTT) + exchange (1 RTT) + close, pooled = pool.ConnPool Get + exchange + Close", b.cfg.size)}, nil
}

// tlsReuse measures a full TLS 1.3 handshake per request, a resumed one,
// and a pooled TLS connection.
func (b *bench) tlsReuse(ctx context.Context) (*comparison, error) {
	dialTLS := func(cfg *tls.Config, resumed *int) func(ctx context.Context, network, addr string) (net.Conn, error) {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := b.dial()(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, errors.Join(err, raw.Close())
			}
			if resumed != nil && tc.ConnectionState().DidResume {
				*resumed++
			}
			return tc, nil
		}
	}
	full, err := b.p.measure(ctx, "tls_full", "fresh TLS connection, full handshake", b.cfg.tlsN,
		freshExchange(dialTLS(b.clientTLS, nil), b.secure.addr(), b.req, b.resp))
	if err != nil {
		return nil, err
	}
	resumeCfg := b.clientTLS.Clone()
	resumeCfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	var resumedN int
	resumed, err := b.p.measure(ctx, "tls_resumed", "fresh TLS connection, resumed session", b.cfg.tlsN,
		freshExchange(dialTLS(resumeCfg, &resumedN), b.secure.addr(), b.req, b.resp))
	if err != nil {
		return nil, err
	}
	pooled, err := measurePooled(ctx, b.p, "tls_pooled", "pooled TLS connection", b.cfg, dialTLS(b.clientTLS, nil), b.secure.addr(), b.req, b.resp)
	if err != nil {
		return nil, err
	}
	return &comparison{name: "tls",
		without: side{label: "full handshake", s: full}, with: side{label: "pooled", s: pooled},
		extra:    []side{{label: "resumed session", s: resumed}},
		floorRTT: 1, how: "pool.NewConnPool(tlsDial, \"tcp\", addr); tls.Config.ClientSessionCache for the connections you must make",
		note: "fresh = connect (1 RTT) + TLS 1.3 handshake (1 RTT) + exchange (1 RTT) + close. A resumed TLS 1.3 session " +
			"skips the certificate but not the round trip (Go sends no 0-RTT data): it saves CPU, not distance.",
		detail: []string{fmt.Sprintf("sessions resumed: %d of the resumed side's recorded and warm-up handshakes", resumedN)}}, nil
}

// fastOpen measures a fresh connection's first request with TCP Fast Open
// (the cookie cached by the warm-up) against a plain connect.
func (b *bench) fastOpen(ctx context.Context) (_ *comparison, err error) {
	plain, err := b.freshTCP(ctx)
	if err != nil {
		return nil, err
	}
	lc, err := listener.New(listener.FastOpen(true))
	if err != nil {
		return nil, err
	}
	ln, err := b.path.server.listen(ctx, lc)
	if err != nil {
		return nil, fmt.Errorf("listen with TCP Fast Open: %w", err)
	}
	srv := serve(ln, nil, echoHandler(b.cfg.size))
	defer func() { err = errors.Join(err, srv.close()) }()
	d, err := dialer.New(dialer.Timeout(b.cfg.timeout), dialer.FastOpen(true))
	if err != nil {
		return nil, err
	}
	before, _ := tfoActive(b.path.client)
	// The warm-up's first dial fetches the cookie; the later ones use it.
	tfo, err := b.p.measure(ctx, "tfo", "fresh connection with TCP Fast Open", b.cfg.n, freshExchange(b.path.client.dialFunc(d), srv.addr(), b.req, b.resp))
	if err != nil {
		return nil, err
	}
	c := &comparison{name: "tfo",
		without: side{label: "plain connect", s: plain}, with: side{label: "Fast Open", s: tfo},
		floorRTT: 1, how: "dialer.FastOpen(true) + listener.FastOpen(true); sysctl net.ipv4.tcp_fastopen=3 (client and server bits)",
		note: "each sample: connect, a request and its echo, close. With a cookie the request rides on the SYN: " +
			"one round trip instead of two. Only idempotent first requests are safe (SYN data may be replayed)."}
	if after, err := tfoActive(b.path.client); err == nil {
		c.detail = append(c.detail, fmt.Sprintf("SYNs that carried data (TcpExt TCPFastOpenActive): %d of %d recorded and warm-up connects",
			after-before, tfo.stats.Samples+b.cfg.warmup))
	}
	return c, nil
}

// nagle measures a write-write-read request with Nagle's algorithm on,
// off (Go's default) and with one writev.
func (b *bench) nagle(ctx context.Context) (*comparison, error) {
	on, err := b.measureSplit(ctx, "nagle_on", "Nagle on (TCP_NODELAY=false), two writes", b.cfg.nagleN, false, false)
	if err != nil {
		return nil, err
	}
	off, err := b.measureSplit(ctx, "nagle_off", "Nagle off (Go's default), two writes", b.cfg.n, true, false)
	if err != nil {
		return nil, err
	}
	writev, err := b.measureSplit(ctx, "nagle_writev", "Nagle on, one writev (net.Buffers)", b.cfg.n, false, true)
	if err != nil {
		return nil, err
	}
	hdr := splitHeader(b.cfg.size)
	return &comparison{name: "nagle",
		without: side{label: "Nagle on", s: on}, with: side{label: "Go's default", s: off},
		extra:    []side{{label: "Nagle on, writev", s: writev}},
		floorRTT: 1, how: "nothing: Go sets TCP_NODELAY; keep it (never sockopt.NoDelay(false)), or write a request in one call",
		note: fmt.Sprintf("one connection each; the request goes out as two writes (%d + %d bytes), then the echo is read. "+
			"Nagle on holds the second write until the first is ACKed, and the server delays that ACK. "+
			"This is what turning Nagle back on costs, not a win to chase.", hdr, b.cfg.size-hdr)}, nil
}

func (b *bench) measureSplit(ctx context.Context, name, title string, n int, noDelay, writev bool) (*series, error) {
	d, err := dialer.New(dialer.Timeout(b.cfg.timeout), dialer.Sockopt(sockopt.NoDelay(noDelay)))
	if err != nil {
		return nil, err
	}
	c, err := b.path.client.dialFunc(d)(ctx, "tcp", b.plain.addr())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// Make sure the kernel holds the setting being compared.
	if sc, ok := c.(syscall.Conn); ok {
		rep, err := sockopt.Verify(sc, sockopt.NoDelay(noDelay))
		if err != nil {
			return nil, err
		}
		if !rep.OK() {
			return nil, fmt.Errorf("%s: the kernel does not hold the setting:\n%v", title, rep)
		}
	}
	hdr := splitHeader(len(b.req))
	p := b.p
	if !noDelay && !writev {
		// Every Nagle-on exchange costs a delayed-ACK timeout: warm up less.
		q := *p
		q.warmup = min(q.warmup, 2)
		p = &q
	}
	return p.measure(ctx, name, title, n, func(ctx context.Context) error {
		if writev {
			return writevExchange(ctx, c, hdr, b.req, b.resp)
		}
		return splitExchange(ctx, c, hdr, b.req, b.resp)
	})
}

// splitHeader is the size of the first of the two writes.
func splitHeader(size int) int { return min(8, size/2) }

// freshExchange dials addr, makes one exchange and closes the connection.
func freshExchange(dial func(ctx context.Context, network, address string) (net.Conn, error),
	addr string, req, resp []byte) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := dial(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		err = exchange(ctx, c, req, resp)
		return errors.Join(err, c.Close())
	}
}

func measurePooled(ctx context.Context, p *prober, name, title string, cfg *config,
	dial func(ctx context.Context, network, address string) (net.Conn, error), addr string, req, resp []byte) (*series, error) {
	cp, err := pool.NewConnPool(dial, "tcp", addr, pool.MaxSize(4), pool.DialTimeout(cfg.timeout))
	if err != nil {
		return nil, err
	}
	defer cp.Close()
	return p.measure(ctx, name, title, cfg.n, func(ctx context.Context) error {
		c, err := cp.Get(ctx)
		if err != nil {
			return err
		}
		err = exchange(ctx, c, req, resp)
		// A failed exchange marks c broken: Close then discards it.
		return errors.Join(err, c.Close())
	})
}

func dialAndClose(d *dialer.Dialer, addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// lookupThenDial resolves dnsName with lookup and dials the first address
// at port: a dial by name, made of its two halves so that the connect
// runs on the client host.
func (b *bench) lookupThenDial(lookup func(ctx context.Context, network, host string) ([]netip.Addr, error), port uint16) func(context.Context) error {
	dial := b.dial()
	return func(ctx context.Context) error {
		addrs, err := lookup(ctx, "ip4", dnsName)
		if err != nil {
			return err
		}
		if len(addrs) == 0 {
			return fmt.Errorf("no address for %s", dnsName)
		}
		c, err := dial(ctx, "tcp", netip.AddrPortFrom(addrs[0], port).String())
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// startDNS starts the embedded DNS server, answering dnsName with the
// server host's address, and returns a resolver that reaches it from the
// client host: on loopback directly, in the lab through a forwarder on
// the resolver host, at the resolver's distance.
func (b *bench) startDNS() (srv *dnstest.Server, r *net.Resolver, stop func() error, err error) {
	if srv, err = dnstest.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("start the DNS server: %w", err)
	}
	srv.SetAddrs(dnsName, time.Hour, b.path.server.addr)
	if b.path.lab == nil {
		return srv, srv.Resolver(), srv.Close, nil
	}
	fwd, err := startForwarder(b.path.resolv, srv.Addr())
	if err != nil {
		return nil, nil, nil, errors.Join(err, srv.Close())
	}
	client := b.path.client
	r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var c net.Conn
		err := client.run(func() error {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "udp", fwd.addr())
			c = conn
			return err
		})
		return c, err
	}}
	return srv, r, func() error { return errors.Join(fwd.close(), srv.Close()) }, nil
}

// port returns the port of a host:port.
func port(addr string) uint16 {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return 0
	}
	return ap.Port()
}

// countFailures makes n calls of f, each within timeout, and counts those
// that failed and the longest call: the outage check.
func countFailures(ctx context.Context, n int, timeout time.Duration, f func(context.Context) error) (failed int, worst time.Duration) {
	for range n {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		if f(ctx) != nil {
			failed++
		}
		worst = max(worst, time.Since(start))
		cancel()
	}
	return failed, worst
}

// sorted returns the techniques cfg names in the program's order.
func sorted(names []string) []string {
	out := slices.Clone(names)
	slices.SortFunc(out, func(a, b string) int { return slices.Index(techniqueNames, a) - slices.Index(techniqueNames, b) })
	return out
}
