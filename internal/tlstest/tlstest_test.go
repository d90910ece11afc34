package tlstest_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/nettune/nettune/internal/tlstest"
)

// handshake serves one TLS handshake on a new loopback listener and dials
// it with client, returning the client's error.
func handshake(t *testing.T, network, addr string, server, client *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen(network, addr, server)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := ln.Accept(); err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial(network, ln.Addr().String(), client)
	if err == nil {
		assert.Equal(t, uint16(tls.VersionTLS13), c.ConnectionState().Version)
		c.Close()
	}
	<-done
	return err
}

func TestTheClientTrustsTheServerUnderEveryLoopbackName(t *testing.T) {
	server, client, err := tlstest.Configs()
	require.NoError(t, err)
	for _, tc := range []struct{ network, addr, name string }{
		{"tcp4", "127.0.0.1:0", "localhost"},
		{"tcp4", "127.0.0.1:0", "127.0.0.1"},
		{"tcp6", "[::1]:0", "::1"},
	} {
		t.Run(tc.network+"/"+tc.name, func(t *testing.T) {
			cfg := client.Clone()
			cfg.ServerName = tc.name
			assert.NoError(t, handshake(t, tc.network, tc.addr, server, cfg))
		})
	}
}

func TestAnotherRunsCertificateIsNotTrusted(t *testing.T) {
	server, _, err := tlstest.Configs()
	require.NoError(t, err)
	_, client, err := tlstest.Configs()
	require.NoError(t, err)
	err = handshake(t, "tcp4", "127.0.0.1:0", server, client)
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &unknown)
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
