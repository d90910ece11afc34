package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync"
	"time"

	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/listener"
)

// burstOf runs n calls of f at once and records the latency of each in
// h; it returns the errors of the calls that failed.
func (b *bench) burstOf(ctx context.Context, n int, h *latency.Histogram, f func(context.Context) error) []error {
	var wg sync.WaitGroup
	var mu sync.Mutex // guards errs
	var errs []error
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
			defer cancel()
			start := time.Now()
			if err := f(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			h.Record(time.Since(start))
		})
	}
	wg.Wait()
	return errs
}

// bursts measures rounds bursts of n calls of f at once, after warm
// unrecorded ones.
func (b *bench) bursts(ctx context.Context, name, title string, warm, rounds, n int, f func(context.Context) error) (*series, error) {
	h, err := latency.New()
	if err != nil {
		return nil, err
	}
	discard, err := latency.New()
	if err != nil {
		return nil, err
	}
	task := b.p.progress.start(title, rounds*n)
	var st latency.ProbeResult
	for i := range warm + rounds {
		sink := h
		if i < warm {
			sink = discard
		}
		errs := b.burstOf(ctx, n, sink, f)
		if i >= warm {
			st.Samples += n - len(errs)
			st.Failures += len(errs)
			if len(errs) > 0 {
				st.LastErr = errs[len(errs)-1]
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	task.done(st)
	if st.Samples == 0 {
		return nil, fmt.Errorf("%s: all %d calls failed: %w", title, st.Failures, st.LastErr)
	}
	return &series{name: name, title: title, snap: h.Snapshot(), stats: st}, nil
}

// backlog connects a burst of clients at once to a server that accepts
// one connection every few milliseconds, behind a small and an adequate
// accept queue.
func (b *bench) backlog(ctx context.Context) (*comparison, error) {
	const burst, small, adequate, pace = 32, 4, 1024, 2 * time.Millisecond
	var got []*series
	for _, n := range []int{small, adequate} {
		lc, err := listener.New(listener.Backlog(n))
		if err != nil {
			return nil, err
		}
		ln, err := b.path.server.listen(ctx, lc)
		if err != nil {
			return nil, err
		}
		srv := servePaced(ln, nil, pace, echoHandler(b.cfg.size))
		dial := b.dial()
		s, err := b.bursts(ctx, fmt.Sprintf("backlog_%d", n), fmt.Sprintf("%d connects at once, backlog %d", burst, n), 0, 1, burst,
			func(ctx context.Context) error {
				c, err := dial(ctx, "tcp", ln.Addr().String())
				if err != nil {
					return err
				}
				err = exchange(ctx, c, b.req, make([]byte, len(b.resp)))
				return errors.Join(err, c.Close())
			})
		if err = errors.Join(err, srv.close()); err != nil {
			return nil, err
		}
		got = append(got, s)
	}
	return &comparison{name: "backlog",
		without: side{label: fmt.Sprintf("backlog %d", small), s: got[0]}, with: side{label: fmt.Sprintf("backlog %d", adequate), s: got[1]},
		floorRTT: 2, how: fmt.Sprintf("listener.Backlog(%d) (at most net.core.somaxconn; raise it and net.ipv4.tcp_max_syn_backlog too)", adequate),
		note: fmt.Sprintf("each sample: one of %d clients started together, each connecting (1 RTT) and sending a request "+
			"(1 RTT), to a server that accepts one connection every %v. The client's connect returns at the SYN-ACK, "+
			"but the server queues the connection only when the client's ACK arrives: with the accept queue full it "+
			"drops that ACK, and the connection stalls until the SYN-ACK is sent again, 1 s later.", burst, pace)}, nil
}

// http2 runs bursts of concurrent HTTPS requests through a client that
// speaks HTTP/1.1, then one that speaks HTTP/2.
func (b *bench) http2(ctx context.Context) (_ *comparison, err error) {
	const concurrency, rounds = 8, 4
	lc, err := listener.New()
	if err != nil {
		return nil, err
	}
	ln, err := b.path.server.listen(ctx, lc)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		TLSConfig: b.serverTLS.Clone(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}),
		ErrorLog: discardLog,
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	defer func() {
		err = errors.Join(err, srv.Close())
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}()
	url := "https://" + ln.Addr().String() + "/"
	var got []*series
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{DialContext: b.dial(), TLSClientConfig: b.clientTLS.Clone(), ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
		}
		client := &http.Client{Transport: tr}
		get := func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			err = errors.Join(err, resp.Body.Close())
			if err == nil && (resp.ProtoMajor == 2) != h2 {
				err = fmt.Errorf("the response came over %s", resp.Proto)
			}
			return err
		}
		name, title := "http1", "HTTP/1.1 (http.Transport defaults)"
		if h2 {
			name, title = "http2", "HTTP/2, one multiplexed connection"
		}
		// The first burst opens the connections; the later ones are measured.
		sr, err := b.bursts(ctx, name, title, 1, rounds, concurrency, get)
		tr.CloseIdleConnections()
		if err != nil {
			return nil, err
		}
		got = append(got, sr)
	}
	return &comparison{name: "http2",
		without: side{label: "HTTP/1.1", s: got[0]}, with: side{label: "HTTP/2", s: got[1]},
		floorRTT: 1, how: "http.Transport{ForceAttemptHTTP2: true} with the nettune dialer (integration/httpnet)",
		note: fmt.Sprintf("bursts of %d concurrent GETs over TLS, after a first burst that opened the connections; "+
			"HTTP/1.1 keeps only 2 idle connections per host (MaxIdleConnsPerHost), so a burst dials and "+
			"handshakes again (3 RTT) for the requests that find no connection free; HTTP/2 sends every request on one connection (1 RTT).", concurrency)}, nil
}

// discardLog drops the HTTP server's log: a client closing its idle
// connections is not news.
var discardLog = log.New(io.Discard, "", 0)
