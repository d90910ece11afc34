package latency

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// String renders the percentile table (see Format).
func (s *Snapshot) String() string { return fmt.Sprint(s) }

// Format implements fmt.Formatter. %v and %s print a percentile table
// (count, min, mean, stddev, p50 … p99.99, max); %+v adds a text bar chart
// of the distribution, one row per group of buckets, readable in an
// 80-column terminal.
func (s *Snapshot) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v', 's':
		s.writeTable(f)
		if f.Flag('+') {
			s.writeChart(f, 24, 50)
		}
	default:
		fmt.Fprintf(f, "%%!%c(*latency.Snapshot)", verb)
	}
}

func (s *Snapshot) writeTable(w io.Writer) {
	n := s.Count()
	fmt.Fprintf(w, "count=%d min=%v mean=%v stddev=%v max=%v", n, s.Min(), s.Mean(), round4(s.StdDev()), s.Max())
	if s.invalid > 0 || s.overflow > 0 {
		fmt.Fprintf(w, " invalid=%d overflow=%d", s.invalid, s.overflow)
	}
	fmt.Fprintf(w, " (±%.2f%%)\n", 100*s.RelativeError())
	if n == 0 {
		return
	}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}, {"p99.9", 0.999}, {"p99.99", 0.9999}, {"max", 1}} {
		fmt.Fprintf(w, "  %-7s %10v\n", p.name, round4(s.Quantile(p.q)))
	}
}

// writeChart draws at most rows rows: buckets are grouped by downscaling
// until few enough groups remain, each row showing its range and a bar.
func (s *Snapshot) writeChart(w io.Writer, rows, width int) {
	type row struct {
		lo, hi time.Duration
		n      uint64
	}
	var rs []row
	if s.zero > 0 {
		rs = append(rs, row{0, 0, s.zero})
	}
	if s.cum != nil {
		g := s
		for g.scale > 0 && len(g.cum) > rows {
			g, _ = g.Downscale(g.scale - 1)
		}
		first, last := g.offset, g.offset+len(g.cum)-1
		counts := g.counts()
		for i := first; i <= last; i++ {
			lo, hi := intRange(g.scale, i)
			rs = append(rs, row{time.Duration(lo), time.Duration(hi), counts[i]})
		}
	}
	if s.overflow > 0 {
		rs = append(rs, row{MaxValue + 1, time.Duration(math.MaxInt64), s.overflow})
	}
	var peak uint64
	for _, r := range rs {
		peak = max(peak, r.n)
	}
	if peak == 0 {
		return
	}
	for _, r := range rs {
		bar := int(math.Ceil(float64(r.n) / float64(peak) * float64(width)))
		fmt.Fprintf(w, "  %10v .. %-10v %9d |%s\n", round4(r.lo), round4(r.hi), r.n, strings.Repeat("#", bar))
	}
}

// round4 rounds d to four significant digits for display: the buckets
// cannot tell more than that apart at the default scale anyway.
func round4(d time.Duration) time.Duration {
	r := time.Duration(1)
	for d/r >= 10000 {
		r *= 10
	}
	return d.Round(r)
}
