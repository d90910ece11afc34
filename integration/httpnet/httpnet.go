// Package httpnet makes a net/http client transport that dials with
// nettune's dialer and still speaks HTTP/2.
//
// net/http turns its automatic HTTP/2 off when a Transport has its own
// DialContext (or Dial, DialTLSContext, TLSClientConfig), to avoid
// surprising a caller who configured TLS by hand (Go issue 14275):
//
//	t := &http.Transport{DialContext: d.DialContext} // HTTP/1.1 only
//
// ForceAttemptHTTP2 (or Protocols with HTTP/2 set) turns it back on;
// [Transport] sets it. http.DefaultTransport sets it too, so a clone of
// it keeps HTTP/2 when its DialContext is replaced.
package httpnet

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// Transport returns an http.Transport that dials with dial, such as a
// dialer.Dialer's DialContext, verifies servers with tlsConfig (nil means
// the defaults), and negotiates HTTP/2 over TLS with ALPN. It keeps a
// clone of tlsConfig: with HTTP/2 on, net/http adds "h2" to the
// NextProtos of the configuration it holds, and a configuration shared
// with an HTTP/1-only Transport would then make that one's connections
// negotiate HTTP/2, which it does not speak ("malformed HTTP response").
// Its other
// settings are those of http.DefaultTransport: proxies from the
// environment, 100 idle connections kept for 90 s, a TLS handshake
// timeout of 10 s. HTTP/2 without TLS (h2c) is not attempted.
func Transport(dial func(ctx context.Context, network, address string) (net.Conn, error), tlsConfig *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
		TLSClientConfig:       tlsConfig.Clone(),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}
