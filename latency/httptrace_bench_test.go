package latency_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nettune/nettune/latency"
)

// BenchmarkHTTPStages is a keep-alive GET on loopback, without and with
// every stage timed into a histogram: what HTTPStages adds to a request.
func BenchmarkHTTPStages(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(hello))
	defer srv.Close()
	newStages := func(b *testing.B) *latency.HTTPStages {
		var h [6]*latency.Histogram
		for i := range h {
			var err error
			if h[i], err = latency.New(); err != nil {
				b.Fatal(err)
			}
		}
		return &latency.HTTPStages{DNS: h[0], Connect: h[1], TLS: h[2], FirstByte: h[3], Server: h[4], Total: h[5]}
	}
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("stages=%v", on), func(b *testing.B) {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			var rt http.RoundTripper = tr
			if on {
				rt = newStages(b).Transport(tr)
			}
			c := &http.Client{Transport: rt}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
