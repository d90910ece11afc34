package dialer_test

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
	"time"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/sockopt"
)

// Plug a Dialer into http.Transport: every connection the client opens
// gets the keepalive settings and the user timeout.
func Example_httpTransport() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()

	d, err := dialer.New(
		dialer.Timeout(5*time.Second),
		dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}),
		dialer.Sockopt(sockopt.UserTimeout(60*time.Second)),
	)
	if err != nil {
		log.Fatal(err)
	}
	tr := &http.Transport{DialContext: d.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	resp, err := client.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hello
}

// New checks the whole option set before any socket exists: here it
// refuses Multipath TCP together with an option MPTCP does not honour.
func ExampleNew_multipathConflict() {
	_, err := dialer.New(
		dialer.MultipathTCP(true),
		dialer.Sockopt(sockopt.UserTimeout(30*time.Second)),
	)
	var oe *dialer.OptionError
	if errors.As(err, &oe) {
		fmt.Println("refused:", oe.Option)
		fmt.Println("because of:", oe.Conflicts)
	}
	// Output:
	// refused: dialer.MultipathTCP(true)
	// because of: [dialer.Sockopt(TCP_USER_TIMEOUT=30s)]
}

// hosts is an AddrResolver that answers from a fixed table, like a hosts
// file; a DNS cache with a LookupNetIP method plugs in the same way.
type hosts map[string][]netip.Addr

func (h hosts) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	addrs, ok := h[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

// A resolver makes the Dialer race the addresses of a name itself (Happy
// Eyeballs); any type with a LookupNetIP method fits, such as a DNS cache.
func ExampleResolver() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	r := hosts{"db.internal": {netip.MustParseAddr("127.0.0.1")}}
	d, err := dialer.New(dialer.Resolver(r), dialer.FallbackDelay(100*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	c, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort("db.internal", port))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("connected to", c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())

	_, err = d.DialContext(context.Background(), "tcp", net.JoinHostPort("cache.internal", port))
	var dnsErr *net.DNSError
	fmt.Println("unknown name:", errors.As(err, &dnsErr) && dnsErr.IsNotFound)
	// Output:
	// connected to 127.0.0.1
	// unknown name: true
}

// NetDialer hands the configuration to code that insists on a
// *net.Dialer.
func ExampleDialer_NetDialer() {
	d, err := dialer.New(dialer.Timeout(3*time.Second), dialer.Sockopt(sockopt.NotSentLowat(16<<10)))
	if err != nil {
		log.Fatal(err)
	}
	nd := d.NetDialer()
	fmt.Println(nd.Timeout, nd.Control != nil)
	// Output: 3s true
}
