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
	"os"
	"path/filepath"
	"time"

	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/internal/dnstest"
)

// loopbackDNS starts a DNS server on 127.0.0.1 that knows api.test and
// writes a resolv.conf naming it; a real program would use ResolvConf("").
func loopbackDNS() (srv *dnstest.Server, resolvConf string, cleanup func()) {
	srv, err := dnstest.Start()
	if err != nil {
		log.Fatal(err)
	}
	srv.SetAddrs("api.test", 30*time.Second, netip.MustParseAddr("127.0.0.1"))
	dir, err := os.MkdirTemp("", "dnscache-example")
	if err != nil {
		log.Fatal(err)
	}
	resolvConf = filepath.Join(dir, "resolv.conf")
	if err := srv.WriteResolvConf(resolvConf); err != nil {
		log.Fatal(err)
	}
	return srv, resolvConf, func() { srv.Close(); os.RemoveAll(dir) }
}

func Example() {
	_, resolvConf, cleanup := loopbackDNS()
	defer cleanup()

	c, err := dnscache.New(dnscache.ResolvConf(resolvConf), dnscache.MaxStale(10*time.Minute))
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

// A hot caller keeps one buffer and appends into it: no allocation when
// the answer is cached.
func ExampleCache_AppendNetIP() {
	_, resolvConf, cleanup := loopbackDNS()
	defer cleanup()
	c, err := dnscache.New(dnscache.ResolvConf(resolvConf))
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
// Eyeballs) when given the cache with dialer.WithResolver.
func Example_httpTransport() {
	_, resolvConf, cleanup := loopbackDNS()
	defer cleanup()
	c, err := dnscache.New(dnscache.ResolvConf(resolvConf))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from ", r.Host)
	}))
	defer backend.Close()
	_, port, _ := net.SplitHostPort(backend.Listener.Addr().String())

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
			return d.DialContext(ctx, network, netip.AddrPortFrom(addrs[0], mustPort(port)).String())
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://api.test:" + port + "/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body)[:len("hello from api.test")])
	// Output: 200 hello from api.test
}

func mustPort(s string) uint16 {
	var p uint16
	if _, err := fmt.Sscan(s, &p); err != nil {
		log.Fatal(err)
	}
	return p
}

// The default source is a net.Resolver, with a TTL chosen by the caller
// since net does not report the records' TTLs.
func ExampleSystem() {
	srv, _, cleanup := loopbackDNS()
	defer cleanup()
	c, err := dnscache.New(dnscache.System(srv.Resolver()), dnscache.TTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	hosts, err := c.LookupHost(context.Background(), "api.test")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(hosts)
	// Output: [127.0.0.1]
}
