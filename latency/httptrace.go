package latency

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPStages times the stages of net/http client requests, each stage
// into its own [Sink] (such as a [*Histogram]); a nil Sink is not
// recorded. [HTTPStages.Transport] wraps an http.RoundTripper to do it:
//
//	stages := &latency.HTTPStages{DNS: dns, Connect: connect, TLS: tlsTime, FirstByte: ttfb, Total: total}
//	client := &http.Client{Transport: stages.Transport(tr)}
//
// The connection stages (DNS, Connect, TLS) belong to connections, not to
// requests: each new connection records them once, when the stage
// succeeds, and a request sent on a reused connection (HTTP/1.1
// keep-alive, or another stream of an HTTP/2 connection) records none of
// them; [HTTPStageStats].Reused counts those requests. (net/http may hand
// a connection dialed for one request to another that is waiting: it is
// new to that request, which saw no dial, and its stages were recorded by
// the request that dialed it.) The request stages
// (FirstByte, Server, Total) are recorded once per round trip that
// returned a response, each measured from that round trip's own start,
// so the concurrent streams of one HTTP/2 connection never mix. A stage
// that fails (a lookup, connect or handshake error) records nothing, nor
// do the request stages of a round trip that returns an error: it counts
// in [HTTPStageStats].Failures, and a body whose Read fails in BodyErrors.
//
// Set the fields before the first request and leave them alone after; an
// HTTPStages must not be copied once used. It is safe for concurrent use
// if its Sinks and Now are (Histogram and Recorder are).
type HTTPStages struct {
	// DNS receives the time of each name lookup that net makes for a new
	// connection through the request's context (DNSStart to DNSDone): the
	// resolution of net.Dialer, and of any dialer that resolves with a
	// *net.Resolver and the context it was given, such as nettune's
	// dialer. A dial to an IP address, or a cache that answers without a
	// lookup, records nothing.
	DNS Sink
	// Connect receives the time of each connect that made a new
	// connection (ConnectStart to ConnectDone of the attempt). With Happy
	// Eyeballs (net.Dialer and nettune's dialer race the addresses of a
	// name) each attempt reports its own start and end, possibly at the
	// same time from different goroutines: Connect records only the first
	// attempt of the dial that succeeded, the one the dialer returns, so
	// neither the fallback delay nor failed or losing attempts are
	// counted. It is about the time dialer.RecordConnectTime reports.
	Connect Sink
	// TLS receives the time of each TLS handshake that http.Transport
	// runs on a new connection (for https, HTTP/2 included). A handshake
	// done inside a custom DialTLSContext is not seen.
	TLS Sink
	// FirstByte receives the time from the start of the round trip to the
	// first byte of the response (of a 1xx response, if one comes first):
	// the time to first byte, including any wait for a connection and
	// the connection stages of a new one.
	FirstByte Sink
	// Server receives the time from the request written in full to the
	// first byte of the response: the server's time plus one round trip
	// on the network. It is not recorded when the response began before
	// the request was written (Expect: 100-continue, or a server that
	// answers before reading the whole body).
	Server Sink
	// Total receives the time from the start of the round trip until the
	// response body's Read returns io.EOF or the body is closed, whichever
	// comes first: a caller that stops reading and closes records the time
	// until Close. A response without a body (http.NoBody: HEAD, 204, 304)
	// and a 101 Switching Protocols response, whose body is the upgraded
	// connection, record it when the round trip returns.
	Total Sink

	// Now reads the clock; nil means time.Now (with its monotonic
	// reading). Tests may set it to a fake clock.
	Now func() time.Time

	requests, reused, conns, failures, bodyErrors atomic.Uint64
}

// HTTPStageStats counts the round trips of an [HTTPStages].
type HTTPStageStats struct {
	Requests   uint64 // round trips that returned a response
	Reused     uint64 // of those, sent on a connection that had served a request before: no DNS, Connect or TLS sample
	Conns      uint64 // connects that made a new connection (one per dial, as Connect records)
	Failures   uint64 // round trips that returned an error: no FirstByte, Server or Total sample
	BodyErrors uint64 // response bodies whose Read failed before the end: no Total sample
}

// Stats returns the counts so far.
func (s *HTTPStages) Stats() HTTPStageStats {
	return HTTPStageStats{
		Requests:   s.requests.Load(),
		Reused:     s.reused.Load(),
		Conns:      s.conns.Load(),
		Failures:   s.failures.Load(),
		BodyErrors: s.bodyErrors.Load(),
	}
}

// Transport returns a RoundTripper that times each round trip of next
// (http.DefaultTransport if next is nil) into s. It adds an
// httptrace.ClientTrace to the request's context (its hooks run first,
// then those of any trace the caller put there) and wraps the response
// body to see its end. The stages come from next's trace hooks, as http.Transport (HTTP/1
// and HTTP/2) calls them; a RoundTripper that calls none records only
// Total. With http.Client every redirect is a round trip of its own.
// CloseIdleConnections is passed on to next.
func (s *HTTPStages) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &stagesTransport{s: s, next: next}
}

func (s *HTTPStages) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func record(sink Sink, d time.Duration) {
	if sink != nil {
		sink.Record(d)
	}
}

type stagesTransport struct {
	s    *HTTPStages
	next http.RoundTripper
}

func (t *stagesTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := &roundTrip{s: t.s, start: t.s.now()}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), rt.trace()))
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.s.failures.Add(1)
		return resp, err
	}
	rt.responded(resp)
	return resp, nil
}

// CloseIdleConnections closes next's idle connections, if next can.
func (t *stagesTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// roundTrip is the state of one round trip. Its hooks run on several
// goroutines: the dial's (and one per Happy Eyeballs attempt), the
// caller's, and the connection's writer and reader; a dial can even go on
// after the round trip returned, since net/http lets it finish for the
// next request.
type roundTrip struct {
	s     *HTTPStages
	start time.Time

	mu        sync.Mutex // guards the fields below
	dnsAt     time.Time  // the lookup in flight started
	attempts  []attempt  // connects in flight
	won       bool       // a connect of the current dial succeeded
	tlsAt     time.Time  // the handshake in flight started
	reused    bool       // the connection of the latest attempt had served a request
	wrote     time.Time  // the request of the latest attempt was written
	firstByte time.Time  // the first response byte of the latest attempt
}

type attempt struct {
	network, addr string
	start         time.Time
}

func (rt *roundTrip) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn:              rt.getConn,
		DNSStart:             rt.dnsStart,
		DNSDone:              rt.dnsDone,
		ConnectStart:         rt.connectStart,
		ConnectDone:          rt.connectDone,
		TLSHandshakeStart:    rt.tlsHandshakeStart,
		TLSHandshakeDone:     rt.tlsHandshakeDone,
		GotConn:              rt.gotConn,
		WroteRequest:         rt.wroteRequest,
		GotFirstResponseByte: rt.gotFirstResponseByte,
	}
}

// getConn starts a request for a connection, which may dial: a new dial
// may record a connect again (net/http retries a request whose reused
// connection failed).
func (rt *roundTrip) getConn(string) {
	rt.mu.Lock()
	rt.won = false
	rt.mu.Unlock()
}

func (rt *roundTrip) dnsStart(httptrace.DNSStartInfo) {
	now := rt.s.now()
	rt.mu.Lock()
	rt.dnsAt = now
	rt.mu.Unlock()
}

func (rt *roundTrip) dnsDone(info httptrace.DNSDoneInfo) {
	now := rt.s.now()
	rt.mu.Lock()
	start := rt.dnsAt
	rt.dnsAt = time.Time{}
	rt.mu.Unlock()
	if info.Err == nil && !start.IsZero() {
		record(rt.s.DNS, now.Sub(start))
	}
}

func (rt *roundTrip) connectStart(network, addr string) {
	now := rt.s.now()
	rt.mu.Lock()
	rt.attempts = append(rt.attempts, attempt{network, addr, now})
	rt.mu.Unlock()
}

func (rt *roundTrip) connectDone(network, addr string, err error) {
	now := rt.s.now()
	rt.mu.Lock()
	var start time.Time
	for i, a := range rt.attempts {
		if a.network == network && a.addr == addr {
			start = a.start
			rt.attempts = append(rt.attempts[:i], rt.attempts[i+1:]...)
			break
		}
	}
	first := err == nil && !start.IsZero() && !rt.won
	if first {
		rt.won = true
	}
	rt.mu.Unlock()
	if first {
		rt.s.conns.Add(1)
		record(rt.s.Connect, now.Sub(start))
	}
}

func (rt *roundTrip) tlsHandshakeStart() {
	now := rt.s.now()
	rt.mu.Lock()
	rt.tlsAt = now
	rt.mu.Unlock()
}

func (rt *roundTrip) tlsHandshakeDone(_ tls.ConnectionState, err error) {
	now := rt.s.now()
	rt.mu.Lock()
	start := rt.tlsAt
	rt.tlsAt = time.Time{}
	rt.mu.Unlock()
	if err == nil && !start.IsZero() {
		record(rt.s.TLS, now.Sub(start))
	}
}

// gotConn starts an attempt on a connection: the writes and reads of an
// earlier attempt (which failed, and was retried) no longer count.
func (rt *roundTrip) gotConn(info httptrace.GotConnInfo) {
	rt.mu.Lock()
	rt.reused = info.Reused
	rt.wrote, rt.firstByte = time.Time{}, time.Time{}
	rt.mu.Unlock()
}

func (rt *roundTrip) wroteRequest(info httptrace.WroteRequestInfo) {
	if info.Err != nil {
		return
	}
	now := rt.s.now()
	rt.mu.Lock()
	rt.wrote = now
	rt.mu.Unlock()
}

func (rt *roundTrip) gotFirstResponseByte() {
	now := rt.s.now()
	rt.mu.Lock()
	if rt.firstByte.IsZero() {
		rt.firstByte = now
	}
	rt.mu.Unlock()
}

// responded records the request stages of a round trip that returned
// resp, and wraps resp.Body to record Total at its end.
func (rt *roundTrip) responded(resp *http.Response) {
	s := rt.s
	rt.mu.Lock()
	reused, wrote, firstByte := rt.reused, rt.wrote, rt.firstByte
	rt.mu.Unlock()
	s.requests.Add(1)
	if reused {
		s.reused.Add(1)
	}
	if !firstByte.IsZero() {
		record(s.FirstByte, firstByte.Sub(rt.start))
		if !wrote.IsZero() && !firstByte.Before(wrote) {
			record(s.Server, firstByte.Sub(wrote))
		}
	}
	if _, upgraded := resp.Body.(io.Writer); resp.Body == nil || resp.Body == http.NoBody || upgraded {
		record(s.Total, s.now().Sub(rt.start))
		return
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, rt: rt}
}

// timedBody records Total when its Read returns io.EOF or it is closed.
type timedBody struct {
	io.ReadCloser
	rt   *roundTrip
	done atomic.Bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end(err)
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.end(nil)
	return b.ReadCloser.Close()
}

// end records the end of the body once: Total at io.EOF or Close, a body
// error at any other error.
func (b *timedBody) end(err error) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	s := b.rt.s
	if err != nil && !errors.Is(err, io.EOF) {
		s.bodyErrors.Add(1)
		return
	}
	record(s.Total, s.now().Sub(b.rt.start))
}
