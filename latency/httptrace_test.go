package latency_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/latency"
)

// kept is a Sink that keeps every sample, in the order recorded.
type kept struct {
	mu sync.Mutex
	d  []time.Duration
}

func (k *kept) Record(d time.Duration) {
	k.mu.Lock()
	k.d = append(k.d, d)
	k.mu.Unlock()
}

func (k *kept) all() []time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]time.Duration(nil), k.d...)
}

// stageSinks is an HTTPStages with a kept Sink for every stage.
type stageSinks struct {
	dns, connect, tls, firstByte, server, total kept
	stages                                      *latency.HTTPStages
}

func newStageSinks() *stageSinks {
	k := &stageSinks{}
	k.stages = &latency.HTTPStages{DNS: &k.dns, Connect: &k.connect, TLS: &k.tls,
		FirstByte: &k.firstByte, Server: &k.server, Total: &k.total}
	return k
}

// client returns an http.Client that times its round trips over tr into
// k, and closes tr's idle connections at the end of the test.
func (k *stageSinks) client(t testing.TB, tr *http.Transport) *http.Client {
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: k.stages.Transport(tr)}
}

// get reads the whole body of a GET of u and returns the response.
func get(t testing.TB, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp
}

// viaLocalhost rewrites the host of u, an httptest URL, to "localhost", so
// that dials look the name up.
func viaLocalhost(t testing.TB, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	require.NoError(t, err)
	p.Host = net.JoinHostPort("localhost", p.Port())
	return p.String()
}

func hello(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") }

func TestHTTPStagesTimeANewConnectionOnceAndNotItsReuse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(hello))
	defer srv.Close()
	k := newStageSinks()
	c := k.client(t, &http.Transport{})
	u := viaLocalhost(t, srv.URL)

	get(t, c, u)
	get(t, c, u) // keep-alive: the same connection

	assert.Equal(t, latency.HTTPStageStats{Requests: 2, Reused: 1, Conns: 1}, k.stages.Stats())
	require.Len(t, k.dns.all(), 1, "one lookup, for the one connection")
	require.Len(t, k.connect.all(), 1, "no connect sample for the reused connection")
	assert.Empty(t, k.tls.all(), "plain HTTP")
	fb, server, total := k.firstByte.all(), k.server.all(), k.total.all()
	require.Len(t, fb, 2)
	require.Len(t, server, 2)
	require.Len(t, total, 2)
	assert.LessOrEqual(t, k.dns.all()[0]+k.connect.all()[0], fb[0], "the first request waited for the lookup and the connect")
	for i := range 2 {
		assert.LessOrEqual(t, server[i], fb[i], "request %d: the server's part is within the time to first byte", i)
		assert.LessOrEqual(t, fb[i], total[i], "request %d", i)
	}
}

func TestHTTPStagesTimeTheTLSHandshake(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(hello))
	defer srv.Close()
	k := newStageSinks()
	c := k.client(t, srv.Client().Transport.(*http.Transport).Clone())

	resp := get(t, c, srv.URL)
	assert.Equal(t, 1, resp.ProtoMajor)
	get(t, c, srv.URL)

	assert.Equal(t, latency.HTTPStageStats{Requests: 2, Reused: 1, Conns: 1}, k.stages.Stats())
	hs, connect, fb := k.tls.all(), k.connect.all(), k.firstByte.all()
	require.Len(t, hs, 1, "one handshake, for the one connection")
	require.Len(t, connect, 1)
	assert.Empty(t, k.dns.all(), "httptest's URL is an IP address")
	assert.LessOrEqual(t, connect[0]+hs[0], fb[0], "the first request waited for the connect and the handshake")
}

func TestHTTPStagesTimeEachStreamOfAnHTTP2ConnectionFromItsOwnStart(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-release
		}
		hello(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	k := newStageSinks()
	c := k.client(t, srv.Client().Transport.(*http.Transport).Clone())

	resp := get(t, c, srv.URL) // makes the connection
	require.Equal(t, 2, resp.ProtoMajor)

	// A is held by the server while B, on another stream of the same
	// connection, starts after A and ends before A's first byte.
	slow := make(chan *http.Response, 1)
	go func() {
		resp, err := c.Get(srv.URL + "/slow")
		if err != nil {
			t.Error(err)
			close(slow)
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		assert.NoError(t, err)
		assert.NoError(t, resp.Body.Close())
		slow <- resp
	}()
	<-arrived
	get(t, c, srv.URL+"/fast")
	close(release)
	require.NotNil(t, <-slow)

	assert.Equal(t, latency.HTTPStageStats{Requests: 3, Reused: 2, Conns: 1}, k.stages.Stats())
	assert.Len(t, k.connect.all(), 1, "one connection for the three requests")
	assert.Len(t, k.tls.all(), 1)
	fb, total := k.firstByte.all(), k.total.all()
	require.Len(t, fb, 3, "in order: the first request, B, A")
	require.Len(t, total, 3)
	assert.Less(t, total[1], fb[2], "B's whole round trip is shorter than A's wait for its first byte")
}

func TestHTTPStagesFirstByteAndTotalCoverTheServersDelays(t *testing.T) {
	const delay = 20 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(delay) // the server's think time before the headers
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(delay) // and a slow body
		fmt.Fprint(w, "late")
	}))
	defer srv.Close()
	k := newStageSinks()
	c := k.client(t, &http.Transport{})

	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	assert.Empty(t, k.total.all(), "the body has not been read yet")
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "late", string(b))
	require.Len(t, k.total.all(), 1, "recorded at the body's io.EOF")
	require.NoError(t, resp.Body.Close())

	assert.GreaterOrEqual(t, k.firstByte.all()[0], delay)
	assert.GreaterOrEqual(t, k.server.all()[0], delay)
	assert.GreaterOrEqual(t, k.total.all()[0], 2*delay)
	assert.Len(t, k.total.all(), 1, "Close after io.EOF records nothing more")
}

func TestHTTPStagesRecordTotalAtCloseForABodyNotReadToItsEnd(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, strings.Repeat("x", 1<<20))
	}))
	defer srv.Close()
	k := newStageSinks()
	c := k.client(t, &http.Transport{})
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	_, err = resp.Body.Read(make([]byte, 10))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Len(t, k.total.all(), 1)
	assert.Equal(t, uint64(0), k.stages.Stats().BodyErrors)
}

func TestHTTPStagesRecordNoRequestStageForAFailedRoundTripOrBody(t *testing.T) {
	// A server that sends half the body it announces, and one that closes
	// without answering.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	var n atomic.Int32
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := http.ReadRequest(bufio.NewReader(conn)); err == nil && n.Add(1) == 1 {
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
			}
			_ = conn.Close()
		}
	})
	k := newStageSinks()
	c := k.client(t, &http.Transport{})
	u := "http://" + ln.Addr().String()

	resp, err := c.Get(u)
	require.NoError(t, err, "the headers arrive")
	_, err = io.ReadAll(resp.Body)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.NoError(t, resp.Body.Close())

	_, err = c.Get(u)
	require.Error(t, err, "the server closes without answering")

	assert.Equal(t, latency.HTTPStageStats{Requests: 1, Conns: 2, Failures: 1, BodyErrors: 1}, k.stages.Stats())
	assert.Len(t, k.connect.all(), 2, "both connections were made")
	assert.Len(t, k.firstByte.all(), 1, "the first request got its headers")
	assert.Empty(t, k.total.all(), "neither request ended well")
}

// fixedResolver answers every lookup with its addresses.
type fixedResolver []netip.Addr

func (r fixedResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return r, nil
}

func TestHTTPStagesOverTheNettuneDialer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(hello))
	defer srv.Close()
	var dialed kept
	d, err := dialer.New(dialer.RecordConnectTime(&dialed))
	require.NoError(t, err)
	k := newStageSinks()
	c := k.client(t, &http.Transport{DialContext: d.DialContext})
	u := viaLocalhost(t, srv.URL)

	get(t, c, u)
	get(t, c, u)

	assert.Equal(t, latency.HTTPStageStats{Requests: 2, Reused: 1, Conns: 1}, k.stages.Stats())
	assert.Len(t, k.dns.all(), 1, "the dialer resolves with the request's context")
	assert.Len(t, k.connect.all(), 1)
	assert.Len(t, dialed.all(), 1, "the dialer's own recorder agrees")
}

func TestHTTPStagesRecordOneConnectForAHappyEyeballsRace(t *testing.T) {
	// The same port on ::1 and 127.0.0.1, both served, and a dialer that
	// starts the second attempt at once: both attempts may connect.
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln4.Addr().(*net.TCPAddr).Port
	ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", fmt.Sprint(port)))
	if err != nil {
		ln4.Close()
		t.Skipf("no IPv6 loopback on port %d: %v", port, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(hello)}
	var wg sync.WaitGroup
	for _, ln := range []net.Listener{ln4, ln6} {
		wg.Go(func() { _ = srv.Serve(ln) })
	}
	defer wg.Wait()
	defer srv.Close()

	d, err := dialer.New(dialer.Resolver(fixedResolver{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}),
		dialer.FallbackDelay(time.Nanosecond))
	require.NoError(t, err)
	k := newStageSinks()
	c := k.client(t, &http.Transport{DialContext: d.DialContext})
	var attempts, successes atomic.Int32
	for range 20 {
		// The caller's own trace still runs, after the stages'.
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			ConnectStart: func(string, string) { attempts.Add(1) },
			ConnectDone: func(_, _ string, err error) {
				if err == nil {
					successes.Add(1)
				}
			},
		})
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://race.test:"+fmt.Sprint(port), nil)
		require.NoError(t, err)
		req.Close = true // a new connection each time
		resp, err := c.Do(req)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	t.Logf("%d connect attempts, %d of them connected, for 20 connections", attempts.Load(), successes.Load())
	assert.Equal(t, latency.HTTPStageStats{Requests: 20, Conns: 20}, k.stages.Stats())
	assert.Len(t, k.connect.all(), 20, "one connect per connection, whatever the race")
	assert.GreaterOrEqual(t, int(attempts.Load()), 20)
}
