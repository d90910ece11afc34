package latency

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// feed records the same values, through every writing method, into a
// histogram-like sink.
func feed(t *testing.T, record func(time.Duration), recordN func(int64, uint64) error, corrected func(d, iv time.Duration) error) {
	t.Helper()
	for i := range 100 {
		record(time.Duration(i) * time.Microsecond)
	}
	record(-time.Second) // counted by Invalid
	if recordN != nil {
		require.NoError(t, recordN(int64(3*time.Millisecond), 7))
	}
	require.NoError(t, corrected(50*time.Millisecond, 10*time.Millisecond))
}

func TestAZeroHistogramRecordsLikeOneFromNew(t *testing.T) {
	var zero Histogram
	ref := mustNew(t)
	for _, h := range []*Histogram{&zero, ref} {
		feed(t, h.Record, h.RecordN, h.RecordCorrected)
	}
	assert.Equal(t, DefaultScale, zero.Scale())
	assert.Equal(t, ErrorAtScale(DefaultScale), zero.RelativeError())
	assert.Equal(t, ref.Snapshot(), zero.Snapshot(), "the zero Histogram holds what New's does")

	var merged Histogram
	require.NoError(t, merged.Merge(ref.Snapshot()))
	assert.Equal(t, ref.Snapshot(), merged.Snapshot(), "Merge into a zero Histogram")

	var empty Histogram
	s := empty.Snapshot()
	assert.Equal(t, uint64(0), s.Count())
	assert.Equal(t, DefaultScale, s.Scale(), "an unused zero Histogram is empty at the default scale")
}

func TestAZeroHistogramSetUpByConcurrentWritersLosesNothing(t *testing.T) {
	for range 20 {
		var h Histogram
		const writers, per = 8, 500
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range per {
					h.RecordValue(int64(w*per + i + 1))
				}
			})
		}
		wg.Wait()
		s := h.Snapshot()
		require.Equal(t, uint64(writers*per), s.Count())
		require.Equal(t, time.Duration(writers*per), s.Max())
	}
}

func TestAZeroRecorderRecordsLikeOneFromNewRecorder(t *testing.T) {
	var zero Recorder
	ref, err := NewRecorder()
	require.NoError(t, err)
	for _, r := range []*Recorder{&zero, ref} {
		feed(t, r.Record, nil, r.RecordCorrected)
	}
	assert.Equal(t, DefaultScale, zero.Scale())
	assert.Equal(t, ref.Interval(), zero.Interval(), "the zero Recorder's interval holds what NewRecorder's does")
	assert.Equal(t, uint64(0), zero.Interval().Count(), "and a new interval starts")

	var concurrent Recorder
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 1000 {
				concurrent.RecordValue(int64(i + 1))
			}
		})
	}
	wg.Wait()
	assert.Equal(t, uint64(4000), concurrent.Interval().Count())
}

func TestAZeroProbeReturnsAnErrorFromEveryMethod(t *testing.T) {
	var p Probe
	ctx := context.Background()
	nop := func(context.Context) error { return nil }
	ln := listen(t)
	serve(t, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	var d net.Dialer
	rtt := func(net.Conn) (time.Duration, error) { return time.Millisecond, nil }
	for name, call := range map[string]func() (ProbeResult, error){
		"Time":      func() (ProbeResult, error) { return p.Time(ctx, 1, nop) },
		"Connect":   func() (ProbeResult, error) { return p.Connect(ctx, 1, d.DialContext, "tcp", ln.Addr().String()) },
		"RoundTrip": func() (ProbeResult, error) { return p.RoundTrip(ctx, 1, c, []byte("x"), 1) },
		"OpenLoop":  func() (ProbeResult, error) { return p.OpenLoop(ctx, 1, time.Millisecond, nop) },
		"KernelRTT": func() (ProbeResult, error) { return p.KernelRTT(ctx, 1, 0, c, rtt) },
	} {
		res, err := call()
		assert.Errorf(t, err, "%s on a zero Probe: it has no Sink", name)
		assert.Equalf(t, ProbeResult{}, res, "%s on a zero Probe takes no sample", name)
	}
}
