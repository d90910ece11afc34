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
	system     *sockopt.System // this host's settings (nil when unreadable: systemErr says why)
	systemErr  error
	advice     []string // what to change for this path
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
	t, err := newTargetRun(cfg, p)
	if err != nil {
		return nil, err
	}
	if err := t.measure(ctx); err != nil {
		return nil, fmt.Errorf("target %s: %w", cfg.target, err)
	}
	// t.res.system is nil when unreadable: the advice says less (the
	// error is in the preflight).
	t.res.advice = targetAdvice(t.res.tcpInfo, t.res.system)
	return t.res, nil
}

// targetRun is what the steps of a run against -target share.
type targetRun struct {
	cfg    *config
	p      *prober
	d      *dialer.Dialer
	tlsCfg *tls.Config // nil without -tls
	res    *targetResult
}

// newTargetRun makes the dialer, with the socket options from the flags
// (a bad option or combination is bad usage), and asks the host what it
// will do with them.
func newTargetRun(cfg *config, p *prober) (*targetRun, error) {
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
	t := &targetRun{cfg: cfg, p: p, d: d, res: &targetResult{addr: cfg.target, dialer: d.String(), opts: cfg.sockopts}}
	if cfg.tls {
		host, _, _ := net.SplitHostPort(cfg.target)
		t.tlsCfg = &tls.Config{ServerName: host, InsecureSkipVerify: cfg.insecure} //nolint:gosec // -insecure is the user's explicit choice
	}
	if sys, err := sockopt.ReadSystem(); err != nil {
		t.res.systemErr = err
	} else {
		t.res.system = sys
		// The dialer turns Multipath TCP off for TCP-only options unless
		// -mptcp asks for it: tell Explain which socket it will have.
		t.res.preflight = sys.ExplainFor(sockopt.Dialing, d.NetDialer().MultipathTCP(), cfg.sockopts...)
	}
	return t, nil
}

// measure takes the measurements in order: connects, handshakes (with
// -tls), then on one connection the read-back of the options, the round
// trips (without -connect-only) and TCP_INFO.
func (t *targetRun) measure(ctx context.Context) (err error) {
	t.res.connect, err = t.p.measure(ctx, "connect", "connect (dial + close)", t.cfg.n, dialAndClose(t.d, t.cfg.target))
	if err != nil {
		return err
	}
	if t.tlsCfg != nil {
		if err := t.measureHandshake(ctx); err != nil {
			return err
		}
	}
	c, raw, err := t.dialOnce(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	if len(t.cfg.sockopts) > 0 {
		t.res.verify, t.res.verifyErr = sockopt.Verify(raw, t.cfg.sockopts...)
	}
	if !t.cfg.connectOnly {
		if err := t.measureRTT(ctx, c, raw); err != nil {
			return err
		}
	}
	if t.res.tcpInfoErr == nil {
		if ti, err := sockopt.ReadTCPInfo(raw); err != nil {
			t.res.tcpInfoErr = err
		} else {
			t.res.tcpInfo = &ti
		}
	}
	return nil
}

// dial connects to the target and, with -tls, runs the handshake; raw is
// the TCP connection under c.
func (t *targetRun) dial(ctx context.Context) (c, raw net.Conn, err error) {
	raw, err = t.d.DialContext(ctx, "tcp", t.cfg.target)
	if err != nil || t.tlsCfg == nil {
		return raw, raw, err
	}
	tc, err := handshakeTLS(ctx, raw, t.tlsCfg)
	if err != nil {
		return nil, nil, errors.Join(err, raw.Close())
	}
	return tc, raw, nil
}

// dialOnce is dial within -timeout.
func (t *targetRun) dialOnce(ctx context.Context) (c, raw net.Conn, err error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.timeout)
	defer cancel()
	return t.dial(ctx)
}

// measureHandshake measures connects with a TLS handshake. One handshake
// comes first: a target that does not speak TLS fails it at once, with a
// hint, instead of failing every sample.
func (t *targetRun) measureHandshake(ctx context.Context) (err error) {
	c, _, err := t.dialOnce(ctx)
	if err != nil {
		return err
	}
	if err := c.Close(); err != nil {
		return err
	}
	t.res.handshake, err = t.p.measure(ctx, "tls_handshake", "connect + TLS handshake", t.cfg.n, func(ctx context.Context) error {
		c, _, err := t.dial(ctx)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return err
}

// measureRTT checks that the target echoes, then measures round trips on
// c and, after each, outside the measured time, reads the kernel's
// smoothed RTT estimate from TCP_INFO on raw.
func (t *targetRun) measureRTT(ctx context.Context, c, raw net.Conn) error {
	req, resp := payload(t.cfg.size), make([]byte, t.cfg.size)
	if err := checkEcho(ctx, c, t.cfg, req, resp); err != nil {
		return err
	}
	kh, err := latency.New()
	if err != nil {
		return err
	}
	q := *t.p
	q.warmup = 0 // checkEcho warmed the connection up
	q.after = func() {
		if t.res.tcpInfoErr != nil {
			return
		}
		ti, err := sockopt.ReadTCPInfo(raw)
		if t.res.tcpInfoErr = err; err == nil {
			kh.Record(ti.RTT)
		}
	}
	t.res.rtt, err = q.measure(ctx, "rtt", "request/response round trip", t.cfg.n, func(ctx context.Context) error {
		return exchange(ctx, c, req, resp)
	})
	if err != nil {
		return err
	}
	if ks := kh.Snapshot(); ks.Count() > 0 && t.res.tcpInfoErr == nil {
		t.res.kernelRTT = &series{name: "kernel_rtt", title: "kernel smoothed RTT (TCP_INFO, read after each exchange)",
			snap: ks, stats: latency.ProbeResult{Samples: int(ks.Count())}}
	}
	return nil
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
		return fmt.Errorf("%w: no %d-byte answer within %v; for servers that do not echo, use -connect-only", errNoEcho, cfg.size, cfg.timeout)
	case err != nil:
		return fmt.Errorf("%w: %w; for servers that do not echo, use -connect-only", errNoEcho, err)
	case !bytes.Equal(req, resp):
		return fmt.Errorf("%w: it answered with other bytes than it was sent; for servers that do not echo, use -connect-only", errNoEcho)
	}
	return nil
}

// errNotTLS is wrapped by the error of a -tls run against a target that
// does not speak TLS.
var errNotTLS = errors.New("the target does not speak TLS; drop -tls")

// handshakeTLS runs a TLS client handshake on raw. When it fails and what
// the target sent shows that it does not speak TLS (it sent the
// ClientHello back, as an echo server does, or bytes that are not a TLS
// record), the error wraps errNotTLS, whose message says what to do:
// crypto/tls alone says "first record does not look like a TLS handshake",
// "unexpected handshake message of type *tls.clientHelloMsg", or nothing
// but a timeout.
func handshakeTLS(ctx context.Context, raw net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	sc := &sniffConn{Conn: raw}
	tc := tls.Client(sc, cfg)
	err := tc.HandshakeContext(ctx)
	var rh tls.RecordHeaderError
	switch {
	case err == nil:
		return tc, nil
	case sc.echoed():
		return nil, fmt.Errorf("TLS handshake: %w (the target sent back the ClientHello it was sent, as an echo server does): %w", err, errNotTLS)
	case errors.As(err, &rh):
		return nil, fmt.Errorf("TLS handshake: %w (the target answered %q): %w", err, rh.RecordHeader[:], errNotTLS)
	}
	return nil, fmt.Errorf("TLS handshake: %w", err)
}

// sniffLen is how many bytes sniffConn keeps each way: a TLS record
// header and the start of the ClientHello, up to its random bytes.
const sniffLen = 16

// sniffConn keeps the first bytes written to and read from a connection.
type sniffConn struct {
	net.Conn
	wrote, read []byte // up to sniffLen bytes each
}

func (c *sniffConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.wrote = keep(c.wrote, p[:n])
	return n, err
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read = keep(c.read, p[:n])
	return n, err
}

// keep appends to b what fits of p within sniffLen bytes.
func keep(b, p []byte) []byte {
	return append(b, p[:min(len(p), sniffLen-len(b))]...)
}

// echoed reports whether the peer sent back the first bytes written.
func (c *sniffConn) echoed() bool {
	return len(c.read) == sniffLen && bytes.Equal(c.read, c.wrote)
}
