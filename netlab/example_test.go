package netlab_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"time"

	"github.com/nettune/nettune/netlab"
)

// A test of a client's timeouts on a path with a 100 ms round trip and 1%
// loss each way: the server on host B, the client on host A. (An example
// with no output is compiled, not run: the lab needs root.)
func Example() {
	lab, err := netlab.New(
		netlab.Path(netlab.Profile{Delay: 50 * time.Millisecond, Loss: 0.01}),
		netlab.Seed(1),
	)
	if err != nil {
		log.Print(err) // in a test: t.Skip(err)
		return
	}
	defer lab.Close()

	server := lab.B()
	ln, err := server.Listen("tcp", netip.AddrPortFrom(server.Addr(), 0).String())
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from B")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	client := &http.Client{
		Transport: &http.Transport{DialContext: lab.A().DialContext},
		Timeout:   2 * time.Second, // the setting under test
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String(), nil)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		log.Fatalf("a 2 s timeout is too short for this path: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// A fresh connection costs two round trips: at least 200 ms here.
	fmt.Printf("%s after %v\n", body, time.Since(start).Round(10*time.Millisecond))

	st := lab.Link(lab.A(), lab.B()).Stats()
	fmt.Printf("a->b: %d packets sent, %d lost, delay p50 %v\n", st.Sent, st.Lost, st.Delay.Quantile(0.5))
}
