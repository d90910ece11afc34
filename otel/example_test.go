package nettuneotel_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nettune/nettune/latency"
	nettuneotel "github.com/nettune/nettune/otel"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func Example() {
	h, err := latency.New()
	if err != nil {
		panic(err)
	}
	h.Record(300 * time.Millisecond)
	h.Record(2 * time.Second)

	var p nettuneotel.Producer
	if err := p.TrackHistogram("http.client.request.duration", "Duration of HTTP client requests.", h.Snapshot); err != nil {
		panic(err)
	}
	// In a program: metric.NewPeriodicReader(exporter, metric.WithProducer(&p)).
	reader := metric.NewManualReader(metric.WithProducer(&p))
	provider := metric.NewMeterProvider(metric.WithReader(reader))
	defer func() {
		if err := provider.Shutdown(context.Background()); err != nil {
			panic(err)
		}
	}()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	m := rm.ScopeMetrics[0].Metrics[0]
	dp := m.Data.(metricdata.ExponentialHistogram[float64]).DataPoints[0]
	lo, _ := dp.Min.Value()
	hi, _ := dp.Max.Value()
	fmt.Printf("%s (%s): count %d, sum %v, min %v, max %v\n", m.Name, m.Unit, dp.Count, dp.Sum, lo, hi)
	// At the default scale 6, 0.3 s to 2 s spans 176 buckets: more than
	// the 160 the SDK allows by default, so the producer halves the
	// resolution once.
	fmt.Printf("scale %d, at most 160 buckets: %v\n", dp.Scale, len(dp.PositiveBucket.Counts) <= 160)
	// Output:
	// http.client.request.duration (s): count 2, sum 2.3, min 0.3, max 2
	// scale 5, at most 160 buckets: true
}
