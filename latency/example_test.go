package latency_test

import (
	"context"
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
	h, _ := latency.New(latency.Scale(8))
	for _, ms := range []int{1, 2, 2, 3, 3, 3, 4, 4, 4, 4} {
		h.Record(time.Duration(ms) * time.Millisecond)
	}
	fmt.Printf("%v", h.Snapshot())
	// Output:
	// count=10 min=1ms mean=3ms stddev=998.8µs max=4ms (±0.14%)
	//   p50        3.002ms
	//   p90        3.997ms
	//   p95            4ms
	//   p99            4ms
	//   p99.9          4ms
	//   p99.99         4ms
	//   max            4ms
}

func ExampleRecorder() {
	r, _ := latency.NewRecorder()
	r.Record(3 * time.Millisecond)
	r.Record(5 * time.Millisecond)
	first := r.Interval() // writers may keep recording meanwhile
	r.Record(7 * time.Millisecond)
	second := r.Interval()
	fmt.Println(first.Count(), first.Max(), second.Count(), second.Max())
	// Output: 2 5ms 1 7ms
}

func ExampleHistogram_RecordCorrected() {
	h, _ := latency.New()
	// One request every 10ms; one took 50ms, stalling the four behind it.
	h.RecordCorrected(50*time.Millisecond, 10*time.Millisecond)
	s := h.Snapshot()
	fmt.Println(s.Count(), s.Min(), s.Max())
	// Output: 5 10ms 50ms
}

func ExampleSnapshot_MarshalBinary() {
	a, _ := latency.New()
	b, _ := latency.New()
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	wire, _ := b.Snapshot().MarshalBinary() // shipped from another machine
	var remote latency.Snapshot
	if err := remote.UnmarshalBinary(wire); err != nil {
		panic(err)
	}
	all, _ := a.Snapshot().Merge(&remote)
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
	h, _ := latency.New()
	p := latency.Probe{Sink: h, Timeout: 5 * time.Second}
	var d net.Dialer
	st, err := p.Connect(context.Background(), 10, d.DialContext, "tcp", ln.Addr().String())
	fmt.Println(err, st.Samples, st.Failures, st.Timeouts, h.Snapshot().Count())
	// Output: <nil> 10 0 0 10
}
