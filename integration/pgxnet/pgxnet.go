// Package pgxnet connects pgx (github.com/jackc/pgx/v5) and pgxpool
// through nettune's dialer and DNS cache.
//
// pgx looks a host name up before it dials, with ConnConfig.LookupFunc
// (net.DefaultResolver.LookupHost by default), and then calls
// ConnConfig.DialFunc with each address in turn: a DialFunc alone is handed
// IP addresses, so a dialer.Resolver is never asked. Set both:
//
//	cfg, err := pgxpool.ParseConfig("postgres://app@db.internal/app")
//	cfg.ConnConfig.DialFunc = pgxnet.DialFunc(d.DialContext)
//	cfg.ConnConfig.LookupFunc = cache.LookupHost // a *dnscache.Cache
//	pool, err := pgxpool.NewWithConfig(ctx, cfg)
//
// For pgx.Connect it is pgx.ConnConfig's DialFunc and LookupFunc (from
// pgx.ParseConfig); for pgxpool they are in cfg.ConnConfig, not in cfg.
// pgx then tries the addresses one after another, in the cache's order,
// as it does with its own resolver.
//
// Other things to know:
//   - A host that is a directory (host=/var/run/postgresql) is a unix
//     socket: pgx skips LookupFunc and calls DialFunc with network "unix",
//     which a nettune dialer refuses (it dials TCP); [DialFunc] dials those
//     with net.Dialer.
//   - connect_timeout still applies with a DialFunc of one's own: pgx puts
//     it on the context. pgx's own dialer leaves TCP keep-alive at Go's
//     defaults (15 s); set dialer.KeepAliveConfig to choose.
//   - Cancel requests (a query's context canceled) dial a new connection
//     with the same DialFunc.
//   - TLS (sslmode) is negotiated by pgx on the connection DialFunc returns,
//     so the dialer does no TLS.
package pgxnet

import (
	"context"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// DialFunc returns a pgconn.DialFunc for ConnConfig.DialFunc that dials
// TCP with dial, such as a dialer.Dialer's DialContext, and unix sockets
// with a zero net.Dialer.
func DialFunc(dial func(ctx context.Context, network, address string) (net.Conn, error)) pgconn.DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if network == "unix" {
			var d net.Dialer
			return d.DialContext(ctx, network, address)
		}
		return dial(ctx, network, address)
	}
}
