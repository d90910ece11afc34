package pgxnet_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/integration/pgxnet"
)

// A pgxpool that looks names up in a DNS cache and dials with nettune.
func ExampleDialFunc() {
	cache, err := dnscache.New()
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	d, err := dialer.New()
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig("postgres://app@db.internal:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	cfg.ConnConfig.DialFunc = pgxnet.DialFunc(d.DialContext)
	cfg.ConnConfig.LookupFunc = cache.LookupHost // pgx resolves before it dials
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
}
