package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nettune/nettune/examples/internal/cli"
)

// The plot: latency (log scale, y) against percentile (x, on the scale
// HdrHistogram's plots use: the distance to 100% shrinks tenfold per tick,
// so 90%, 99%, 99.9% are evenly spaced), one line per series. Plain SVG,
// written by hand: no dependencies.
const (
	plotW, plotH     = 1060, 560
	marginL, marginR = 80, 380 // the legend goes on the right
	marginT, marginB = 50, 60
	innerW           = plotW - marginL - marginR
	innerH           = plotH - marginT - marginB
	plotPoints       = 240 // per line
	plotMaxNines     = 4   // the x axis goes up to p99.99 at most
)

var palette = []string{"#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"}

// plotFile is where -plot goes. run makes it before measuring, so that a
// path that cannot be written fails at once, not after the run. The plot is
// written to a temporary file beside the destination and renamed over it
// only once complete: a failed or interrupted run removes its temporary
// file and nothing else, so a file that was there before stays as it was.
type plotFile struct {
	path string   // the destination, symlinks resolved
	tmp  *os.File // in path's directory; nil once committed or discarded
}

// createPlot checks path and creates the temporary file. path must name a
// regular file, or nothing yet in a directory that exists: anything else
// (a device such as /dev/null, a fifo, a directory) is refused, since
// renaming over it would replace it and writing into a fifo may block.
// A plot that replaces a file keeps that file's permissions; a new one is
// made with 0644.
func createPlot(path string) (*plotFile, error) {
	mode := os.FileMode(0o644)
	fi, err := os.Stat(path) // through symlinks: a link to a plot keeps pointing at it
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if lfi, lerr := os.Lstat(path); lerr == nil && lfi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s is a symbolic link to a file that does not exist", path)
		}
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file (%s): give the path of an .svg file to create or replace", path, kind(fi.Mode()))
	default:
		mode = fi.Mode().Perm()
		if path, err = filepath.EvalSymlinks(path); err != nil {
			return nil, err
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, err
	}
	p := &plotFile{path: path, tmp: tmp}
	if err := tmp.Chmod(mode); err != nil {
		p.discard()
		return nil, err
	}
	return p, nil
}

// kind names a file type for an error message.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a fifo"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "type " + m.Type().String()
}

// commit writes the plot of ss to the temporary file and renames it to the
// destination. On error the destination is left as it was.
func (p *plotFile) commit(ss []*series) error {
	var buf bytes.Buffer
	if err := writePlot(&buf, ss); err != nil {
		p.discard()
		return fmt.Errorf("plot: %w", err)
	}
	_, err := p.tmp.Write(buf.Bytes())
	if cerr := p.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(p.tmp.Name(), p.path)
	}
	if err != nil {
		p.discard()
		return fmt.Errorf("-plot: %w", err)
	}
	p.tmp = nil
	return nil
}

// discard removes the temporary file, the only file createPlot made. It
// does nothing after commit or a first discard.
func (p *plotFile) discard() {
	if p == nil || p.tmp == nil {
		return
	}
	_ = p.tmp.Close()
	_ = os.Remove(p.tmp.Name())
	p.tmp = nil
}

// writePlot writes the SVG for the series that have samples.
func writePlot(w io.Writer, all []*series) error {
	var ss []*series
	for _, s := range all {
		if s.snap.Count() > 0 {
			ss = append(ss, s)
		}
	}
	if len(ss) == 0 {
		return fmt.Errorf("no samples to plot")
	}
	a := newPlotAxes(ss)
	e := &errWriter{w: w}
	fmt.Fprintf(e, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(e, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(e, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(e, `<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", marginL, esc("latencyprobe: latency by percentile (log scales)"))
	a.writeGrid(e)
	for i, s := range ss {
		a.writeLine(e, i, s)
	}
	fmt.Fprintln(e, `</svg>`)
	return e.err
}

// plotAxes places percentiles (x) and latencies (y) in the plot.
type plotAxes struct {
	nines    float64 // x spans 0 .. nines decades of 1/(1-q)
	ylo, yhi float64 // y spans 10^ylo .. 10^yhi nanoseconds
}

// newPlotAxes makes axes that hold every series of ss: x goes as far as
// enough samples back it, y from the decade of the least minimum to that
// of the largest maximum.
func newPlotAxes(ss []*series) plotAxes {
	var maxCount uint64
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for _, s := range ss {
		maxCount = max(maxCount, s.snap.Count())
		lo = min(lo, max(s.snap.Min(), time.Nanosecond))
		hi = max(hi, s.snap.Max())
	}
	a := plotAxes{
		nines: math.Min(plotMaxNines, math.Max(1, math.Floor(math.Log10(float64(maxCount))))),
		ylo:   math.Floor(math.Log10(float64(lo))),
		yhi:   math.Ceil(math.Log10(float64(hi))),
	}
	if a.yhi <= a.ylo {
		a.yhi = a.ylo + 1
	}
	return a
}

func (a plotAxes) x(decades float64) float64 { return marginL + decades/a.nines*innerW }

func (a plotAxes) y(d time.Duration) float64 {
	v := math.Log10(math.Max(float64(d), 1))
	return marginT + (1-(v-a.ylo)/(a.yhi-a.ylo))*innerH
}

// writeGrid writes the grid lines, their labels, the frame and the axis
// titles.
func (a plotAxes) writeGrid(e io.Writer) {
	// y: every decade, with 2 and 5 in between.
	for dec := a.ylo; dec <= a.yhi; dec++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, dec)
			if math.Log10(v) > a.yhi+1e-9 {
				break
			}
			y := a.y(time.Duration(v))
			stroke := "#e0e0e0"
			if m == 1 {
				stroke = "#b0b0b0"
			}
			fmt.Fprintf(e, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", marginL, y, marginL+innerW, y, stroke)
			fmt.Fprintf(e, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", marginL-6, y, esc(axisDur(time.Duration(v))))
		}
	}
	// x: 0%, 90%, 99%, …
	for k := 0.0; k <= a.nines; k++ {
		x := a.x(k)
		fmt.Fprintf(e, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#b0b0b0"/>`+"\n", x, marginT, x, marginT+innerH)
		fmt.Fprintf(e, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, marginT+innerH+18, esc(percentLabel(k)))
	}
	fmt.Fprintf(e, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", marginL, marginT, innerW, innerH)
	fmt.Fprintf(e, `<text x="%d" y="%d" text-anchor="middle">percentile</text>`+"\n", marginL+innerW/2, plotH-14)
	fmt.Fprintf(e, `<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">latency</text>`+"\n", marginT+innerH/2, marginT+innerH/2)
}

// writeLine writes series s, the i-th, as a line and its legend entry.
func (a plotAxes) writeLine(e io.Writer, i int, s *series) {
	color := palette[i%len(palette)]
	// A series with few samples stops where its samples stop.
	top := math.Min(a.nines, math.Max(1, math.Log10(float64(s.snap.Count()))))
	var pts bytes.Buffer
	for k := 0; k <= plotPoints; k++ {
		dec := top * float64(k) / plotPoints
		q := 1 - math.Pow(10, -dec)
		if k == plotPoints && top == math.Log10(float64(s.snap.Count())) {
			q = 1
		}
		fmt.Fprintf(&pts, "%.1f,%.1f ", a.x(dec), a.y(s.snap.Quantile(q)))
	}
	fmt.Fprintf(e, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`+"\n",
		color, bytes.TrimSpace(pts.Bytes()), esc(s.title))
	ly := marginT + 10 + i*36
	lx := marginL + innerW + 16
	fmt.Fprintf(e, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", lx, ly, lx+24, ly, color)
	fmt.Fprintf(e, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", lx+30, ly, esc(s.title))
	fmt.Fprintf(e, `<text x="%d" y="%d" dominant-baseline="middle" fill="#555" font-size="11">%s</text>`+"\n", lx+30, ly+15,
		esc(fmt.Sprintf("p50 %s  p99 %s  n=%d", cli.Duration(s.snap.Quantile(0.5)), cli.Duration(s.snap.Quantile(0.99)), s.snap.Count())))
}

// percentLabel names the tick k decades along: 0%, 90%, 99%, 99.9%, …
func percentLabel(k float64) string {
	if k == 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*(1-math.Pow(10, -k)), 'f', int(k)-2+boolInt(k < 2), 64) + "%"
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// axisDur labels a y tick: 1µs, 20µs, 5ms.
func axisDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return fmt.Sprintf("%gµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%gms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%gs", float64(d)/1e9)
	}
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
