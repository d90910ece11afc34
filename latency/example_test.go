package latency_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/nettune/nettune/latency"
)

func Example() {
	h, err := latency.New()
	if err != nil {
		panic(err)
	}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	s := h.Snapshot()
	fmt.Println("count:", s.Count())
	fmt.Println("min:", s.Min(), "max:", s.Max(), "mean:", s.Mean())
	fmt.Println("p99 within 0.55% of 990µs:", s.Quantile(0.99) > 984*time.Microsecond && s.Quantile(0.99) < 996*time.Microsecond)
	// Output:
	// count: 1000
	// min: 1µs max: 1ms mean: 500.5µs
	// p99 within 0.55% of 990µs: true
}

func ExampleSnapshot_Format() {
	h, err := latency.New(latency.Scale(8))
	if err != nil {
		panic(err)
	}
	for _, ms := range []int{1, 2, 2, 3, 3, 3, 4, 4, 4, 4} {
		h.Record(time.Duration(ms) * time.Millisecond)
	}
	fmt.Printf("%v", h.Snapshot())
	// Output:
	// count=10 min=1ms mean=3ms stddev=998.6µs max=4ms (±0.14%)
	//   p50            3ms
	//   p90        3.996ms
	//   p95            4ms
	//   p99            4ms
	//   p99.9          4ms
	//   p99.99         4ms
	//   max            4ms
}

func ExampleRecorder() {
	var r latency.Recorder // the zero Recorder is ready to use
	r.Record(3 * time.Millisecond)
	r.Record(5 * time.Millisecond)
	first := r.Interval() // writers may keep recording meanwhile
	r.Record(7 * time.Millisecond)
	second := r.Interval()
	fmt.Println(first.Count(), first.Max(), second.Count(), second.Max())
	// Output: 2 5ms 1 7ms
}

func ExampleHistogram_RecordCorrected() {
	h, _ := latency.New() // without options, New never fails
	// One request every 10ms; one took 50ms, stalling the four behind it.
	if err := h.RecordCorrected(50*time.Millisecond, 10*time.Millisecond); err != nil {
		panic(err) // only past MaxBulkCount values taken in bulk
	}
	s := h.Snapshot()
	fmt.Println(s.Count(), s.Min(), s.Max())
	// Output: 5 10ms 50ms
}

func ExampleSnapshot_MarshalBinary() {
	var a, b latency.Histogram // zero Histograms record at the default scale
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	wire, err := b.Snapshot().MarshalBinary() // shipped from another machine
	if err != nil {
		panic(err)
	}
	var remote latency.Snapshot
	if err := remote.UnmarshalBinary(wire); err != nil {
		panic(err)
	}
	all, err := a.Snapshot().Merge(&remote)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(wire) < 40, all.Count(), all.Mean())
	// Output: true 2 2ms
}

func ExampleProbe_Connect() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	h, _ := latency.New() // without options, New never fails
	p := latency.Probe{Sink: h, Timeout: 5 * time.Second}
	var d net.Dialer
	res, err := p.Connect(context.Background(), 10, d.DialContext, "tcp", ln.Addr().String())
	fmt.Println(err, res.Samples, res.Failures, res.Timeouts, h.Snapshot().Count())
	// Output: <nil> 10 0 0 10
}

func ExampleSnapshot_Quantile() {
	var h latency.Histogram
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := h.Snapshot()
	fmt.Println(s.Quantile(0.5), s.Quantile(1)) // p50 within 0.55% of 50ms; p100 is Max
	fmt.Println(s.Quantile(99))                 // a percentile, not a fraction: refused
	// Output:
	// 50.05529ms 100ms
	// -1ns
}

func ExampleNew_optionError() {
	_, err := latency.New(latency.Scale(9))
	var oe *latency.OptionError
	if errors.As(err, &oe) {
		fmt.Println("refused:", oe.Option)
	}
	fmt.Println(err)
	// Output:
	// refused: latency.Scale(9)
	// latency.Scale(9): scale must be between 0 and 8
}
