package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/sockopt"
)

// targetResult is what a run against -target measured.
type targetResult struct {
	addr      string
	dialer    string
	opts      []sockopt.Option
	connect   *series // dial + close
	handshake *series // dial + TLS handshake + close (-tls only)
	rtt       *series // request/response on one connection (nil with -connect-only)
	kernelRTT *series // TCP_INFO smoothed RTT read after each exchange (nil where unsupported)

	tcpInfo    *sockopt.TCPInfo
	tcpInfoErr error
	verify     sockopt.Report
	verifyErr  error
	preflight  sockopt.Findings
	systemErr  error
}

// targetSteps is how many measurements runTarget takes, for progress.
func targetSteps(cfg *config) int {
	n := 1
	if cfg.tls {
		n++
	}
	if !cfg.connectOnly {
		n++
	}
	return n
}

// runTarget measures connect time and request RTT against cfg.target with
// the socket options from the flags, and reads back what the kernel applied.
func runTarget(ctx context.Context, cfg *config, p *prober) (*targetResult, error) {
	dopts := []dialer.Option{dialer.Timeout(cfg.timeout)}
	for _, o := range cfg.sockopts {
		dopts = append(dopts, dialer.Sockopt(o))
	}
	if cfg.mptcp != nil {
		dopts = append(dopts, dialer.MultipathTCP(*cfg.mptcp))
	}
	d, err := dialer.New(dopts...)
	if err != nil {
		return nil, &cli.UsageError{Err: err}
	}
	res := &targetResult{addr: cfg.target, dialer: d.String(), opts: cfg.sockopts}
	if sys, err := sockopt.ReadSystem(); err != nil {
		res.systemErr = err
	} else {
		// The dialer turns Multipath TCP off for TCP-only options unless
		// -mptcp asks for it: tell Explain which socket it will have.
		res.preflight = sys.ExplainFor(sockopt.Dialing, d.NetDialer().MultipathTCP(), cfg.sockopts...)
	}

	res.connect, err = p.measure(ctx, "connect", "connect (dial + close)", cfg.n, dialAndClose(d, cfg.target))
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", cfg.target, err)
	}

	host, _, _ := net.SplitHostPort(cfg.target)
	tlsCfg := &tls.Config{ServerName: host, InsecureSkipVerify: cfg.insecure} //nolint:gosec // -insecure is the user's explicit choice
	dial := func(ctx context.Context) (net.Conn, net.Conn, error) {
		raw, err := d.DialContext(ctx, "tcp", cfg.target)
		if err != nil || !cfg.tls {
			return raw, raw, err
		}
		tc, err := handshakeTLS(ctx, raw, tlsCfg)
		if err != nil {
			return nil, nil, errors.Join(err, raw.Close())
		}
		return tc, raw, nil
	}
	if cfg.tls {
		// One handshake first: a target that does not speak TLS fails
		// it at once, with a hint, instead of failing every sample.
		dctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		c, _, err := dial(dctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", cfg.target, err)
		}
		if err := c.Close(); err != nil {
			return nil, fmt.Errorf("target %s: %w", cfg.target, err)
		}
		res.handshake, err = p.measure(ctx, "tls_handshake", "connect + TLS handshake", cfg.n, func(ctx context.Context) error {
			c, _, err := dial(ctx)
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", cfg.target, err)
		}
	}

	// One connection for the read-back, TCP_INFO and the round trips.
	dctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	c, raw, err := dial(dctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", cfg.target, err)
	}
	defer c.Close()
	if len(cfg.sockopts) > 0 {
		res.verify, res.verifyErr = sockopt.Verify(raw, cfg.sockopts...)
	}

	if !cfg.connectOnly {
		req, resp := payload(cfg.size), make([]byte, cfg.size)
		if err := checkEcho(ctx, c, cfg, req, resp); err != nil {
			return nil, err
		}
		kh, err := latency.New()
		if err != nil {
			return nil, err
		}
		var kerr error
		q := *p
		q.warmup = 0 // checkEcho warmed the connection up
		// After each exchange, outside the measured time, read the
		// kernel's smoothed RTT estimate from TCP_INFO.
		q.after = func() {
			if kerr != nil {
				return
			}
			ti, err := sockopt.ReadTCPInfo(raw)
			if err != nil {
				kerr = err
				return
			}
			kh.Record(ti.RTT)
		}
		res.rtt, err = q.measure(ctx, "rtt", "request/response round trip", cfg.n, func(ctx context.Context) error {
			return exchange(ctx, c, req, resp)
		})
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", cfg.target, err)
		}
		if ks := kh.Snapshot(); ks.Count() > 0 {
			res.kernelRTT = &series{name: "kernel_rtt", title: "kernel smoothed RTT (TCP_INFO, read after each exchange)",
				snap: ks, stats: latency.ProbeResult{Samples: int(ks.Count())}}
		}
	}
	ti, err := sockopt.ReadTCPInfo(raw)
	if err != nil {
		res.tcpInfoErr = err
	} else {
		res.tcpInfo = &ti
	}
	return res, nil
}

// errNoEcho is wrapped by the error of a target that does not echo.
var errNoEcho = errors.New("target does not echo")

// checkEcho sends one request and checks that the same bytes come back, so
// that a server that does not echo gets a clear message instead of a run of
// timeouts.
func checkEcho(ctx context.Context, c net.Conn, cfg *config, req, resp []byte) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	err := exchange(ctx, c, req, resp)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("target %s: %w: no %d-byte answer within %v; for servers that do not echo, use -connect-only", cfg.target, errNoEcho, cfg.size, cfg.timeout)
	case err != nil:
		return fmt.Errorf("target %s: %w: %w; for servers that do not echo, use -connect-only", cfg.target, errNoEcho, err)
	case !bytes.Equal(req, resp):
		return fmt.Errorf("target %s: %w: it answered with other bytes than it was sent; for servers that do not echo, use -connect-only", cfg.target, errNoEcho)
	}
	return nil
}
