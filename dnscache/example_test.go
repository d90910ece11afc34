package dnscache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nettune/nettune/dnscache"
)

// A Static source answers from a map, so that the cache can be tried
// without a DNS server; a real program would use ResolvConf("") or System.
func Example() {
	c, err := dnscache.New(
		dnscache.Static(map[string][]netip.Addr{"api.test": {netip.MustParseAddr("127.0.0.1")}}),
		dnscache.MaxStale(10*time.Minute),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	for range 3 {
		addrs, err := c.LookupNetIP(ctx, "ip4", "api.test")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(addrs)
	}
	_, err = c.LookupNetIP(ctx, "ip4", "missing.test")
	var dnsErr *net.DNSError
	fmt.Println(errors.As(err, &dnsErr) && dnsErr.IsNotFound)
	st := c.Stats()
	fmt.Printf("hits=%d misses=%d\n", st.Hits, st.Misses)
	// Output:
	// [127.0.0.1]
	// [127.0.0.1]
	// [127.0.0.1]
	// true
	// hits=2 misses=2
}

// A test of code that takes a resolver can hand it a cache over a Static
// source on a fake clock, and watch answers expire.
func ExampleStatic() {
	var moved atomic.Int64 // how far the test moved its clock
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return start.Add(time.Duration(moved.Load())) }
	c, err := dnscache.New(
		dnscache.Static(map[string][]netip.Addr{
			"db.test": {netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")},
		}),
		dnscache.TTL(time.Minute),
		dnscache.Clock(clock),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	v6, err := c.LookupNetIP(ctx, "ip6", "DB.test.") // any case, with or without the final dot
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v6)
	if _, err := c.LookupNetIP(ctx, "ip6", "db.test"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("lookups at the source:", c.Stats().Lookups)
	moved.Add(int64(time.Minute)) // the answer expires
	if _, err := c.LookupNetIP(ctx, "ip6", "db.test"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("lookups at the source:", c.Stats().Lookups)
	// Output:
	// [2001:db8::10]
	// lookups at the source: 1
	// lookups at the source: 2
}

// A refused option is an *OptionError that names it.
func ExampleNew_optionError() {
	_, err := dnscache.New(dnscache.MaxTTL(time.Minute), dnscache.MinTTL(time.Hour))
	fmt.Println(err)
	var oe *dnscache.OptionError
	if errors.As(err, &oe) {
		fmt.Println(oe.Option, oe.Conflicts)
	}
	// Output:
	// dnscache.MinTTL(1h0m0s): above MaxTTL (1m0s) (conflicts with dnscache.MaxTTL(1m0s))
	// dnscache.MinTTL(1h0m0s) [dnscache.MaxTTL(1m0s)]
}

// A hot caller keeps one buffer and appends into it: no allocation when
// the answer is cached.
func ExampleCache_AppendNetIP() {
	c, err := dnscache.New(dnscache.Static(map[string][]netip.Addr{"api.test": {netip.MustParseAddr("127.0.0.1")}}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	buf := make([]netip.Addr, 0, 8)
	for range 2 {
		buf, err = c.AppendNetIP(context.Background(), buf[:0], "ip", "api.test")
		if err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(buf)
	// Output: [127.0.0.1]
}

// Wiring the cache into an http.Transport: look the host up in the cache,
// then dial one of its addresses. The nettune dialer does this (with Happy
// Eyeballs) when given the cache with dialer.Resolver.
func Example_httpTransport() {
	c, err := dnscache.New(dnscache.Static(map[string][]netip.Addr{"api.test": {netip.MustParseAddr("127.0.0.1")}}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from ", r.Host)
	}))
	defer backend.Close()
	_, port, err := net.SplitHostPort(backend.Listener.Addr().String())
	if err != nil {
		log.Fatal(err)
	}

	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			addrs, err := c.LookupNetIP(ctx, "ip", host)
			if err != nil {
				return nil, err
			}
			p, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, netip.AddrPortFrom(addrs[0], uint16(p)).String())
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://api.test:" + port + "/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, string(body)[:len("hello from api.test")])
	// Output: 200 hello from api.test
}

// The default source is a net.Resolver, with a TTL chosen by the caller
// since net does not report the records' TTLs. (This example asks the
// system's DNS, so it has no output to check.)
func ExampleSystem() {
	c, err := dnscache.New(dnscache.System(net.DefaultResolver), dnscache.TTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	hosts, err := c.LookupHost(context.Background(), "go.dev")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(hosts)
}
