package redisnet_test

import (
	"context"
	"crypto/tls"
	"log"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/integration/redisnet"
)

// A go-redis client that resolves with a DNS cache, dials with nettune,
// keeps the TCP keep-alive of go-redis's own dialer and speaks TLS.
func ExampleDialer() {
	cache, err := dnscache.New()
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	d, err := dialer.New(dialer.Resolver(cache),
		dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}))
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:   "cache.internal:6380",
		Dialer: redisnet.Dialer(d.DialContext, &tls.Config{MinVersion: tls.VersionTLS12}),
	})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		log.Print(err)
	}
}
