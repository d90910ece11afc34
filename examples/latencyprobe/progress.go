package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nettune/nettune/latency"
)

// progress tells a person on stderr what is being measured. Every run gets
// one line per technique when it starts and ends; when stderr is a terminal,
// a counter also updates in place every 100ms. It never writes to stdout, so
// -json output stays clean.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool
	step  int
	steps int
	begin time.Time
}

func newProgress(w io.Writer, quiet bool, steps int) *progress {
	return &progress{w: w, tty: isTerminal(w), quiet: quiet, steps: steps, begin: time.Now()}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type task struct {
	p     *progress
	title string
	n     int
	count int
	start time.Time
	last  time.Time
}

func (p *progress) start(title string, n int) *task {
	t := &task{p: p, title: title, n: n, start: time.Now()}
	t.last = t.start
	if p == nil || p.quiet {
		return t
	}
	p.step++
	fmt.Fprintf(p.w, "latencyprobe: [%d/%d] %s: %d samples", p.step, p.steps, title, n)
	if !p.tty {
		fmt.Fprintln(p.w)
	}
	return t
}

// tick counts one sample; on a terminal it redraws the counter at most
// every 100ms. The probe calls it outside the measured time.
func (t *task) tick() {
	t.count++
	if t.p == nil || t.p.quiet || !t.p.tty {
		return
	}
	if now := time.Now(); now.Sub(t.last) >= 100*time.Millisecond {
		t.last = now
		fmt.Fprintf(t.p.w, "\rlatencyprobe: [%d/%d] %s: %d/%d samples\x1b[K", t.p.step, t.p.steps, t.title, t.count, t.n)
	}
}

func (t *task) done(st latency.ProbeResult) {
	p := t.p
	if p == nil || p.quiet {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\rlatencyprobe: [%d/%d] %s: %d samples\x1b[K", p.step, p.steps, t.title, st.Samples)
	} else {
		fmt.Fprintf(p.w, "latencyprobe: [%d/%d] %s: %d samples", p.step, p.steps, t.title, st.Samples)
	}
	if bad := st.Failures + st.Timeouts; bad > 0 {
		fmt.Fprintf(p.w, ", %d failed", bad)
	}
	fmt.Fprintf(p.w, " in %v\n", time.Since(t.start).Round(time.Millisecond))
}
