package httpnet_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/integration/httpnet"
	"github.com/nettune/nettune/internal/tlstest"
	"github.com/nettune/nettune/listener"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// get fetches url with rt and returns the protocol of the response and the
// one the handler saw.
func get(tb testing.TB, rt *http.Transport, url string) (client, server string) {
	tb.Helper()
	defer rt.CloseIdleConnections()
	resp, err := (&http.Client{Transport: rt}).Get(url)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.Proto, string(body)
}

func TestTransportSpeaksHTTP2WithTheNettuneDialer(t *testing.T) {
	serverTLS, clientTLS, err := tlstest.Configs()
	require.NoError(t, err)
	cfg, err := listener.New()
	require.NoError(t, err)
	l, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		TLSConfig: serverTLS,
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) }),
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() {
		assert.NoError(t, srv.Close())
		assert.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	_, port, err := net.SplitHostPort(l.Addr().String())
	require.NoError(t, err)
	url := "https://" + net.JoinHostPort("localhost", port) + "/"

	d, err := dialer.New()
	require.NoError(t, err)

	client, server := get(t, httpnet.Transport(d.DialContext, clientTLS), url)
	assert.Equal(t, "HTTP/2.0", client, "response with httpnet.Transport")
	assert.Equal(t, "HTTP/2.0", server, "request with httpnet.Transport")
	assert.Empty(t, clientTLS.NextProtos, "the caller's tls.Config is left as it was")

	// The pitfall: a Transport with its own DialContext (and TLS config)
	// and no ForceAttemptHTTP2 stays on HTTP/1.1.
	client, server = get(t, &http.Transport{DialContext: d.DialContext, TLSClientConfig: clientTLS}, url)
	assert.Equal(t, "HTTP/1.1", client, "response without ForceAttemptHTTP2")
	assert.Equal(t, "HTTP/1.1", server, "request without ForceAttemptHTTP2")
}
