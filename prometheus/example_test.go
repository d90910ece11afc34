package nettuneprom_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nettune/nettune/latency"
	nettuneprom "github.com/nettune/nettune/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

func Example() {
	h, err := latency.New()
	if err != nil {
		panic(err)
	}
	h.Record(300 * time.Millisecond)
	h.Record(2 * time.Second)

	c, err := nettuneprom.NewHistogramCollector(nettuneprom.HistogramOpts{
		Name:    "backend_request_duration_seconds",
		Help:    "Time to get a response from the backend.",
		Buckets: []float64{0.25, 0.5, 1},
	})
	if err != nil {
		panic(err)
	}
	if err := c.Track(h.Snapshot); err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	// What a Prometheus server that scrapes only classic buckets sees (in
	// a program: http.Handle("/metrics", promhttp.HandlerFor(reg, ...))).
	fams, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	var b strings.Builder
	for _, mf := range fams {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			panic(err)
		}
	}
	fmt.Fprint(os.Stdout, b.String())
	// Output:
	// # HELP backend_request_duration_seconds Time to get a response from the backend.
	// # TYPE backend_request_duration_seconds histogram
	// backend_request_duration_seconds_bucket{le="0.25"} 0
	// backend_request_duration_seconds_bucket{le="0.5"} 1
	// backend_request_duration_seconds_bucket{le="1"} 1
	// backend_request_duration_seconds_bucket{le="+Inf"} 2
	// backend_request_duration_seconds_sum 2.3
	// backend_request_duration_seconds_count 2
}
