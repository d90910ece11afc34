package httpnet_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/integration/httpnet"
	"github.com/nettune/nettune/internal/tlstest"
	"github.com/nettune/nettune/listener"
)

func ExampleTransport() {
	serverTLS, clientTLS, err := tlstest.Configs()
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := listener.New()
	if err != nil {
		log.Fatal(err)
	}
	l, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{TLSConfig: serverTLS, Handler: http.NotFoundHandler()}
	go srv.ServeTLS(l, "", "")
	defer srv.Close()

	d, err := dialer.New()
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: httpnet.Transport(d.DialContext, clientTLS)}
	resp, err := client.Get("https://" + l.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Proto)
	// Output: HTTP/2.0
}
