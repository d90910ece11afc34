package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/nettune/nettune/internal/tlstest"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/examples/internal/echo"
	"github.com/nettune/nettune/internal/dnstest"
	"github.com/nettune/nettune/pool"
	"github.com/nettune/nettune/sockopt"
)

// comparison is one technique measured against its baseline.
type comparison struct {
	name      string  // stable identifier
	title     string  // what a person reads
	baseline  *series // without the technique
	improved  *series // with it
	note      string  // how it was measured
	dnsDirect int     // DNS queries sent by the baseline (dns comparison only)
	dnsCached int     // DNS queries sent by the cached run
}

// speedup is baseline/improved at quantile q (0 when improved is 0).
func (c *comparison) speedup(q float64) float64 {
	return cli.Speedup(c.baseline.snap, c.improved.snap, q)
}

// dnsName is the name the embedded DNS server answers for.
const dnsName = "echo.latencyprobe.test"

// compareSteps is how many measurements runCompare takes, for progress.
const compareSteps = 8

// runCompare starts the embedded servers and measures, on loopback, what
// each technique buys.
func runCompare(ctx context.Context, cfg *config, p *prober) (_ []*comparison, err error) {
	l, err := startLab(ctx, cfg, p)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, l.close()) }()
	var out []*comparison
	for _, compare := range []func(context.Context) (*comparison, error){l.connReuse, l.tlsReuse, l.nagle, l.dnsCache} {
		c, err := compare(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// lab is what the loopback comparison measures against: the embedded
// servers, a dialer, and the request and response buffers.
type lab struct {
	cfg       *config
	p         *prober
	plain     *echo.Server
	secure    *echo.Server // speaks TLS
	clientTLS *tls.Config  // trusts secure's certificate
	dns       *dnstest.Server
	d         *dialer.Dialer
	req, resp []byte
}

// startLab starts the embedded echo servers, plain and TLS (with a
// self-signed certificate made now), and the DNS server.
func startLab(ctx context.Context, cfg *config, p *prober) (_ *lab, err error) {
	l := &lab{cfg: cfg, p: p, req: payload(cfg.size), resp: make([]byte, cfg.size)}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.close())
		}
	}()
	serverTLS, clientTLS, err := tlstest.Configs()
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	l.clientTLS = clientTLS
	if l.plain, err = echo.Start(ctx, cfg.size, nil); err != nil {
		return nil, fmt.Errorf("start loopback echo server: %w", err)
	}
	if l.secure, err = echo.Start(ctx, cfg.size, serverTLS); err != nil {
		return nil, fmt.Errorf("start loopback TLS echo server: %w", err)
	}
	if l.dns, err = dnstest.Start(); err != nil {
		return nil, fmt.Errorf("start loopback DNS server: %w", err)
	}
	l.dns.SetAddrs(dnsName, time.Hour, loopback4)
	if l.d, err = dialer.New(dialer.Timeout(cfg.timeout)); err != nil {
		return nil, err
	}
	return l, nil
}

// close stops the servers that were started.
func (l *lab) close() error {
	var errs []error
	if l.plain != nil {
		errs = append(errs, l.plain.Close())
	}
	if l.secure != nil {
		errs = append(errs, l.secure.Close())
	}
	if l.dns != nil {
		errs = append(errs, l.dns.Close())
	}
	return errors.Join(errs...)
}

// connReuse measures a fresh TCP connection per request against a pooled
// one.
func (l *lab) connReuse(ctx context.Context) (*comparison, error) {
	fresh, pooled, err := l.reuse(ctx, "tcp", "TCP", l.d.DialContext, l.plain.Addr(), l.cfg.n)
	if err != nil {
		return nil, err
	}
	return &comparison{name: "tcp", title: "Connection reuse: fresh TCP connection per request vs pooled",
		baseline: fresh, improved: pooled,
		note: fmt.Sprintf("each sample: %d-byte request, %d-byte echo; fresh = dial + exchange + close, pooled = pool.ConnPool Get + exchange + Close", l.cfg.size, l.cfg.size)}, nil
}

// tlsReuse is connReuse with TLS, where a new connection costs a
// handshake.
func (l *lab) tlsReuse(ctx context.Context) (*comparison, error) {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := l.d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(raw, l.clientTLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, errors.Join(err, raw.Close())
		}
		return tc, nil
	}
	fresh, pooled, err := l.reuse(ctx, "tls", "TLS", dial, l.secure.Addr(), l.cfg.tlsN)
	if err != nil {
		return nil, err
	}
	return &comparison{name: "tls", title: "TLS reuse: fresh TLS 1.3 connection per request vs pooled",
		baseline: fresh, improved: pooled,
		note: "fresh = TCP connect + full TLS 1.3 handshake (ECDSA P-256, no session resumption) + exchange + close"}, nil
}

// reuse measures n exchanges on a fresh connection each from dial, then
// cfg.n through a pool of connections from dial.
func (l *lab) reuse(ctx context.Context, name, title string, dial func(ctx context.Context, network, address string) (net.Conn, error),
	addr string, n int) (fresh, pooled *series, err error) {
	fresh, err = l.p.measure(ctx, name+"_fresh", "fresh "+title+" connection per request", n, freshExchange(dial, addr, l.req, l.resp))
	if err != nil {
		return nil, nil, err
	}
	pooled, err = measurePooled(ctx, l.p, name+"_pooled", "pooled "+title+" connection", l.cfg, dial, addr, l.req, l.resp)
	return fresh, pooled, err
}

// nagle measures Nagle's algorithm on, then off, on a write-write-read
// exchange.
func (l *lab) nagle(ctx context.Context) (*comparison, error) {
	on, err := measureSplit(ctx, l.p, "nagle_on", "Nagle on (TCP_NODELAY=false)", l.cfg.nagleN, l.cfg, false, l.plain.Addr(), l.req, l.resp)
	if err != nil {
		return nil, err
	}
	off, err := measureSplit(ctx, l.p, "nagle_off", "Nagle off (TCP_NODELAY=true, Go's default)", l.cfg.n, l.cfg, true, l.plain.Addr(), l.req, l.resp)
	if err != nil {
		return nil, err
	}
	hdr := splitHeader(l.cfg.size)
	return &comparison{name: "nagle", title: "Nagle's algorithm on a write-write-read exchange: on vs off",
		baseline: on, improved: off,
		note: fmt.Sprintf("one connection each; the request goes out as two writes (%d + %d bytes), then the echo is read; Nagle on holds the second write until the first is ACKed, and the server delays that ACK (only %d samples: each costs a delayed-ACK timeout)", hdr, l.cfg.size-hdr, l.cfg.nagleN)}, nil
}

// dnsCache measures a DNS lookup on every dial against the DNS cache.
func (l *lab) dnsCache(ctx context.Context) (_ *comparison, err error) {
	target := net.JoinHostPort(dnsName, portOf(l.plain.Addr()))
	lookup, queriesDirect, err := l.dialByName(ctx, "dns_lookup", "DNS lookup on every dial", l.dns.Resolver(), target)
	if err != nil {
		return nil, err
	}
	cache, err := dnscache.New(dnscache.System(l.dns.Resolver()), dnscache.TTL(time.Hour))
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, cache.Close()) }()
	hit, queriesCached, err := l.dialByName(ctx, "dns_cached", "DNS cache (dnscache)", cache, target)
	if err != nil {
		return nil, err
	}
	return &comparison{name: "dns", title: "Name resolution: DNS lookup on every dial vs the DNS cache",
		baseline: lookup, improved: hit, dnsDirect: queriesDirect, dnsCached: queriesCached,
		note: fmt.Sprintf("each sample: dial %s (resolve + connect) and close, against an embedded DNS server on %v", target, l.dns.Addr())}, nil
}

// dialByName measures dialing target, a host name, with r as the
// dialer's resolver, and counts the DNS queries the embedded server
// received meanwhile.
func (l *lab) dialByName(ctx context.Context, name, title string, r dialer.AddrResolver, target string) (*series, int, error) {
	d, err := dialer.New(dialer.Timeout(l.cfg.timeout), dialer.Resolver(r))
	if err != nil {
		return nil, 0, err
	}
	l.dns.ResetCounters()
	s, err := l.p.measure(ctx, name, title, l.cfg.n, dialAndClose(d, target))
	return s, l.dns.TotalQueries(), err
}

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

func measureSplit(ctx context.Context, p *prober, name, title string, n int, cfg *config, noDelay bool, addr string, req, resp []byte) (*series, error) {
	d, err := dialer.New(dialer.Timeout(cfg.timeout), dialer.Sockopt(sockopt.NoDelay(noDelay)))
	if err != nil {
		return nil, err
	}
	c, err := d.DialContext(ctx, "tcp", addr)
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
	hdr := splitHeader(len(req))
	if !noDelay {
		// Every Nagle-on exchange costs a delayed-ACK timeout: warm up less.
		q := *p
		q.warmup = min(q.warmup, 2)
		p = &q
	}
	return p.measure(ctx, name, title, n, func(ctx context.Context) error {
		return splitExchange(ctx, c, hdr, req, resp)
	})
}

// splitHeader is the size of the first of the two writes.
func splitHeader(size int) int { return min(8, size/2) }

func dialAndClose(d *dialer.Dialer, addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return strconv.Quote(addr)
	}
	return port
}
