package grpcnet_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/integration/grpcnet"
	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/sockopt"
)

// A gRPC server and client with the keep-alive of the seed (a ping every
// 10 s, 5 s to answer, with or without calls), over a nettune listener and
// a nettune dialer that resolves with a DNS cache. Each side's
// TCP_USER_TIMEOUT is set to the value grpc-go will set anyway.
func Example() {
	// Server.
	serverKeepalive := keepalive.ServerParameters{Time: time.Minute, Timeout: 10 * time.Second}
	clientKeepalive := keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}
	sut, _ := grpcnet.ServerUserTimeout(serverKeepalive)
	cfg, err := listener.New(listener.ConnSockopt(sockopt.UserTimeout(sut)))
	if err != nil {
		log.Fatal(err)
	}
	l, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.KeepaliveParams(serverKeepalive),
		grpc.KeepaliveEnforcementPolicy(grpcnet.EnforcementPolicy(clientKeepalive)))
	healthgrpc.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(l)
	defer srv.Stop()

	// Client.
	cache, err := dnscache.New(dnscache.Static(map[string][]netip.Addr{"api.example": {netip.MustParseAddr("127.0.0.1")}}))
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	cut, _ := grpcnet.ClientUserTimeout(clientKeepalive)
	d, err := dialer.New(dialer.Resolver(cache), dialer.Sockopt(sockopt.UserTimeout(cut)))
	if err != nil {
		log.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	cc, err := grpc.NewClient(grpcnet.Target(net.JoinHostPort("api.example", port)),
		append(grpcnet.DialOptions(d.DialContext, clientKeepalive),
			grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()

	resp, err := healthgrpc.NewHealthClient(cc).Check(context.Background(), &healthgrpc.HealthCheckRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetStatus())
	// Output: SERVING
}
