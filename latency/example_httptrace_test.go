package latency_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/nettune/nettune/latency"
)

// Each stage of an HTTP client's requests goes into its own histogram.
// The three requests share one keep-alive connection: one connect, and
// three samples of the time to first byte and of the total.
func ExampleHTTPStages() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()

	var connect, firstByte, total latency.Histogram // zero Histograms are ready to use
	stages := &latency.HTTPStages{Connect: &connect, FirstByte: &firstByte, Total: &total}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: stages.Transport(tr)}

	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil { // Total ends at the body's end
			log.Fatal(err)
		}
		resp.Body.Close()
	}

	st := stages.Stats()
	fmt.Printf("requests %d, reused %d, new connections %d\n", st.Requests, st.Reused, st.Conns)
	c, f, t := connect.Snapshot(), firstByte.Snapshot(), total.Snapshot()
	fmt.Printf("samples: connect %d, first byte %d, total %d\n", c.Count(), f.Count(), t.Count())
	// Output:
	// requests 3, reused 2, new connections 1
	// samples: connect 1, first byte 3, total 3
}
