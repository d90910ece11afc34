// Package redisnet connects go-redis (github.com/redis/go-redis/v9)
// through nettune's dialer.
//
// go-redis takes a dial function in Options.Dialer (and in ClusterOptions,
// FailoverOptions, RingOptions and UniversalOptions):
//
//	d, err := dialer.New(dialer.Resolver(cache),
//		dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}))
//	rdb := redis.NewClient(&redis.Options{Addr: "cache.internal:6379", Dialer: redisnet.Dialer(d.DialContext, nil)})
//
// Three things change when Dialer is set, which [Dialer] takes care of or
// the example above shows:
//   - Options.TLSConfig is no longer used: go-redis does TLS only in its
//     own default dialer, so a custom one must do the handshake itself or
//     the client speaks plain text to a TLS port. Dialer takes the TLS
//     configuration.
//   - The default dialer's TCP keep-alive (30 s idle, 5 s interval, 3
//     probes) is gone: set it on the nettune dialer with KeepAliveConfig.
//   - Network "unix" (a unix:// URL) reaches the dial function too, and a
//     nettune dialer dials only TCP: Dialer dials unix sockets with
//     net.Dialer.
//
// Options.DialTimeout still applies: go-redis puts it on the context it
// passes to the dial function.
package redisnet

import (
	"context"
	"crypto/tls"
	"net"
)

// Dialer returns a function for go-redis's Options.Dialer that dials TCP
// with dial, such as a dialer.Dialer's DialContext, and, when tlsConfig is
// not nil, makes a TLS handshake with it on the new connection (with the
// host of addr as ServerName when tlsConfig has none), as go-redis's own
// dialer does with Options.TLSConfig. Unix sockets are dialed with a zero
// net.Dialer, without TLS.
func Dialer(dial func(ctx context.Context, network, address string) (net.Conn, error), tlsConfig *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if network == "unix" {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		c, err := dial(ctx, network, addr)
		if err != nil || tlsConfig == nil {
			return c, err
		}
		cfg := tlsConfig
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				c.Close()
				return nil, err
			}
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
}
