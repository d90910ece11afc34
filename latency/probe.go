package latency

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Sink receives latency samples: both [*Histogram] and [*Recorder] are
// sinks, and so is anything else with this method.
type Sink interface {
	Record(d time.Duration)
}

// Probe takes latency samples and records the successful ones into Sink.
// Each sample reads the clock exactly twice, right around the measured
// operation; failures and timeouts are counted apart and never recorded
// as latencies. A Probe without a Sink returns an error from every method;
// set only Sink, the rest of the zero value is ready to use. A Probe is
// safe for concurrent use if its Sink, Now and Sleep are (Histogram and
// Recorder are).
type Probe struct {
	// Sink receives every successful sample.
	Sink Sink
	// Timeout bounds each sample. 0 means the default (only the caller's
	// context bounds it); a negative value is an error. A sample that runs
	// out of time counts in ProbeResult.Timeouts.
	Timeout time.Duration
	// Now reads the clock; nil means time.Now (with its monotonic reading).
	// Tests set Now and Sleep to a fake clock whose Sleep advances Now, so
	// that schedules and stalls run in no real time.
	Now func() time.Time
	// Sleep waits for d, or until ctx is done and returns ctx.Err() then;
	// nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (p *Probe) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func (p *Probe) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ProbeResult counts the outcomes of a run of samples.
type ProbeResult struct {
	Samples  int   // successful samples, each recorded into the Sink
	Failures int   // samples that failed, timeouts excluded
	Timeouts int   // samples that ran past Timeout or the context deadline
	LastErr  error // the most recent failure or timeout, nil if none
}

func (s *ProbeResult) count(err error) {
	s.LastErr = err
	if isTimeout(err) {
		s.Timeouts++
	} else {
		s.Failures++
	}
}

// outcome books one sample: a latency recorded on success, a failure or
// timeout counted otherwise. It reports the run's context error, which
// ends the run, when the sample failed because the run was cancelled.
func (p *Probe) outcome(ctx context.Context, res *ProbeResult, d time.Duration, err error) error {
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res.count(err)
		return nil
	}
	res.Samples++
	p.Sink.Record(d)
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func (p *Probe) check(n int) error {
	switch {
	case p.Sink == nil:
		return errors.New("latency: probe has no Sink")
	case p.Timeout < 0:
		return fmt.Errorf("latency: probe Timeout %v: must not be negative", p.Timeout)
	case n < 0:
		return fmt.Errorf("latency: probe sample count %d: must not be negative", n)
	}
	return nil
}

// sampleCtx derives the context of one sample from the run's context.
func (p *Probe) sampleCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.Timeout > 0 {
		return context.WithTimeout(ctx, p.Timeout)
	}
	return context.WithCancel(ctx)
}

// Time runs f n times one after the other (a closed loop) and records how
// long each successful call took. It stops early, returning ctx.Err(),
// when ctx is done; a per-sample timeout only ends that sample. A closed
// loop hides the requests a stall delays: see OpenLoop, or correct with
// [Histogram.RecordCorrected].
func (p *Probe) Time(ctx context.Context, n int, f func(ctx context.Context) error) (ProbeResult, error) {
	if err := p.check(n); err != nil {
		return ProbeResult{}, err
	}
	return p.closedLoop(ctx, n, f, nil)
}

// closedLoop takes n samples one after the other, each the time sample
// takes; after, if not nil, runs once the sample's time is taken.
func (p *Probe) closedLoop(ctx context.Context, n int, sample func(ctx context.Context) error, after func()) (ProbeResult, error) {
	var res ProbeResult
	for range n {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		sctx, cancel := p.sampleCtx(ctx)
		start := p.now()
		err := sample(sctx)
		end := p.now()
		cancel()
		if after != nil {
			after()
		}
		if err := p.outcome(ctx, &res, end.Sub(start), err); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Connect measures connection setup: n dials of address with dial (for
// example a net.Dialer's DialContext, or a tuned dialer's), one after the
// other, closing each connection once its time is taken (its Close error
// is dropped: the sample was the dial, and nothing was sent to lose).
// Refused or unreachable dials count as Failures, dials past Timeout as
// Timeouts. It stops early, returning ctx.Err(), when ctx is done.
func (p *Probe) Connect(ctx context.Context, n int, dial func(ctx context.Context, network, address string) (net.Conn, error), network, address string) (ProbeResult, error) {
	if err := p.check(n); err != nil {
		return ProbeResult{}, err
	}
	if dial == nil {
		return ProbeResult{}, errors.New("latency: Connect: nil dial function")
	}
	var conn net.Conn
	dialOnce := func(ctx context.Context) (err error) {
		conn, err = dial(ctx, network, address)
		return err
	}
	closeConn := func() {
		if conn != nil {
			_ = conn.Close()
			conn = nil
		}
	}
	return p.closedLoop(ctx, n, dialOnce, closeConn)
}

// RoundTrip measures request/response round trips over one connection: n
// times it writes request and reads exactly responseLen bytes back. A
// failed or timed-out exchange leaves the stream out of step, so RoundTrip
// stops there and returns the error along with the counts so far.
//
// Timeout and the cancellation of ctx reach a blocked Read or Write
// through the conn's deadline, so a run with a Timeout, or with a ctx that
// can end, needs a conn whose SetDeadline works: when SetDeadline fails,
// RoundTrip takes no sample without its bound but stops and returns that
// error (as it does when clearing the deadline at the end fails).
func (p *Probe) RoundTrip(ctx context.Context, n int, conn net.Conn, request []byte, responseLen int) (res ProbeResult, err error) {
	if err := p.check(n); err != nil {
		return res, err
	}
	if conn == nil || responseLen < 0 {
		return res, fmt.Errorf("latency: RoundTrip: need a conn and responseLen >= 0 (got %d)", responseLen)
	}
	// Deadlines are wall-clock, whatever Now says.
	if p.Timeout > 0 || ctx.Done() != nil {
		if err := conn.SetDeadline(time.Time{}); err != nil {
			return res, fmt.Errorf("latency: RoundTrip: set deadline: %w", err)
		}
		// Deferred calls run last-in first-out: stop the AfterFunc before
		// clearing the deadline, so that it cannot set one after the clear.
		defer func() {
			if cerr := conn.SetDeadline(time.Time{}); cerr != nil && err == nil {
				err = fmt.Errorf("latency: RoundTrip: clear deadline: %w", cerr)
			}
		}()
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	resp := make([]byte, responseLen)
	for range n {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if p.Timeout > 0 {
			if err := conn.SetDeadline(time.Now().Add(p.Timeout)); err != nil {
				return res, fmt.Errorf("latency: RoundTrip: set deadline: %w", err)
			}
		}
		start := p.now()
		_, err := conn.Write(request)
		if err == nil {
			_, err = io.ReadFull(conn, resp)
		}
		end := p.now()
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.count(err)
			return res, fmt.Errorf("latency: RoundTrip: %w", err)
		}
		res.Samples++
		p.Sink.Record(end.Sub(start))
	}
	return res, nil
}

// OpenLoop calls f n times on a fixed schedule, one call every interval,
// and records each latency from the call's intended start, not its actual
// one. When a call stalls, the calls queued behind it start late and their
// recorded latencies include the wait, as a user arriving at that time
// would have seen: the stall is not hidden (no coordinated omission).
// Calls run one at a time; a run that falls behind catches up by starting
// late calls at once.
func (p *Probe) OpenLoop(ctx context.Context, n int, interval time.Duration, f func(ctx context.Context) error) (ProbeResult, error) {
	var res ProbeResult
	if err := p.check(n); err != nil {
		return res, err
	}
	if interval <= 0 {
		return res, fmt.Errorf("latency: OpenLoop interval %v: must be positive", interval)
	}
	begin := p.now()
	now := begin
	for k := range n {
		intended := begin.Add(time.Duration(k) * interval)
		if wait := intended.Sub(now); wait > 0 {
			if err := p.sleep(ctx, wait); err != nil {
				return res, err
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		sctx, cancel := p.sampleCtx(ctx)
		err := f(sctx)
		now = p.now()
		cancel()
		if err := p.outcome(ctx, &res, now.Sub(intended), err); err != nil {
			return res, err
		}
	}
	return res, nil
}

// KernelRTT records the kernel's smoothed round-trip time estimate of conn
// n times, interval apart. The estimate comes from rtt, for example a
// TCP_INFO reader (Linux reports tcpi_rtt in microseconds); an rtt that
// returns an error wrapping errors.ErrUnsupported ends the run with that
// error, since the platform cannot provide it.
func (p *Probe) KernelRTT(ctx context.Context, n int, interval time.Duration, conn net.Conn, rtt func(net.Conn) (time.Duration, error)) (ProbeResult, error) {
	var res ProbeResult
	if err := p.check(n); err != nil {
		return res, err
	}
	if conn == nil || rtt == nil || interval < 0 {
		return res, fmt.Errorf("latency: KernelRTT: need a conn, an rtt function and interval >= 0 (got %v)", interval)
	}
	for k := range n {
		if k > 0 && interval > 0 {
			if err := p.sleep(ctx, interval); err != nil {
				return res, err
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		d, err := rtt(conn)
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			return res, fmt.Errorf("latency: KernelRTT: %w", err)
		case err != nil:
			res.count(err)
		case d < 0:
			res.count(fmt.Errorf("latency: KernelRTT: negative rtt %v", d))
		default:
			res.Samples++
			p.Sink.Record(d)
		}
	}
	return res, nil
}
