package latency

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every reader of a snapshot, a decoded one included, must return in
// bounded time with bounded output, and the readers must agree with each
// other. checkSnapshot calls every exported method of *Snapshot (and
// Histogram.Merge, which reads one) and checks the invariants between
// them; the fuzz targets call it on every snapshot they decode or build.

// readerDeadline bounds how long all readers of one snapshot may take
// together: generous for -race on a loaded 2-core machine, and finite, so
// that a reader that never returns fails the input (a crash the fuzzer
// keeps) instead of hanging the fuzzer.
const readerDeadline = time.Minute

// maxWritten bounds what a writer given to a reader accepts before it
// fails: far above what any snapshot's percentile text needs.
const maxWritten = 16 << 20

// limitWriter accepts up to limit bytes and fails every write past that,
// counting the calls made after the first failure.
type limitWriter struct {
	buf        bytes.Buffer
	limit      int
	failed     bool
	afterError int // writes attempted after a write failed
}

var errWriterFull = errors.New("writer full")

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.failed {
		w.afterError++
		return 0, errWriterFull
	}
	if w.buf.Len()+len(p) > w.limit {
		w.failed = true
		n, _ := w.buf.Write(p[:w.limit-w.buf.Len()])
		return n, errWriterFull
	}
	return w.buf.Write(p)
}

// checkSnapshot calls every reader of s and checks the invariants between
// them. It fails the test (a panic from a timer, since a hung reader never
// returns) when the readers take longer than readerDeadline together.
func checkSnapshot(t testing.TB, s *Snapshot) {
	t.Helper()
	watchdog := time.AfterFunc(readerDeadline, func() {
		panic(fmt.Sprintf("latency: the readers of a snapshot did not return within %v", readerDeadline))
	})
	defer watchdog.Stop()
	checks := snapshotChecks(t, s)
	names := make([]string, 0, len(checks))
	for name := range checks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		checks[name]()
	}
}

// snapshotChecks returns, for every exported method of *Snapshot (by
// name), a check that calls it on s; TestCheckSnapshotCallsEveryMethod
// keeps the list complete.
func snapshotChecks(t testing.TB, s *Snapshot) map[string]func() {
	n := s.Count()
	quantiles := []float64{0, 1e-9, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1 - 1e-12, 1}
	return map[string]func(){
		"Scale": func() {
			require.True(t, s.Scale() >= MinScale && s.Scale() <= MaxScale, "scale %d", s.Scale())
		},
		"RelativeError": func() { require.Equal(t, ErrorAtScale(s.Scale()), s.RelativeError()) },
		"Count": func() {
			// Count is the zero count, the buckets and the overflow, without wrapping.
			total := s.ZeroCount()
			var carry uint64
			s.Buckets(func(_ int, c uint64) bool {
				var cc uint64
				total, cc = bits.Add64(total, c, 0)
				carry += cc
				return true
			})
			total, cc := bits.Add64(total, s.Overflow(), 0)
			require.Zero(t, carry+cc, "the counts add up without wrapping")
			require.Equal(t, total, n)
		},
		"ZeroCount": func() { require.LessOrEqual(t, s.ZeroCount(), n) },
		"Overflow":  func() { require.LessOrEqual(t, s.Overflow(), n) },
		"Invalid":   func() { _ = s.Invalid() },
		"Min": func() {
			if n == 0 {
				require.Zero(t, s.Min())
				return
			}
			require.GreaterOrEqual(t, s.Min(), time.Duration(0))
			require.LessOrEqual(t, s.Min(), s.Max())
		},
		"Max": func() {
			if n == 0 {
				require.Zero(t, s.Max())
			}
			if s.Overflow() > 0 {
				require.Greater(t, int64(s.Max()), int64(MaxValue))
			}
		},
		"Sum": func() {
			sum, ok := s.Sum()
			if n == 0 {
				require.True(t, ok)
				require.Zero(t, sum)
				return
			}
			if ok {
				// count×min <= sum <= count×max.
				loHi, loLo := bits.Mul64(n, uint64(s.Min()))
				hiHi, hiLo := bits.Mul64(n, uint64(s.Max()))
				require.False(t, less128(0, uint64(sum), loHi, loLo), "sum below count×min")
				require.False(t, less128(hiHi, hiLo, 0, uint64(sum)), "sum above count×max")
			} else {
				require.Equal(t, time.Duration(math.MaxInt64), sum)
			}
		},
		"SumFloat": func() {
			f := s.SumFloat()
			require.False(t, math.IsNaN(f) || math.IsInf(f, 0) || f < 0)
			require.LessOrEqual(t, f, float64(n)*float64(s.Max())*(1+1e-12))
			require.GreaterOrEqual(t, f, float64(n)*float64(s.Min())*(1-1e-12))
		},
		"Mean": func() {
			m := s.Mean()
			if n == 0 {
				require.Zero(t, m)
				return
			}
			require.GreaterOrEqual(t, m, s.Min())
			require.LessOrEqual(t, m, s.Max())
		},
		"StdDev": func() {
			sd := s.StdDev()
			require.GreaterOrEqual(t, sd, time.Duration(0))
			// Every value, and the mean, lies in [min, max].
			require.LessOrEqual(t, float64(sd), float64(s.Max()-s.Min())*(1+1e-9)+1)
		},
		"ValueAtQuantile": func() {
			prev := int64(-1)
			for _, q := range quantiles {
				v, err := s.ValueAtQuantile(q)
				require.NoError(t, err)
				require.GreaterOrEqual(t, v, prev, "quantiles never decrease: q=%v", q)
				prev = v
				if n == 0 {
					require.Zero(t, v)
					continue
				}
				require.GreaterOrEqual(t, v, int64(s.Min()), "q=%v", q)
				require.LessOrEqual(t, v, int64(s.Max()), "q=%v", q)
			}
			for _, q := range []float64{-0.1, 1.1, math.NaN(), math.Inf(1)} {
				_, err := s.ValueAtQuantile(q)
				require.Error(t, err, "q=%v", q)
			}
			if n > 0 {
				v0, _ := s.ValueAtQuantile(0)
				v1, _ := s.ValueAtQuantile(1)
				require.Equal(t, int64(s.Min()), v0, "quantile 0 is Min")
				require.Equal(t, int64(s.Max()), v1, "quantile 1 is Max")
			}
		},
		"Quantile": func() {
			for _, q := range quantiles {
				v, _ := s.ValueAtQuantile(q)
				require.Equal(t, time.Duration(v), s.Quantile(q))
			}
			for _, q := range []float64{99, 2, 1.0000001, -0.01, math.NaN(), math.Inf(1)} {
				require.Equalf(t, time.Duration(-1), s.Quantile(q), "Quantile(%v) is outside [0, 1]", q)
			}
		},
		"Summary": func() {
			require.Equal(t, Summary{
				Count: n, Min: s.Min(), Mean: s.Mean(), StdDev: s.StdDev(),
				P50: s.Quantile(0.5), P90: s.Quantile(0.9), P95: s.Quantile(0.95),
				P99: s.Quantile(0.99), P999: s.Quantile(0.999), Max: s.Max(),
			}, s.Summary())
		},
		"CountAtOrBelow": func() {
			ds := []time.Duration{math.MinInt64, -1, 0, 1, s.Min() - 1, s.Min(), s.Max() - 1, s.Max(),
				MaxValue, MaxValue + 1, math.MaxInt64}
			for _, q := range quantiles {
				ds = append(ds, s.Quantile(q), s.Quantile(q)+1)
			}
			slices.Sort(ds)
			prev := uint64(0)
			for _, d := range ds {
				c := s.CountAtOrBelow(d)
				require.GreaterOrEqual(t, c, prev, "CountAtOrBelow never decreases: %d", d)
				require.LessOrEqual(t, c, n)
				prev = c
			}
			require.Equal(t, n, s.CountAtOrBelow(s.Max()), "every value is at or below Max")
			require.Equal(t, n, s.CountAtOrBelow(math.MaxInt64))
			require.Zero(t, s.CountAtOrBelow(-1))
			if s.Min() > 0 {
				require.Zero(t, s.CountAtOrBelow(s.Min()-1), "no value is below Min")
			}
		},
		"Buckets": func() {
			prev, calls := math.MinInt, 0
			s.Buckets(func(i int, c uint64) bool {
				require.Greater(t, i, prev, "buckets ascend")
				require.True(t, i >= minIndex(s.Scale()) && i <= maxIndex(s.Scale()), "bucket %d in range", i)
				require.NotZero(t, c, "only non-empty buckets")
				prev = i
				calls++
				return true
			})
			if calls > 1 {
				stopped := 0
				s.Buckets(func(int, uint64) bool { stopped++; return false })
				require.Equal(t, 1, stopped, "Buckets stops when yield says so")
			}
		},
		"Downscale": func() {
			for scale := MinScale; scale <= s.Scale(); scale++ {
				d, err := s.Downscale(scale)
				require.NoError(t, err)
				require.Equal(t, scale, d.Scale())
				require.Equal(t, n, d.Count())
				require.Equal(t, s.Min(), d.Min())
				require.Equal(t, s.Max(), d.Max())
				roundTrips(t, d)
			}
			for _, scale := range []int{MinScale - 1, MaxScale + 1, math.MaxInt} {
				_, err := s.Downscale(scale)
				require.Error(t, err, "scale %d", scale)
			}
		},
		"Merge": func() {
			m, err := s.Merge(s)
			_, countCarry := bits.Add64(n, n, 0)
			_, invalidCarry := bits.Add64(s.Invalid(), s.Invalid(), 0)
			if countCarry+invalidCarry != 0 {
				require.ErrorIs(t, err, ErrCountLimit, "a merged count past 2^64-1 is refused")
				return
			}
			require.NoError(t, err)
			require.Equal(t, 2*n, m.Count())
			require.Equal(t, 2*s.Invalid(), m.Invalid())
			require.Equal(t, s.Min(), m.Min())
			require.Equal(t, s.Max(), m.Max())
			roundTrips(t, m)
		},
		"Add": func() {
			acc := clone(t, s)
			want, merr := s.Merge(s)
			err := acc.Add(s)
			if merr != nil {
				require.ErrorIs(t, err, ErrCountLimit)
				require.Equal(t, s, acc, "on error s is unchanged")
				return
			}
			require.NoError(t, err)
			require.Equal(t, want, acc, "Add leaves what Merge returns")
		},
		"NativeHistogram": func() {
			nh := s.NativeHistogram()
			require.Equal(t, int32(s.Scale()), nh.Schema)
			require.Equal(t, n, nh.Count)
			require.Equal(t, s.ZeroCount(), nh.ZeroCount)
			requireSeconds(t, s.SumFloat(), nh.Sum, "the sum in seconds")
			// Spans and deltas rebuild every count (modulo 2^64, as the
			// protobuf's int64 deltas are added).
			// As client_golang lays them out: a span starts and ends with a
			// non-empty bucket, spans are more than two buckets apart, and
			// inside a span at most two empty buckets follow each other.
			length, total, count, k := 0, s.ZeroCount(), uint64(0), 0
			for j, sp := range nh.PositiveSpans {
				require.Positive(t, sp.Length)
				if j > 0 {
					require.Greater(t, sp.Offset, int32(2), "a gap of one or two buckets stays inside the span")
				}
				length += int(sp.Length)
				require.LessOrEqual(t, length, len(nh.PositiveDeltas))
				empty := 0
				for b := range sp.Length {
					count += uint64(nh.PositiveDeltas[k])
					k++
					if count == 0 {
						empty++
						require.True(t, b > 0 && b < sp.Length-1, "a span starts and ends with a non-empty bucket")
						require.LessOrEqual(t, empty, 2, "at most two empty buckets in a row")
					} else {
						empty = 0
					}
					total += count
				}
			}
			require.Equal(t, length, len(nh.PositiveDeltas))
			require.Equal(t, n, total)
		},
		"ExponentialHistogram": func() {
			eh := s.ExponentialHistogram()
			require.Equal(t, int32(s.Scale()), eh.Scale)
			require.Equal(t, n, eh.Count)
			require.Equal(t, s.ZeroCount(), eh.ZeroCount)
			total := eh.ZeroCount
			for _, c := range eh.PositiveBucketCounts {
				total += c
			}
			require.Equal(t, n, total)
			// Overflowed values are in the bucket of Max, at most 2^63.
			require.LessOrEqual(t, len(eh.PositiveBucketCounts), 63<<s.Scale()+1)
			// In seconds: the exact nanoseconds divided by 1e9, rounded once.
			require.Equal(t, float64(s.Min())/1e9, eh.Min)
			require.Equal(t, float64(s.Max())/1e9, eh.Max)
			requireSeconds(t, s.SumFloat(), eh.Sum, "the sum in seconds")
		},
		"WritePercentileDistribution": func() {
			for _, ticks := range []int{1, 5} {
				w := &limitWriter{limit: maxWritten}
				require.NoError(t, s.WritePercentileDistribution(w, ticks, 1e3))
				checkPercentileText(t, s, w.buf.String(), ticks)
				// A writer that fails part way: its error, and no write after it.
				if w.buf.Len() > 1 {
					short := &limitWriter{limit: w.buf.Len() / 2}
					require.ErrorIs(t, s.WritePercentileDistribution(short, ticks, 1e3), errWriterFull)
					require.Zero(t, short.afterError, "no write after the writer failed")
				}
			}
			require.Error(t, s.WritePercentileDistribution(io.Discard, 0, 1))
			require.Error(t, s.WritePercentileDistribution(io.Discard, 5, math.NaN()))
		},
		"String": func() {
			str := s.String()
			require.Contains(t, str, fmt.Sprintf("count=%d", n))
			require.Less(t, len(str), 4096)
		},
		"Format": func() {
			for _, f := range []string{"%v", "%s", "%+v"} {
				out := fmt.Sprintf(f, s)
				require.Contains(t, out, fmt.Sprintf("count=%d", n))
				// A table of 8 lines and a chart of at most a row per
				// octave plus zero and overflow, each fitting a terminal.
				lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
				require.LessOrEqual(t, len(lines), 8+numChunks+2, f)
				for _, l := range lines {
					require.LessOrEqual(t, len(l), 400, "%s: %q", f, l)
				}
			}
			require.Equal(t, "%!d(*latency.Snapshot)", fmt.Sprintf("%d", s))
		},
		"MarshalBinary": func() { roundTrips(t, s) },
		"AppendBinary": func() {
			b, err := s.AppendBinary([]byte("prefix"))
			require.NoError(t, err)
			require.True(t, bytes.HasPrefix(b, []byte("prefix")))
			alone, err := s.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, alone, b[len("prefix"):])
		},
		"UnmarshalBinary": func() {
			c := clone(t, s)
			require.ErrorIs(t, c.UnmarshalBinary([]byte("LH\x01\x09")), ErrCorrupt)
			require.Equal(t, s, c, "on error the snapshot is unchanged")
		},
		"Histogram.Merge": func() {
			h := mustNew(t, Scale(s.Scale()), Shards(1))
			err := h.Merge(s)
			if n+s.Invalid() > MaxBulkCount || n+s.Invalid() < n {
				require.ErrorIs(t, err, ErrCountLimit)
				require.Zero(t, h.Snapshot().Count()+h.Snapshot().Invalid(), "a refused merge adds nothing")
				return
			}
			require.NoError(t, err)
			got := h.Snapshot()
			if n == 0 {
				require.Zero(t, got.Count())
				require.Equal(t, s.Invalid(), got.Invalid())
				return
			}
			require.Equal(t, s, got, "a histogram holds exactly what it merged")
		},
	}
}

// roundTrips checks that s encodes to bytes that decode to s.
func roundTrips(t testing.TB, s *Snapshot) {
	t.Helper()
	b, err := s.MarshalBinary()
	require.NoError(t, err)
	var back Snapshot
	require.NoError(t, back.UnmarshalBinary(b), "a snapshot's own encoding decodes")
	if s.Count() == 0 {
		// An empty snapshot keeps no min, max or sum; compare what it says.
		require.Equal(t, s.Scale(), back.Scale())
		require.Equal(t, s.Invalid(), back.Invalid())
		require.Zero(t, back.Count())
		return
	}
	require.Equal(t, s, &back)
}

func clone(t testing.TB, s *Snapshot) *Snapshot {
	t.Helper()
	c := *s
	c.cum = slices.Clone(s.cum)
	return &c
}

// checkPercentileText checks the shape of WritePercentileDistribution's
// output: a header, at most 65 half distances of ticks lines (a count
// fits 64 bits, so past 64 halvings every level is the last value), a
// final line at 100%, and three footer lines; percentiles and values
// ascend.
func checkPercentileText(t testing.TB, s *Snapshot, text string, ticks int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	require.GreaterOrEqual(t, len(lines), 5)
	require.Equal(t, []string{"Value", "Percentile", "TotalCount", "1/(1-Percentile)"}, strings.Fields(lines[0]))
	body := lines[2 : len(lines)-3]
	require.LessOrEqual(t, len(body), 65*ticks+1, "the number of levels is bounded")
	if s.Count() == 0 {
		require.Empty(t, body)
		return
	}
	sc := bufio.NewScanner(strings.NewReader(strings.Join(body, "\n")))
	prevP, prevC := -1.0, uint64(0)
	for sc.Scan() {
		var v, p float64
		var c uint64
		_, err := fmt.Sscan(sc.Text(), &v, &p, &c)
		require.NoError(t, err, "%q", sc.Text())
		require.GreaterOrEqual(t, p, prevP, "percentiles ascend")
		require.GreaterOrEqual(t, c, prevC, "counts ascend")
		require.LessOrEqual(t, c, s.Count())
		prevP, prevC = p, c
	}
	require.Equal(t, 1.0, prevP, "the last line is 100%%")
	require.Equal(t, s.Count(), prevC)
}

func TestCheckSnapshotCallsEveryMethod(t *testing.T) {
	checks := snapshotChecks(t, &Snapshot{})
	typ := reflect.TypeFor[*Snapshot]()
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		assert.Containsf(t, checks, name, "checkSnapshot does not call (*Snapshot).%s: add a check", name)
	}
}

// requireSeconds checks that secs is nanos nanoseconds in seconds, within
// a few roundings.
func requireSeconds(t testing.TB, nanos, secs float64, msg string) {
	t.Helper()
	want := nanos / 1e9
	require.LessOrEqualf(t, math.Abs(secs-want), 4e-16*want, "%s: %v s for %v ns", msg, secs, nanos)
}
