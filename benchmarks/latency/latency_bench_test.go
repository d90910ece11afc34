// Package latencybench compares latency.Histogram with HdrHistogram-go,
// DataDog's DDSketch and Prometheus native histograms: recording (serial
// and from all cores into one histogram), quantile, merge, encoding and
// memory, on the same latency-like values.
package latencybench

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nettune/nettune/latency"
)

// latencyLike draws n values: a log-normal body around 400µs plus a 1%
// heavy (Pareto) tail reaching seconds, capped at an hour.
func latencyLike(seed uint64, n int) []int64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	vs := make([]int64, n)
	for i := range vs {
		if rng.IntN(100) == 0 {
			vs[i] = int64(2e6 / math.Pow(rng.Float64(), 1/1.2))
		} else {
			vs[i] = int64(math.Exp(math.Log(400e3) + 0.6*rng.NormFloat64()))
		}
		vs[i] = min(max(vs[i], 1), int64(time.Hour))
	}
	return vs
}

const (
	ring      = 1 << 12 // values cycled through by the record benchmarks
	filled    = 1_000_000
	hdrSigFig = 3 // 0.1%: HdrHistogram's usual setting
	ddAcc     = 0.01
	// Prometheus native histogram at schema 6, the same buckets as ours.
	promFactor = 1.011
)

var values = latencyLike(1, ring)

// recorder is what each implementation offers to a benchmark.
type recorder interface{ record(v int64) }

type nettune struct{ h *latency.Histogram }

func (r nettune) record(v int64) { r.h.Record(time.Duration(v)) }

type nettuneRecorder struct{ r *latency.Recorder }

func (r nettuneRecorder) record(v int64) { r.r.Record(time.Duration(v)) }

func newNettuneRecorder(tb testing.TB) *latency.Recorder {
	r, err := latency.NewRecorder()
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

type hdr struct{ h *hdrhistogram.Histogram }

func (r hdr) record(v int64) { _ = r.h.RecordValue(v) }

type lockedHdr struct {
	mu sync.Mutex // guards h: HdrHistogram is not safe for concurrent use
	h  *hdrhistogram.Histogram
}

func (r *lockedHdr) record(v int64) {
	r.mu.Lock()
	_ = r.h.RecordValue(v)
	r.mu.Unlock()
}

type dd struct{ s *ddsketch.DDSketch }

func (r dd) record(v int64) { _ = r.s.Add(float64(v)) }

type lockedDD struct {
	mu sync.Mutex // guards s: DDSketch is not safe for concurrent use
	s  *ddsketch.DDSketch
}

func (r *lockedDD) record(v int64) {
	r.mu.Lock()
	_ = r.s.Add(float64(v))
	r.mu.Unlock()
}

type prom struct{ h prometheus.Histogram }

func (r prom) record(v int64) { r.h.Observe(float64(v)) }

func newNettune(tb testing.TB) *latency.Histogram {
	h, err := latency.New()
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func newHdr() *hdrhistogram.Histogram { return hdrhistogram.New(1, int64(time.Hour), hdrSigFig) }

func newDD(tb testing.TB) *ddsketch.DDSketch {
	s, err := ddsketch.NewDefaultDDSketch(ddAcc)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newProm() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bench_latency_nanoseconds", Help: "benchmark", NativeHistogramBucketFactor: promFactor})
}

type impl struct {
	name     string
	serial   func(testing.TB) recorder
	parallel func(testing.TB) recorder
}

var impls = []impl{
	{"nettune", func(tb testing.TB) recorder { return nettune{newNettune(tb)} }, func(tb testing.TB) recorder { return nettune{newNettune(tb)} }},
	// The interval Recorder, the exact-interval path: atomic adds to register in
	// the current phase and to record (the sum, then the count).
	{"nettune-recorder", func(tb testing.TB) recorder { return nettuneRecorder{newNettuneRecorder(tb)} }, func(tb testing.TB) recorder { return nettuneRecorder{newNettuneRecorder(tb)} }},
	{"hdrhistogram", func(testing.TB) recorder { return hdr{newHdr()} }, func(testing.TB) recorder { return &lockedHdr{h: newHdr()} }},
	{"ddsketch", func(tb testing.TB) recorder { return dd{newDD(tb)} }, func(tb testing.TB) recorder { return &lockedDD{s: newDD(tb)} }},
	{"prometheus", func(testing.TB) recorder { return prom{newProm()} }, func(testing.TB) recorder { return prom{newProm()} }},
}

func BenchmarkRecord(b *testing.B) {
	for _, im := range impls {
		b.Run("impl="+im.name, func(b *testing.B) {
			r := im.serial(b)
			for _, v := range values { // warm: allocate what the values touch
				r.record(v)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.record(values[i&(ring-1)])
				i++
			}
		})
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	for _, im := range impls {
		b.Run("impl="+im.name, func(b *testing.B) {
			r := im.parallel(b)
			for _, v := range values {
				r.record(v)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(ring)
				for pb.Next() {
					r.record(values[i&(ring-1)])
					i++
				}
			})
		})
	}
}

// full holds each implementation filled with the same million values.
type full struct {
	nettune *latency.Snapshot
	live    *latency.Histogram
	hdr     *hdrhistogram.Histogram
	dd      *ddsketch.DDSketch
}

var (
	fullOnce sync.Once
	fullA    full
	fullB    full
)

func fill(tb testing.TB, seed uint64) full {
	vs := latencyLike(seed, filled)
	f := full{live: newNettune(tb), hdr: newHdr(), dd: newDD(tb)}
	for _, v := range vs {
		f.live.RecordValue(v)
		_ = f.hdr.RecordValue(v)
		_ = f.dd.Add(float64(v))
	}
	f.nettune = f.live.Snapshot()
	return f
}

func filledPair(tb testing.TB) (full, full) {
	fullOnce.Do(func() { fullA, fullB = fill(tb, 2), fill(tb, 3) })
	return fullA, fullB
}

func BenchmarkQuantile(b *testing.B) {
	f, _ := filledPair(b)
	b.Run("impl=nettune", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = f.nettune.Quantile(0.99)
		}
	})
	b.Run("impl=hdrhistogram", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = f.hdr.ValueAtQuantile(99)
		}
	})
	b.Run("impl=ddsketch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = f.dd.GetValueAtQuantile(0.99)
		}
	})
}

// BenchmarkSnapshot is the cost of freezing a live nettune histogram for
// reading (summing its shards), paid once per batch of quantile queries.
// HdrHistogram and DDSketch answer from their live state instead.
func BenchmarkSnapshot(b *testing.B) {
	f, _ := filledPair(b)
	b.Run("impl=nettune", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = f.live.Snapshot()
		}
	})
}

func BenchmarkMax(b *testing.B) {
	f, _ := filledPair(b)
	b.Run("impl=nettune", func(b *testing.B) {
		for b.Loop() {
			_ = f.nettune.Max()
		}
	})
	b.Run("impl=hdrhistogram", func(b *testing.B) {
		for b.Loop() {
			_ = f.hdr.Max()
		}
	})
	b.Run("impl=ddsketch", func(b *testing.B) {
		for b.Loop() {
			_, _ = f.dd.GetMaxValue()
		}
	})
}

// BenchmarkMerge adds one filled histogram into an accumulator, as
// HdrHistogram's Merge and DDSketch's MergeWith do in place; for nettune
// that is Snapshot.Add. "nettune-new" is Snapshot.Merge, which returns a
// new snapshot and leaves both inputs alone.
func BenchmarkMerge(b *testing.B) {
	x, y := filledPair(b)
	b.Run("impl=nettune", func(b *testing.B) {
		acc, err := (&latency.Snapshot{}).Merge(x.nettune)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := acc.Add(y.nettune); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=nettune-new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := x.nettune.Merge(y.nettune); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=hdrhistogram", func(b *testing.B) {
		dst := newHdr()
		b.ReportAllocs()
		for b.Loop() {
			dst.Merge(y.hdr)
		}
	})
	b.Run("impl=ddsketch", func(b *testing.B) {
		dst := newDD(b)
		b.ReportAllocs()
		for b.Loop() {
			if err := dst.MergeWith(y.dd); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMarshal(b *testing.B) {
	f, _ := filledPair(b)
	b.Run("impl=nettune", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			buf, err := f.nettune.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			n = len(buf)
		}
		b.ReportMetric(float64(n), "encoded-bytes")
	})
	b.Run("impl=hdrhistogram", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			buf, err := f.hdr.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
			if err != nil {
				b.Fatal(err)
			}
			n = len(buf)
		}
		b.ReportMetric(float64(n), "encoded-bytes")
	})
	b.Run("impl=ddsketch", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			var buf []byte
			f.dd.Encode(&buf, false)
			n = len(buf)
		}
		b.ReportMetric(float64(n), "encoded-bytes")
	})
}

// typical draws n values spread log-uniformly over 10µs-100ms: a typical
// span of network latencies, every bucket in it used.
func typical(seed uint64, n int) []int64 {
	rng := rand.New(rand.NewPCG(seed, 2))
	vs := make([]int64, n)
	for i := range vs {
		vs[i] = int64(10e3 * math.Pow(1e4, rng.Float64()))
	}
	return vs
}

// BenchmarkFootprint reports the heap a histogram holding a million
// values occupies ("heap-bytes"): "typical" spans 10µs-100ms, "wide" is
// the latency-like set of the other benchmarks (about 20µs to seconds).
// For nettune, "one-writer" fills it from one goroutine (one shard in use)
// and "many-writers" from 64 goroutines (every shard in use, the
// busy-server case).
func BenchmarkFootprint(b *testing.B) {
	for _, set := range []struct {
		name string
		vs   []int64
	}{{"typical", typical(4, filled)}, {"wide", latencyLike(4, filled)}} {
		b.Run("set="+set.name, func(b *testing.B) { footprint(b, set.vs) })
	}
}

func footprint(b *testing.B, vs []int64) {
	measure := func(b *testing.B, build func() any) {
		var held any
		var n uint64
		for b.Loop() {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			held = build()
			runtime.GC()
			runtime.ReadMemStats(&after)
			n = after.HeapAlloc - before.HeapAlloc
			runtime.KeepAlive(held)
			held = nil
		}
		b.ReportMetric(float64(n), "heap-bytes")
	}
	b.Run("impl=nettune/one-writer", func(b *testing.B) {
		measure(b, func() any {
			h := newNettune(b)
			for _, v := range vs {
				h.RecordValue(v)
			}
			return h
		})
	})
	b.Run("impl=nettune/many-writers", func(b *testing.B) {
		measure(b, func() any {
			h := newNettune(b)
			var wg sync.WaitGroup
			for w := range 64 {
				wg.Go(func() {
					for i := w; i < len(vs); i += 64 {
						h.RecordValue(vs[i])
					}
				})
			}
			wg.Wait()
			return h
		})
	})
	b.Run("impl=hdrhistogram", func(b *testing.B) {
		measure(b, func() any {
			h := newHdr()
			for _, v := range vs {
				_ = h.RecordValue(v)
			}
			return h
		})
	})
	b.Run("impl=ddsketch", func(b *testing.B) {
		measure(b, func() any {
			s := newDD(b)
			for _, v := range vs {
				_ = s.Add(float64(v))
			}
			return s
		})
	})
}
