package handoff_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/nettune/nettune/integration/handoff"
	"github.com/nettune/nettune/listener"
)

// An http.Server serves the connections queued on a listener that is
// retired with Drain, rather than their being reset.
func Example() {
	cfg, err := listener.New()
	if err != nil {
		log.Fatal(err)
	}
	l, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}

	// A client connects and sends a request, which nobody accepts yet.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n")
	for n := 0; n == 0; { // wait until the kernel has queued it
		if n, err = l.QueueLen(); err != nil {
			log.Fatal(err)
		}
	}

	hl := handoff.New(l.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served")
	})}
	go srv.Serve(hl)

	queued, err := l.Drain()
	if err != nil {
		log.Fatal(err)
	}
	for _, qc := range queued {
		if err := hl.Put(qc); err != nil {
			log.Fatal(err)
		}
	}

	resp, err := io.ReadAll(c)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(resp[:len("HTTP/1.1 200 OK")]))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: HTTP/1.1 200 OK
}
