// Package grpcnet runs gRPC (google.golang.org/grpc) over nettune's dialer
// and listener, and says which TCP_USER_TIMEOUT each side ends up with.
//
// # Dialing
//
// grpc.NewClient resolves a target with its "dns" scheme unless told
// otherwise: it looks the name up itself and calls the context dialer with
// an IP address, so a dialer.Resolver (a dnscache.Cache, say) is never
// asked. A "passthrough:///" target, which [Target] makes, hands the name to
// the dialer unresolved:
//
//	cache, err := dnscache.New()
//	d, err := dialer.New(dialer.Resolver(cache),
//		dialer.Sockopt(sockopt.UserTimeout(kp.Timeout))) // see below
//	cc, err := grpc.NewClient(grpcnet.Target("api.internal:443"),
//		append(grpcnet.DialOptions(d.DialContext, kp), grpc.WithTransportCredentials(creds))...)
//
// # Serving
//
// A listener.Listener is a net.Listener, so grpc.Server.Serve takes it as
// it is. A client that pings every kp.Time needs a server whose enforcement
// policy allows it ([EnforcementPolicy]); grpc's default allows one ping
// in five minutes and closes the connection of a client that pings more
// often with GOAWAY "too_many_pings".
//
// # TCP_USER_TIMEOUT
//
// grpc-go sets TCP_USER_TIMEOUT itself on every connection, after the
// dialer or listener has set its options, and so silently replaces a
// dialer.Sockopt(sockopt.UserTimeout(…)) or listener.ConnSockopt(…):
//   - a client with keep-alive sets it to the keep-alive timeout
//     (keepalive.ClientParameters.Timeout, 20 s when zero); a client without
//     keep-alive leaves it alone;
//   - a server sets it to keepalive.ServerParameters.Timeout, 20 s when
//     zero, even when no keep-alive was configured at all, since the
//     server's keep-alive is on by default (every two hours).
//
// [ClientUserTimeout] and [ServerUserTimeout] return those values. Give the
// dialer and the listener the same ones, so that a connection's timeout
// does not change under it and sockopt.Verify on a live connection agrees
// with the configuration; the package's tests show both.
package grpcnet

import (
	"cmp"
	"context"
	"math"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// grpc-go's constants (internal/transport/defaults.go, internal/keepalive):
// a ping interval of infinity turns keep-alive off, a zero timeout means
// 20 s, and a client cannot ping more often than every 10 s.
const (
	infinity                = time.Duration(math.MaxInt64)
	defaultKeepaliveTimeout = 20 * time.Second
	minClientPingTime       = 10 * time.Second
)

// Target returns the gRPC target "passthrough:///" + address, which makes
// grpc.NewClient pass address (host:port) unresolved to the context dialer,
// so that the dialer's resolver, such as a dnscache.Cache, looks it up.
// With a plain "host:port" target grpc uses its "dns" resolver, which
// resolves the name with net.DefaultResolver and dials the addresses; the
// dialer's resolver is then bypassed. Passthrough gives up what the dns
// resolver does for load balancing across all the addresses of a name
// (round_robin sees a single address); the dialer still races the
// addresses of each connection (Happy Eyeballs).
func Target(address string) string {
	return "passthrough:///" + address
}

// DialOptions returns the options that make a grpc.ClientConn dial its
// connections with dial, such as a dialer.Dialer's DialContext (the network
// is "tcp"), and keep them alive with kp.
//
// A zero kp leaves keep-alive off, grpc's default, and adds no keep-alive
// option: grpc.WithKeepaliveParams would turn keep-alive on even for a zero
// value, with pings every 10 s. Otherwise kp is passed to
// grpc.WithKeepaliveParams, which raises a Time under 10 s to 10 s.
func DialOptions(dial func(ctx context.Context, network, address string) (net.Conn, error), kp keepalive.ClientParameters) []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, address string) (net.Conn, error) {
			return dial(ctx, "tcp", address)
		}),
	}
	if kp != (keepalive.ClientParameters{}) {
		opts = append(opts, grpc.WithKeepaliveParams(kp))
	}
	return opts
}

// EnforcementPolicy returns the keep-alive policy a server needs to accept
// the pings of clients that use kp: pings as often as every kp.Time (10 s
// at least, as grpc-go's client sends them), and without active calls when
// kp.PermitWithoutStream is set. Pass it to grpc.KeepaliveEnforcementPolicy.
func EnforcementPolicy(kp keepalive.ClientParameters) keepalive.EnforcementPolicy {
	return keepalive.EnforcementPolicy{
		MinTime:             max(kp.Time, minClientPingTime),
		PermitWithoutStream: kp.PermitWithoutStream,
	}
}

// ClientUserTimeout returns the TCP_USER_TIMEOUT that grpc-go sets on each
// connection of a client made with DialOptions(dial, kp), and false when it
// sets none (keep-alive off, kp zero): kp.Timeout, or 20 s when it is zero.
func ClientUserTimeout(kp keepalive.ClientParameters) (time.Duration, bool) {
	if kp == (keepalive.ClientParameters{}) || kp.Time == infinity {
		return 0, false
	}
	return cmp.Or(kp.Timeout, defaultKeepaliveTimeout), true
}

// ServerUserTimeout returns the TCP_USER_TIMEOUT that grpc-go sets on each
// connection accepted by a server made with grpc.KeepaliveParams(kp), or
// with no keep-alive option (kp zero): kp.Timeout, or 20 s when it is zero.
// It returns false only when kp.Time is grpc's infinity, which turns the
// server's keep-alive off.
func ServerUserTimeout(kp keepalive.ServerParameters) (time.Duration, bool) {
	if kp.Time == infinity {
		return 0, false
	}
	return cmp.Or(kp.Timeout, defaultKeepaliveTimeout), true
}
