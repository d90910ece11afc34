package pool_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waits is a fake Recorder that keeps every duration it is given.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) Record(d time.Duration) {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func (w *waits) sum() (n int, sum time.Duration) {
	for _, d := range w.all() {
		n++
		sum += d
	}
	return n, sum
}

func TestRecordWaitTimeRecordsZeroForAnIdleHitAndTheTimeInTheQueueForAWait(t *testing.T) {
	clock := newFakeClock()
	var rec waits
	p := newPool(t, &factory{}, pool.MaxSize(1), pool.Clock(clock.Now), pool.RecordWaitTime(&rec))
	ctx := context.Background()

	a, err := p.Get(ctx) // nothing idle: waits for its dial, in no fake time
	require.NoError(t, err)
	a.Release()
	a, err = p.Get(ctx) // an idle hit
	require.NoError(t, err)

	got := make(chan error, 1)
	go func() {
		b, err := p.Get(ctx)
		if err == nil {
			b.Release()
		}
		got <- err
	}()
	eventually(t, "the second Get waits", func() bool { return p.Stats().Waiting == 1 })
	clock.Advance(250 * time.Millisecond) // the time a is held while the Get waits
	a.Release()
	require.NoError(t, <-got)

	assert.Equal(t, []time.Duration{0, 0, 250 * time.Millisecond}, rec.all(),
		"the dial's wait (no fake time passed), the idle hit, the hand-off after 250ms")
	st := p.Stats()
	n, sum := rec.sum()
	assert.Equal(t, int(st.Hits+st.Waits), n, "one Record per resource handed out")
	assert.Equal(t, st.WaitTime, sum, "the recorded waits add up to Stats.WaitTime")
}

func TestRecordWaitTimeRecordsNothingForAGetThatFails(t *testing.T) {
	var rec waits
	f := &factory{}
	p := newPool(t, f, pool.MaxSize(1), pool.RecordWaitTime(&rec), pool.DialBackoff(-1, 0))
	ctx := context.Background()

	f.setFail(errors.New("refused"))
	_, err := p.Get(ctx)
	require.Error(t, err, "a failed dial")
	_, err = p.TryGet(ctx)
	require.ErrorIs(t, err, pool.ErrUnavailable)
	// TryGet dialed in the background: let that dial fail too before
	// dials work again (else whether it failed depended on timing).
	eventually(t, "TryGet's dial ends", func() bool { return p.Stats().Dialing == 0 })
	f.setFail(nil)

	a, err := p.Get(ctx)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	_, err = p.Get(short)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a Get that times out in the queue")
	_, err = p.Get(short)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a Get whose context had ended")
	a.Release()
	h, err := p.TryGet(ctx)
	require.NoError(t, err, "a TryGet that gets the idle resource")
	h.Release()

	d := rec.all()
	require.Len(t, d, 2, "only the Get that dialed and the TryGet that took the idle resource record: %v", d)
	assert.Equal(t, time.Duration(0), d[1], "TryGet never waits")
	st := p.Stats()
	assert.Equal(t, uint64(2), st.Timeouts, "the failures are counted apart")
	assert.Equal(t, uint64(2), st.DialErrors, "the Get's dial and TryGet's background dial")
}

func TestRecordWaitTimeIntoALatencyHistogramSeesAtLeastTheTimeTheResourceWasHeld(t *testing.T) {
	h, err := latency.New()
	require.NoError(t, err)
	p := newPool(t, &factory{}, pool.MaxSize(1), pool.RecordWaitTime(h))
	ctx := context.Background()

	a, err := p.Get(ctx) // dials: a wait
	require.NoError(t, err)
	a.Release()
	a, err = p.Get(ctx) // an idle hit: 0
	require.NoError(t, err)

	got := make(chan error, 1)
	go func() {
		b, err := p.Get(ctx)
		if err == nil {
			b.Release()
		}
		got <- err
	}()
	eventually(t, "the second Get waits", func() bool { return p.Stats().Waiting == 1 })
	start := time.Now()
	time.Sleep(2 * time.Millisecond) // hold the resource while the Get waits
	held := time.Since(start)
	a.Release()
	require.NoError(t, <-got)

	s := h.Snapshot()
	st := p.Stats()
	assert.Equal(t, st.Hits+st.Waits, s.Count(), "one value per resource handed out")
	assert.Equal(t, uint64(1), s.CountAtOrBelow(0), "the idle hit records 0")
	assert.GreaterOrEqual(t, s.Max(), held, "the hand-off's wait covers the time the resource was held")
	sum, ok := s.Sum()
	require.True(t, ok)
	assert.Equal(t, st.WaitTime, sum, "the histogram's sum is Stats.WaitTime")
}

func TestRecordWaitTimeCountsEveryResourceHandedOutUnderContention(t *testing.T) {
	var rec waits
	f := &factory{}
	var checks sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(context.Context, *res) error {
		checks.Lock()
		defer checks.Unlock()
		if rng.IntN(10) == 0 {
			return errors.New("stale")
		}
		return nil
	}
	p := newPool(t, f, pool.MaxSize(2), pool.RecordWaitTime(&rec), pool.HealthCheck(pool.EveryCheckout, check))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration((g+i)%3)*50*time.Microsecond)
				if i%5 == 0 {
					ctx, cancel = context.WithCancel(context.Background())
				}
				h, err := p.Get(ctx)
				cancel()
				if err == nil {
					h.Release()
				}
			}
		})
	}
	wg.Wait()
	st := p.Stats()
	n, sum := rec.sum()
	assert.Equal(t, int(st.Hits+st.Waits), n, "one Record per resource handed out, none for a failed Get (%d timeouts)", st.Timeouts)
	assert.Equal(t, st.WaitTime, sum)
	assert.Positive(t, st.Waits, "some Gets waited")
	assert.Positive(t, st.Timeouts, "some Gets timed out")
	assert.Positive(t, st.Closed.Health, "some checks failed")
	for _, d := range rec.all() {
		require.GreaterOrEqual(t, d, time.Duration(0))
	}
}

func TestRecordWaitTimeRefusesANilRecorder(t *testing.T) {
	_, err := pool.New((&factory{}).dial, (&factory{}).close, pool.RecordWaitTime(nil))
	var oe *pool.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "pool.RecordWaitTime(<nil>): nil Recorder", err.Error())
	assert.Equal(t, "pool.RecordWaitTime(*latency.Histogram)", pool.RecordWaitTime(&latency.Histogram{}).String())
}
