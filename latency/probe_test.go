package latency

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock advances only when told to, or when a probe sleeps.
type fakeClock struct {
	mu    sync.Mutex // guards now, reads
	now   time.Time
	reads int
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.Advance(d)
	return ctx.Err()
}

func (c *fakeClock) Reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// serve accepts connections and echoes until the listener closes.
func serve(t *testing.T, ln net.Listener) {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { _ = ln.Close() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
}

// silent accepts one connection, reads it and never answers.
func silent(t *testing.T, ln net.Listener) {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { _ = ln.Close() })
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	})
}

func TestTimeRecordsEachCallWithOneClockPair(t *testing.T) {
	clk := newFakeClock()
	h := mustNew(t)
	p := Probe{Sink: h, Now: clk.Now, Sleep: clk.Sleep}
	k := 0
	boom := errors.New("boom")
	st, err := p.Time(context.Background(), 5, func(context.Context) error {
		k++
		clk.Advance(time.Duration(k) * time.Millisecond)
		if k == 3 {
			return boom
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, ProbeResult{Samples: 4, Failures: 1, LastErr: boom}, st)
	assert.Equal(t, 10, clk.Reads(), "two clock reads per sample")
	s := h.Snapshot()
	assert.Equal(t, uint64(4), s.Count(), "failures are not latencies")
	sum, _ := s.Sum()
	assert.Equal(t, (1+2+4+5)*time.Millisecond, sum)
}

func TestOpenLoopChargesAStallToTheCallsQueuedBehindIt(t *testing.T) {
	clk := newFakeClock()
	open, closed := mustNew(t), mustNew(t)
	call := 0
	work := func(context.Context) error {
		call++
		if call == 2 {
			clk.Advance(35 * time.Millisecond) // a stall
		} else {
			clk.Advance(time.Millisecond)
		}
		return nil
	}
	p := Probe{Sink: open, Now: clk.Now, Sleep: clk.Sleep}
	st, err := p.OpenLoop(context.Background(), 6, 10*time.Millisecond, work)
	require.NoError(t, err)
	assert.Equal(t, 6, st.Samples)
	// Intended starts 0,10,..,50ms. Call 2 starts at 10 and ends at 45;
	// calls 3, 4 and 5 were due at 20, 30, 40 and end at 46, 47, 48.
	s := open.Snapshot()
	assert.Equal(t, uint64(6), s.Count())
	sum, _ := s.Sum()
	assert.Equal(t, (1+35+26+17+8+1)*time.Millisecond, sum, "queued calls carry the wait")
	assert.Equal(t, 35*time.Millisecond, s.Max())

	call = 0
	pc := Probe{Sink: closed, Now: clk.Now, Sleep: clk.Sleep}
	_, err = pc.Time(context.Background(), 6, work)
	require.NoError(t, err)
	csum, _ := closed.Snapshot().Sum()
	assert.Equal(t, 40*time.Millisecond, csum, "a closed loop sees the stall once")
	assert.Less(t, closed.Snapshot().Quantile(0.8), s.Quantile(0.8), "and hides it from its percentiles")
}

func TestConnectCountsSuccessesFailuresAndTimeoutsApart(t *testing.T) {
	ln := listen(t)
	serve(t, ln)
	h := mustNew(t)
	p := Probe{Sink: h, Timeout: 5 * time.Second}
	var d net.Dialer
	st, err := p.Connect(context.Background(), 20, d.DialContext, "tcp", ln.Addr().String())
	require.NoError(t, err)
	assert.Equal(t, 20, st.Samples)
	assert.Zero(t, st.Failures+st.Timeouts)
	s := h.Snapshot()
	assert.Equal(t, uint64(20), s.Count())
	assert.Positive(t, s.Min(), "a loopback connect takes some time")

	// A port nobody listens on: refused, a failure.
	dead := listen(t)
	addr := dead.Addr().String()
	require.NoError(t, dead.Close())
	st, err = p.Connect(context.Background(), 3, d.DialContext, "tcp", addr)
	require.NoError(t, err)
	assert.Equal(t, 3, st.Failures)
	var opErr *net.OpError
	assert.ErrorAs(t, st.LastErr, &opErr)

	// A dialer that never answers: each sample times out.
	hang := func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	p.Timeout = 20 * time.Millisecond
	st, err = p.Connect(context.Background(), 2, hang, "tcp", addr)
	require.NoError(t, err)
	assert.Equal(t, 2, st.Timeouts)
	assert.ErrorIs(t, st.LastErr, context.DeadlineExceeded)
	assert.Equal(t, uint64(20), h.Snapshot().Count(), "failures and timeouts are not recorded")
}

func TestProbesStopWhenTheContextIsCancelled(t *testing.T) {
	h := mustNew(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := Probe{Sink: h}
	calls := 0
	st, err := p.Time(ctx, 100, func(context.Context) error {
		calls++
		if calls == 3 {
			cancel()
			return context.Canceled
		}
		return nil
	})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 2, st.Samples)
}

func TestRoundTripMeasuresEachExchangeOverOneConn(t *testing.T) {
	ln := listen(t)
	serve(t, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	h := mustNew(t)
	p := Probe{Sink: h, Timeout: 5 * time.Second}
	st, err := p.RoundTrip(context.Background(), 50, c, []byte("ping"), 4)
	require.NoError(t, err)
	assert.Equal(t, 50, st.Samples)
	assert.Equal(t, uint64(50), h.Snapshot().Count())
}

func TestRoundTripStopsOnATimeout(t *testing.T) {
	ln := listen(t)
	silent(t, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	p := Probe{Sink: mustNew(t), Timeout: 30 * time.Millisecond}
	st, err := p.RoundTrip(context.Background(), 5, c, []byte("ping"), 4)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Equal(t, ProbeResult{Timeouts: 1, LastErr: st.LastErr}, st)
	require.NoError(t, c.Close())
	require.NoError(t, ln.Close())
}

func TestKernelRTTRecordsWhatTheReaderReports(t *testing.T) {
	ln := listen(t)
	serve(t, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	clk := newFakeClock()
	h := mustNew(t)
	p := Probe{Sink: h, Now: clk.Now, Sleep: clk.Sleep}
	rtts := []time.Duration{30 * time.Microsecond, 40 * time.Microsecond}
	k := 0
	st, err := p.KernelRTT(context.Background(), 2, time.Second, c, func(net.Conn) (time.Duration, error) {
		k++
		return rtts[k-1], nil
	})
	require.NoError(t, err)
	assert.Equal(t, 2, st.Samples)
	assert.Equal(t, 40*time.Microsecond, h.Snapshot().Max())

	_, err = p.KernelRTT(context.Background(), 2, 0, c, func(net.Conn) (time.Duration, error) {
		return 0, errors.ErrUnsupported
	})
	assert.ErrorIs(t, err, errors.ErrUnsupported, "a platform without the estimate says so")
}

func TestProbesRejectBadArguments(t *testing.T) {
	ctx := context.Background()
	nop := func(context.Context) error { return nil }
	_, err := (&Probe{}).Time(ctx, 1, nop)
	assert.Error(t, err, "no sink")
	p := Probe{Sink: mustNew(t), Timeout: -1}
	_, err = p.Time(ctx, 1, nop)
	assert.Error(t, err, "negative timeout")
	p.Timeout = 0
	_, err = p.Time(ctx, -1, nop)
	assert.Error(t, err, "negative count")
	_, err = p.OpenLoop(ctx, 1, 0, nop)
	assert.Error(t, err, "zero interval")
	_, err = p.Connect(ctx, 1, nil, "tcp", "127.0.0.1:1")
	assert.Error(t, err, "nil dial")
	_, err = p.RoundTrip(ctx, 1, nil, nil, 0)
	assert.Error(t, err, "nil conn")
}

func TestRoundTripReturnsWhenTheContextEnds(t *testing.T) {
	ln := listen(t)
	silent(t, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	p := Probe{Sink: mustNew(t)} // no per-sample Timeout: only the context ends it
	_, err = p.RoundTrip(ctx, 5, c, []byte("ping"), 4)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Millisecond)))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "the conn still takes deadlines after RoundTrip")
	require.NoError(t, c.Close())
	require.NoError(t, ln.Close())
}

// deadlineless is a conn whose SetDeadline fails from call number failFrom
// on (1-based), the way a wrapper without deadline support does.
type deadlineless struct {
	net.Conn
	mu       sync.Mutex // guards calls
	calls    int
	failFrom int
}

var errNoDeadline = errors.New("deadlines not supported")

func (c *deadlineless) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls >= c.failFrom {
		return errNoDeadline
	}
	return c.Conn.SetDeadline(t)
}

func TestRoundTripReturnsTheErrorOfASetDeadlineThatFails(t *testing.T) {
	ln := listen(t)
	serve(t, ln)
	// RoundTrip with a Timeout sets the deadline once to check the conn
	// takes one, then before each of the 10 samples, then clears it.
	for _, tc := range []struct{ failFrom, samples int }{
		{1, 0},   // the check up front
		{2, 0},   // the first sample's deadline
		{4, 2},   // the third sample's
		{12, 10}, // clearing it at the end
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() }) // before serve's cleanup waits for its echo
		h := mustNew(t)
		p := Probe{Sink: h, Timeout: 5 * time.Second}
		st, err := p.RoundTrip(context.Background(), 10, &deadlineless{Conn: c, failFrom: tc.failFrom}, []byte("ping"), 4)
		require.ErrorIs(t, err, errNoDeadline, "SetDeadline failing from call %d: a sample without its timeout is not taken silently", tc.failFrom)
		assert.Equal(t, tc.samples, st.Samples, "SetDeadline failing from call %d: the run stops there", tc.failFrom)
		assert.Equal(t, uint64(st.Samples), h.Snapshot().Count(), "every sample taken is recorded")
	}
	// Without a Timeout, a ctx that can end needs the deadline too.
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = (&Probe{Sink: mustNew(t)}).RoundTrip(ctx, 3, &deadlineless{Conn: c, failFrom: 1}, []byte("ping"), 4)
	require.ErrorIs(t, err, errNoDeadline, "cancelling ctx could not have stopped a blocked Read")
	// With neither, no deadline is needed and none is set.
	st, err := (&Probe{Sink: mustNew(t)}).RoundTrip(context.Background(), 3, &deadlineless{Conn: c, failFrom: 1}, []byte("ping"), 4)
	require.NoError(t, err)
	assert.Equal(t, 3, st.Samples)
}
