// Command httpclient builds an http.Transport on nettune: the dialer's
// DialContext with the DNS cache as its resolver and a latency histogram
// recording every connect, and prints request and connect-time percentiles
// with the cache's statistics.
//
//	go run ./examples/httpclient                             # embedded server and DNS
//	go run ./examples/httpclient -url http://127.0.0.1:8080/ # a server of yours
//
// By default it starts a loopback HTTP server and a loopback DNS server that
// answers for its name, then sends the requests twice: with keep-alive off
// (every request dials, so every request pays a connect and a cache lookup)
// and on (connections are reused).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/internal/dnstest"
	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/listener"
)

func main() { cli.Main("httpclient", run) }

// about is the paragraph of -h.
const about = `Sends GET requests through an http.Transport on a nettune dialer, with the DNS
cache as its resolver and a histogram of connect times, keep-alive off then
on, and prints request and connect percentiles with the cache's statistics.`

type config struct {
	cli.LoadFlags
	url string
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	f := cli.NewFlagSet("httpclient", stderr, about, "[flags]")
	f.Func("url", "URL", "an http:// or https:// URL with a host", "GET this http:// or https:// `URL` (default: an embedded loopback server, by a name the embedded DNS server answers)",
		func(s string) error {
			u, err := url.Parse(s)
			if err != nil {
				return err
			}
			switch {
			case u.Scheme != "http" && u.Scheme != "https":
				return fmt.Errorf("the scheme is %q", u.Scheme)
			case u.Host == "":
				return errors.New("no host")
			}
			cfg.url = s
			return nil
		})
	f.LoadFlags(&cfg.LoadFlags, 1000)
	if err := f.Parse(args); err != nil {
		return nil, err
	}
	return cfg, nil
}

// embeddedName is the host name the embedded DNS server answers for.
const embeddedName = "api.httpclient.test"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	target, where := cfg.url, "given server, system resolver behind the cache"
	cacheOpts := []dnscache.Option{dnscache.TTL(time.Minute)}
	var dns *dnstest.Server
	if target == "" {
		stopHTTP, port, serr := startHTTP(ctx)
		if serr != nil {
			return fmt.Errorf("start loopback HTTP server: %w", serr)
		}
		defer func() { err = errors.Join(err, stopHTTP()) }()
		if dns, err = dnstest.Start(); err != nil {
			return fmt.Errorf("start loopback DNS server: %w", err)
		}
		defer func() { err = errors.Join(err, dns.Close()) }()
		dns.SetAddrs(embeddedName, time.Minute, netip.MustParseAddr("127.0.0.1"))
		cacheOpts = append(cacheOpts, dnscache.System(dns.Resolver()))
		target = "http://" + net.JoinHostPort(embeddedName, strconv.Itoa(port)) + "/hello"
		where = "embedded HTTP server, name served by an embedded DNS server on " + dns.Addr().String()
	}
	cache, err := dnscache.New(cacheOpts...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cache.Close()) }()

	fmt.Fprintf(stdout, "httpclient: %d GET requests to %s (%s), %d at once\n", cfg.N, target, where, cfg.Workers)
	var rows []cli.LatencyRow
	for _, keepAlive := range []bool{false, true} {
		connects, err := latency.New()
		if err != nil {
			return err
		}
		d, err := dialer.New(
			dialer.Timeout(cfg.Timeout),
			dialer.Resolver(cache),
			dialer.RecordConnectTime(connects),
		)
		if err != nil {
			return err
		}
		tr := &http.Transport{
			DialContext:         d.DialContext,
			DisableKeepAlives:   !keepAlive,
			MaxIdleConnsPerHost: cfg.Workers,
			ForceAttemptHTTP2:   true,
		}
		label := "keep-alive off"
		if keepAlive {
			label = "keep-alive on"
		}
		client := &http.Client{Transport: tr, Timeout: cfg.Timeout}
		res, err := cli.Load(ctx, cfg.N, cfg.Workers, func() func(context.Context) error {
			return func(ctx context.Context) error { return get(ctx, client, target) }
		})
		tr.CloseIdleConnections()
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		rows = append(rows,
			res.Row("request, "+label),
			cli.LatencyRow{Title: "connect (dialer.RecordConnectTime), " + label, Snap: connects.Snapshot()})
	}
	fmt.Fprintln(stdout)
	cli.WriteLatencyTable(stdout, rows)
	st := cache.Stats()
	fmt.Fprintf(stdout, "\ndnscache: %d hits, %d misses, %d lookups at the source, %d stale answers served, %d entries\n",
		st.Hits, st.Misses, st.Lookups, st.StaleServed, st.Entries)
	if dns != nil {
		fmt.Fprintf(stdout, "DNS server: %d queries received for %d connections dialed\n", dns.TotalQueries(), rows[1].Snap.Count()+rows[3].Snap.Count())
	}
	return nil
}

// errStatus is wrapped by the error of a response that is not 200 OK.
var errStatus = errors.New("unexpected HTTP status")

func get(ctx context.Context, client *http.Client, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	err = errors.Join(err, resp.Body.Close())
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%w: %s", errStatus, resp.Status)
	}
	return err
}

// startHTTP serves a small fixed response on 127.0.0.1:0 and returns a
// function that shuts the server down, and its port.
func startHTTP(ctx context.Context) (stop func() error, port int, err error) {
	lc, err := listener.New()
	if err != nil {
		return nil, 0, err
	}
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "hello from the embedded server\n")
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stop = func() error {
		err := srv.Close()
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
	return stop, ln.Addr().(*net.TCPAddr).Port, nil
}
