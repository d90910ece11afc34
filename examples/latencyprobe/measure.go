package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nettune/nettune/latency"
)

// series is one measured technique: its samples and their outcome.
type series struct {
	name  string // stable identifier, used in -json and the plot
	title string // what a person reads
	snap  *latency.Snapshot
	stats latency.ProbeResult
	// Open loop only: the time the calls took in all, against the
	// schedule's span (n × interval). A generator whose calls take
	// longer than the schedule leaves falls behind, and its latencies
	// measure its own queue rather than the technique.
	busy, span time.Duration
}

// behind reports whether an open-loop run's generator fell behind its
// schedule, and by how much (busy/span).
func (s *series) behind() (float64, bool) {
	if s.span == 0 {
		return 0, false
	}
	r := float64(s.busy) / float64(s.span)
	return r, r > 0.9
}

// prober runs measurements with the settings every technique shares.
type prober struct {
	timeout  time.Duration // per sample
	rate     float64       // requests per second for open-loop runs; 0: closed loop
	warmup   int           // unrecorded calls before each run
	progress *progress
	after    func() // called after each recorded sample, outside the measured time
}

// measure calls f warm-up times without recording, then n times recording
// each successful call's latency (closed loop, or open loop at p.rate).
// It fails when no call succeeded, with the last error.
func (p *prober) measure(ctx context.Context, name, title string, n int, f func(context.Context) error) (*series, error) {
	h, err := latency.New()
	if err != nil {
		return nil, err
	}
	warm := latency.Probe{Sink: discard{}, Timeout: p.timeout}
	if st, err := warm.Time(ctx, p.warmup, f); err != nil {
		return nil, err
	} else if p.warmup > 0 && st.Samples == 0 {
		return nil, fmt.Errorf("%s: every warm-up call failed: %w", title, st.LastErr)
	}
	task := p.progress.start(title, n)
	sink := sinkFunc(func(d time.Duration) {
		h.Record(d)
		task.tick()
		if p.after != nil {
			p.after()
		}
	})
	probe := latency.Probe{Sink: sink, Timeout: p.timeout}
	var st latency.ProbeResult
	var busy, span time.Duration
	if p.rate > 0 {
		interval := time.Duration(float64(time.Second) / p.rate)
		span = time.Duration(n) * interval
		timed := func(ctx context.Context) error {
			start := time.Now()
			err := f(ctx)
			busy += time.Since(start) // calls run one at a time
			return err
		}
		st, err = probe.OpenLoop(ctx, n, interval, timed)
	} else {
		st, err = probe.Time(ctx, n, f)
	}
	task.done(st)
	if err != nil {
		return nil, err
	}
	if n > 0 && st.Samples == 0 {
		return nil, fmt.Errorf("%s: all %d attempts failed: %w", title, n, st.LastErr)
	}
	return &series{name: name, title: title, snap: h.Snapshot(), stats: st, busy: busy, span: span}, nil
}

type discard struct{}

func (discard) Record(time.Duration) {}

// sinkFunc adapts a function to latency.Sink. The probe calls it after its
// second clock read, so whatever it does is outside the measured time.
type sinkFunc func(time.Duration)

func (f sinkFunc) Record(d time.Duration) { f(d) }

// exchange writes req and reads len(resp) bytes back into resp, within the
// deadline of ctx (every sample's context has one: -timeout).
func exchange(ctx context.Context, c net.Conn, req, resp []byte) error {
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return err
		}
	}
	if _, err := c.Write(req); err != nil {
		return err
	}
	_, err := io.ReadFull(c, resp)
	return err
}

// splitExchange is exchange with the request sent in two writes (a header
// of hdr bytes, then the rest): the write-write-read pattern that Nagle's
// algorithm and delayed ACKs turn into a stall.
func splitExchange(ctx context.Context, c net.Conn, hdr int, req, resp []byte) error {
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return err
		}
	}
	if _, err := c.Write(req[:hdr]); err != nil {
		return err
	}
	if _, err := c.Write(req[hdr:]); err != nil {
		return err
	}
	_, err := io.ReadFull(c, resp)
	return err
}

// writevExchange is splitExchange with both parts in one writev.
func writevExchange(ctx context.Context, c net.Conn, hdr int, req, resp []byte) error {
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return err
		}
	}
	bufs := net.Buffers{req[:hdr], req[hdr:]}
	if _, err := bufs.WriteTo(c); err != nil {
		return err
	}
	_, err := io.ReadFull(c, resp)
	return err
}

// payload returns n bytes of a recognisable pattern.
func payload(n int) []byte {
	const pattern = "latencyprobe "
	b := make([]byte, n)
	for i := range b {
		b[i] = pattern[i%len(pattern)]
	}
	return b
}
