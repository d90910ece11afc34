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
func runCompare(ctx context.Context, cfg *config, p *prober) ([]*comparison, error) {
	srvTLS, cliTLS, err := tlstest.Configs()
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	plain, err := echo.Start(ctx, cfg.size, nil)
	if err != nil {
		return nil, fmt.Errorf("start loopback echo server: %w", err)
	}
	defer plain.Close()
	secure, err := echo.Start(ctx, cfg.size, srvTLS)
	if err != nil {
		return nil, fmt.Errorf("start loopback TLS echo server: %w", err)
	}
	defer secure.Close()
	dns, err := dnstest.Start()
	if err != nil {
		return nil, fmt.Errorf("start loopback DNS server: %w", err)
	}
	defer dns.Close()
	dns.SetAddrs(dnsName, time.Hour, loopback4)

	req, resp := payload(cfg.size), make([]byte, cfg.size)
	d, err := dialer.New(dialer.Timeout(cfg.timeout))
	if err != nil {
		return nil, err
	}
	var out []*comparison

	// 1. A fresh TCP connection per request versus a pooled one.
	fresh, err := p.measure(ctx, "tcp_fresh", "fresh TCP connection per request", cfg.n, freshExchange(d.DialContext, plain.Addr(), req, resp))
	if err != nil {
		return nil, err
	}
	pooled, err := measurePooled(ctx, p, "tcp_pooled", "pooled TCP connection", cfg, d.DialContext, plain.Addr(), req, resp)
	if err != nil {
		return nil, err
	}
	out = append(out, &comparison{name: "tcp", title: "Connection reuse: fresh TCP connection per request vs pooled",
		baseline: fresh, improved: pooled,
		note: fmt.Sprintf("each sample: %d-byte request, %d-byte echo; fresh = dial + exchange + close, pooled = pool.ConnPool Get + exchange + Close", cfg.size, cfg.size)})

	// 2. The same with TLS, where a new connection costs a handshake.
	tlsDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(raw, cliTLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		return tc, nil
	}
	freshTLS, err := p.measure(ctx, "tls_fresh", "fresh TLS connection per request", cfg.tlsN, freshExchange(tlsDial, secure.Addr(), req, resp))
	if err != nil {
		return nil, err
	}
	pooledTLS, err := measurePooled(ctx, p, "tls_pooled", "pooled TLS connection", cfg, tlsDial, secure.Addr(), req, resp)
	if err != nil {
		return nil, err
	}
	out = append(out, &comparison{name: "tls", title: "TLS reuse: fresh TLS 1.3 connection per request vs pooled",
		baseline: freshTLS, improved: pooledTLS,
		note: "fresh = TCP connect + full TLS 1.3 handshake (ECDSA P-256, no session resumption) + exchange + close"})

	// 3. Nagle's algorithm on a write-write-read exchange.
	nagleOn, err := measureSplit(ctx, p, "nagle_on", "Nagle on (TCP_NODELAY=false)", cfg.nagleN, cfg, false, plain.Addr(), req, resp)
	if err != nil {
		return nil, err
	}
	nagleOff, err := measureSplit(ctx, p, "nagle_off", "Nagle off (TCP_NODELAY=true, Go's default)", cfg.n, cfg, true, plain.Addr(), req, resp)
	if err != nil {
		return nil, err
	}
	out = append(out, &comparison{name: "nagle", title: "Nagle's algorithm on a write-write-read exchange: on vs off",
		baseline: nagleOn, improved: nagleOff,
		note: fmt.Sprintf("one connection each; the request goes out as two writes (%d + %d bytes), then the echo is read; Nagle on holds the second write until the first is ACKed, and the server delays that ACK (only %d samples: each costs a delayed-ACK timeout)", splitHeader(cfg.size), cfg.size-splitHeader(cfg.size), cfg.nagleN)})

	// 4. A DNS lookup on every dial versus the cache.
	target := net.JoinHostPort(dnsName, portOf(plain.Addr()))
	direct, err := dialer.New(dialer.Timeout(cfg.timeout), dialer.Resolver(dns.Resolver()))
	if err != nil {
		return nil, err
	}
	dns.ResetCounters()
	lookup, err := p.measure(ctx, "dns_lookup", "DNS lookup on every dial", cfg.n, dialAndClose(direct, target))
	if err != nil {
		return nil, err
	}
	queriesDirect := dns.TotalQueries()
	cache, err := dnscache.New(dnscache.System(dns.Resolver()), dnscache.TTL(time.Hour))
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	cached, err := dialer.New(dialer.Timeout(cfg.timeout), dialer.Resolver(cache))
	if err != nil {
		return nil, err
	}
	dns.ResetCounters()
	hit, err := p.measure(ctx, "dns_cached", "DNS cache (dnscache)", cfg.n, dialAndClose(cached, target))
	if err != nil {
		return nil, err
	}
	out = append(out, &comparison{name: "dns", title: "Name resolution: DNS lookup on every dial vs the DNS cache",
		baseline: lookup, improved: hit, dnsDirect: queriesDirect, dnsCached: dns.TotalQueries(),
		note: fmt.Sprintf("each sample: dial %s (resolve + connect) and close, against an embedded DNS server on %v", target, dns.Addr())})
	return out, nil
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
