package latencybench

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
)

// sharedAtomics is a stand-in for cockroachdb's goodhistogram, which is
// not a Go module one can require (the module proxy has no
// github.com/cockroachdb/goodhistogram): buckets of the Prometheus native
// schema 6 (2^(1/64) apart), found from the value's float64 bits with one
// table load and one compare, and shared by every goroutine: one atomic
// add to the bucket's counter, one to the count and one to the sum per
// value. It keeps no minimum or maximum.
type sharedAtomics struct {
	count  atomic.Uint64
	sum    atomic.Int64
	_      [48]byte // count and sum on a cache line of their own
	counts [64 << promSchema]atomic.Uint64
}

const promSchema = 6

// promCells maps the top 8 bits of a float64 mantissa to the buckets of
// its octave below that cell and the boundary that may lie in it (as
// mantissa bits): cells are narrower than buckets, so at most one does.
var promCells = func() (c [256]struct{ below, bound uint64 }) {
	n := 1 << promSchema
	for cell := range c {
		lo := 1 + float64(cell)/256 // the cell's smallest mantissa
		k := 0
		for k < n && math.Exp2(float64(k)/float64(n)) < lo {
			k++
		}
		b := uint64(math.MaxUint64)
		if k < n {
			b = math.Float64bits(math.Exp2(float64(k)/float64(n))) & (1<<52 - 1)
		}
		c[cell].below, c[cell].bound = uint64(k), b
	}
	return c
}()

func (h *sharedAtomics) record(v int64) {
	f := math.Float64bits(float64(v))
	exp := f>>52 - 1023
	mant := f & (1<<52 - 1)
	x := &promCells[mant>>44]
	// Bucket k of an octave holds mantissas in (2^((k-1)/64), 2^(k/64)].
	i := exp<<promSchema + x.below + (x.bound-mant)>>63
	h.counts[i%uint64(len(h.counts))].Add(1)
	h.count.Add(1)
	h.sum.Add(v)
}

// goroutineCounts is the curve of BenchmarkRecordCurve.
var goroutineCounts = []int{1, 2, 8, 64, 512}

// BenchmarkRecordCurve records into one histogram from 1, 2, 8, 64 and
// 512 goroutines: nettune's Histogram, HdrHistogram behind a sync.Mutex,
// and the shared-atomics stand-in for goodhistogram. With n goroutines a
// multiple of GOMAXPROCS it is b.RunParallel with b.SetParallelism(n /
// GOMAXPROCS); with one goroutine, the b.Loop of BenchmarkRecord.
func BenchmarkRecordCurve(b *testing.B) {
	curveImpls := []struct {
		name string
		make func(testing.TB) recorder
	}{
		{"nettune", func(tb testing.TB) recorder { return nettune{newNettune(tb)} }},
		{"hdr-mutex", func(testing.TB) recorder { return &lockedHdr{h: newHdr()} }},
		{"shared-atomics", func(testing.TB) recorder { return new(sharedAtomics) }},
	}
	procs := runtime.GOMAXPROCS(0)
	for _, n := range goroutineCounts {
		for _, im := range curveImpls {
			b.Run(fmt.Sprintf("goroutines=%d/impl=%s", n, im.name), func(b *testing.B) {
				r := im.make(b)
				for _, v := range values {
					r.record(v)
				}
				b.ReportAllocs()
				if n == 1 {
					i := 0
					for b.Loop() {
						r.record(values[i&(ring-1)])
						i++
					}
					return
				}
				if n%procs != 0 {
					b.Skipf("%d goroutines is not a multiple of GOMAXPROCS=%d", n, procs)
				}
				b.SetParallelism(n / procs)
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
}

// TestSharedAtomicsStandInBucketsAsPrometheus checks the stand-in puts
// values where schema 6 does: bucket k of the octave [2^e, 2^(e+1)) holds
// (2^(e+(k-1)/64), 2^(e+k/64)], checked at the integers either side of
// boundaries from 1 µs to 1 s.
func TestSharedAtomicsStandInBucketsAsPrometheus(t *testing.T) {
	for e := 10; e < 30; e++ {
		for k := range 64 {
			bound := math.Exp2(float64(e) + float64(k)/64)
			for _, v := range []int64{int64(math.Floor(bound)), int64(math.Floor(bound)) + 1} {
				want := e<<promSchema + int(math.Ceil((math.Log2(float64(v))-float64(e))*64))
				if float64(v) == bound || math.Abs(float64(v)-bound) < 1e-6*bound {
					continue // too close to decide with Log2
				}
				h := new(sharedAtomics)
				h.record(v)
				got := -1
				for i := range h.counts {
					if h.counts[i].Load() != 0 {
						got = i
					}
				}
				if got != want {
					t.Fatalf("value %d (bits %d): bucket %d, want %d", v, bits.Len64(uint64(v)), got, want)
				}
			}
		}
	}
}
