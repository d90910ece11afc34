package netlab

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newShaper(seed uint64) *shaper { return &shaper{rng: rand.New(rand.NewPCG(seed, 0))} }

func TestProfileValidateNamesTheFieldOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		p    Profile
		want string
	}{
		{Profile{Delay: -1}, "Delay"},
		{Profile{Delay: MaxDelay + 1}, "MaxDelay"},
		{Profile{Delay: time.Millisecond, Jitter: -1}, "Jitter"},
		{Profile{Delay: time.Millisecond, Jitter: 2 * time.Millisecond}, "Jitter"},
		{Profile{Loss: -0.1}, "Loss"},
		{Profile{Loss: 1.5}, "Loss"},
		{Profile{Loss: math.NaN()}, "Loss"},
		{Profile{Rate: -1}, "Rate"},
		{Profile{Rate: 1e6, QueueBytes: -1}, "QueueBytes"},
		{Profile{Rate: 1e6, QueuePackets: -1}, "QueuePackets"},
		{Profile{QueueBytes: 10000}, "without a Rate"},
		{Profile{MTU: 1000}, "MTU"},
		{Profile{MTU: 70000}, "MTU"},
		{Profile{Rate: 1e6, QueueBytes: 100}, "QueueBytes"},
	} {
		err := tc.p.Validate()
		if assert.Error(t, err, "%+v", tc.p) {
			assert.Contains(t, err.Error(), tc.want, "%+v", tc.p)
			assert.True(t, strings.HasPrefix(err.Error(), "netlab: profile: "), err.Error())
		}
		_, err = New(Path(tc.p))
		assert.Error(t, err, "New(Path(%+v))", tc.p)
	}
	for _, p := range []Profile{{}, LAN(), SameRegion(), CrossContinent(), Intercontinental(), LossyMobile(),
		{Rate: 1e6, QueuePackets: 1}, {Loss: 1, Blackhole: true, MTU: MinMTU}, {MTU: MaxMTU}} {
		assert.NoError(t, p.Validate(), "%v", p)
	}
}

func TestProfileStringShowsWhatIsSet(t *testing.T) {
	assert.Equal(t, "perfect", Profile{}.String())
	assert.Equal(t, "delay=30ms jitter=10ms loss=0.01 rate=10Mbit/s", LossyMobile().String())
	assert.Equal(t, "rate=1500bit/s queue=3000B blackhole", Profile{Rate: 1500, QueueBytes: 3000, Blackhole: true}.String())
}

// The number of packets lost out of n, each with probability p, is
// binomial: it lies within mean ± 5 standard deviations for any seed but
// about one in 1.7 million.
func TestLossFollowsTheConfiguredRateWithinBinomialBounds(t *testing.T) {
	const n = 100_000
	for _, p := range []float64{0.001, 0.01, 0.1, 0.5} {
		for seed := range uint64(3) {
			s := newShaper(seed)
			prof := Profile{Loss: p}
			lost := 0
			for i := range n {
				if _, v := s.admit(&prof, time.Duration(i), 1000); v == dropLoss {
					lost++
				}
			}
			mean, sd := n*p, math.Sqrt(n*p*(1-p))
			assert.InDelta(t, mean, float64(lost), 5*sd, "loss %v seed %d: %d of %d lost", p, seed, lost, n)
		}
	}
}

func TestTheSameSeedDropsTheSamePackets(t *testing.T) {
	drops := func(seed uint64) []int {
		s := newShaper(seed)
		prof := Profile{Loss: 0.1, Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond}
		var out []int
		for i := range 1000 {
			if _, v := s.admit(&prof, time.Duration(i), 100); v == dropLoss {
				out = append(out, i)
			}
		}
		return out
	}
	assert.Equal(t, drops(7), drops(7))
	assert.NotEqual(t, drops(7), drops(8))
}

func TestRateSpacesPacketsByTheirTransmissionTime(t *testing.T) {
	s := newShaper(0)
	prof := Profile{Rate: 8_000_000, Delay: time.Millisecond, QueuePackets: 100} // 1 byte per µs
	var last time.Duration
	for i := range 50 {
		release, v := s.admit(&prof, 0, 1000) // a burst: all arrive at once
		require.Equal(t, pass, v, "packet %d", i)
		want := time.Millisecond + time.Duration(i+1)*1000*time.Microsecond
		assert.Equal(t, want, release, "packet %d leaves after %d transmissions and the delay", i, i+1)
		last = release
	}
	// Once the queue has drained, a packet goes at once.
	release, v := s.admit(&prof, last, 500)
	require.Equal(t, pass, v)
	assert.Equal(t, last+500*time.Microsecond+time.Millisecond, release)
	assert.Equal(t, 50, s.hwPackets)
	assert.Equal(t, 50_000, s.hwBytes)
}

func TestAFullQueueDropsTheTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prof   Profile
		passed int
	}{
		{"bytes", Profile{Rate: 1_000_000, QueueBytes: 5000}, 5},
		{"packets", Profile{Rate: 1_000_000, QueuePackets: 3}, 3},
		{"default holds 50ms", Profile{Rate: 8_000_000}, 50}, // 50 ms at 1 MB/s: 50 packets of 1000 bytes
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newShaper(0)
			passed, dropped := 0, 0
			for range 100 {
				switch _, v := s.admit(&tc.prof, 0, 1000); v {
				case pass:
					passed++
				case dropQueue:
					dropped++
				default:
					t.Fatalf("verdict %d", v)
				}
			}
			assert.Equal(t, tc.passed, passed)
			assert.Equal(t, 100-tc.passed, dropped)
			// The queue drains at Rate: after one transmission time a
			// packet fits again.
			_, v := s.admit(&tc.prof, time.Duration(float64(1000*8)/float64(tc.prof.Rate)*float64(time.Second)), 1000)
			assert.Equal(t, pass, v, "after one packet left the queue")
		})
	}
}

func TestJitterNeverReordersUnlessAsked(t *testing.T) {
	for _, reorder := range []bool{false, true} {
		s := newShaper(1)
		prof := Profile{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Reorder: reorder}
		var last time.Duration
		reordered := 0
		for i := range 10_000 {
			now := time.Duration(i) * 10 * time.Microsecond
			release, v := s.admit(&prof, now, 100)
			require.Equal(t, pass, v)
			assert.GreaterOrEqual(t, release, now+5*time.Millisecond)
			assert.LessOrEqual(t, release, now+15*time.Millisecond)
			if release < last {
				reordered++
			}
			last = max(last, release)
		}
		if reorder {
			assert.Positive(t, reordered, "with Reorder some packets overtake")
		} else {
			assert.Zero(t, reordered, "without Reorder no packet overtakes")
		}
	}
}

func TestBlackholeAndMTUDropBeforeLossDraws(t *testing.T) {
	s := newShaper(0)
	_, v := s.admit(&Profile{Blackhole: true, Loss: 1}, 0, 100)
	assert.Equal(t, dropBlackhole, v)
	_, v = s.admit(&Profile{MTU: 1280, Loss: 1}, 0, 1281)
	assert.Equal(t, dropTooBig, v)
	_, v = s.admit(&Profile{}, 0, 1500)
	assert.Equal(t, pass, v, "the default MTU is 1500")
	_, v = s.admit(&Profile{}, 0, 1501)
	assert.Equal(t, dropTooBig, v)
}

// pipeDevice is a device of a test: reads come from in, writes go to out
// with the time they were made.
type pipeDevice struct {
	in   chan []byte
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	out  [][]byte
	at   []time.Time
}

func newPipeDevice() *pipeDevice {
	return &pipeDevice{in: make(chan []byte, 1024), done: make(chan struct{})}
}

func (d *pipeDevice) Read(b []byte) (int, error) {
	select {
	case p := <-d.in:
		return copy(b, p), nil
	case <-d.done:
		return 0, os.ErrClosed
	}
}

func (d *pipeDevice) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.out = append(d.out, append([]byte(nil), b...))
	d.at = append(d.at, time.Now())
	return len(b), nil
}

func (d *pipeDevice) Close() { d.once.Do(func() { close(d.done) }) }

func (d *pipeDevice) written() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.out)
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func startRelay(t *testing.T, l *Link, src io.Reader, dst io.Writer) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); readLoop(src, func([]byte) *Link { return l }, l.fail) }()
	go func() { defer wg.Done(); l.writeLoop(dst, done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			if c, ok := src.(interface{ Close() }); ok {
				c.Close()
			}
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestTheRelayDeliversInOrderNoSoonerThanTheDelay(t *testing.T) {
	const delay = 5 * time.Millisecond
	l, err := newLink("test", Profile{Delay: delay}, 0, 0)
	require.NoError(t, err)
	src, dst := newPipeDevice(), newPipeDevice()
	stop := startRelay(t, l, src, dst)
	const n = 200
	sent := make([]time.Time, n)
	for i := range n {
		sent[i] = time.Now()
		src.in <- []byte{byte(i), byte(i >> 8)}
		if i%20 == 0 {
			time.Sleep(time.Millisecond) // spread the packets over time, not a wait for a condition
		}
	}
	waitFor(t, "every packet delivered", func() bool { return dst.written() == n })
	stop()
	for i := range n {
		assert.Equal(t, []byte{byte(i), byte(i >> 8)}, dst.out[i], "packet %d in order", i)
		assert.GreaterOrEqual(t, dst.at[i].Sub(sent[i]), delay, "packet %d", i)
	}
	st := l.Stats()
	assert.Equal(t, uint64(n), st.Sent)
	assert.Equal(t, uint64(n), st.Delivered)
	assert.Equal(t, uint64(2*n), st.DeliveredBytes)
	assert.Equal(t, uint64(n), st.Delay.Count())
	assert.GreaterOrEqual(t, st.Delay.Min(), delay)
	assert.Equal(t, uint64(n), st.Late.Count())
	t.Logf("added delay p50 %v p99 %v; late p50 %v p99 %v",
		st.Delay.Quantile(0.5), st.Delay.Quantile(0.99), st.Late.Quantile(0.5), st.Late.Quantile(0.99))
}

func TestAProfileChangedAtRunTimeAppliesToTheNextPackets(t *testing.T) {
	l, err := newLink("test", Profile{}, 0, 0)
	require.NoError(t, err)
	src, dst := newPipeDevice(), newPipeDevice()
	startRelay(t, l, src, dst)
	src.in <- []byte{1}
	waitFor(t, "the first packet", func() bool { return dst.written() == 1 })
	require.NoError(t, l.SetProfile(Profile{Blackhole: true}))
	assert.True(t, l.Profile().Blackhole)
	src.in <- []byte{2}
	waitFor(t, "the second packet dropped", func() bool { return l.Stats().Blackholed == 1 })
	require.NoError(t, l.SetProfile(Profile{Loss: 1}))
	src.in <- []byte{3}
	waitFor(t, "the third packet lost", func() bool { return l.Stats().Lost == 1 })
	require.NoError(t, l.SetProfile(Profile{}))
	src.in <- []byte{4}
	waitFor(t, "the fourth packet", func() bool { return dst.written() == 2 })
	assert.Equal(t, []byte{4}, dst.out[1])
	assert.Error(t, l.SetProfile(Profile{Loss: 2}))
	assert.Equal(t, Profile{}, l.Profile(), "a refused profile changes nothing")
	st := l.Stats()
	assert.Equal(t, uint64(4), st.Sent)
	assert.Equal(t, uint64(2), st.Delivered)
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("device gone") }

func TestADeviceErrorIsKeptForClose(t *testing.T) {
	l, err := newLink("test", Profile{}, 0, 0)
	require.NoError(t, err)
	readLoop(failingReader{}, func([]byte) *Link { return l }, l.fail)
	assert.ErrorContains(t, l.firstErr(), "device gone")
	l2, _ := newLink("test", Profile{}, 0, 0)
	l2.fail(os.ErrClosed)
	assert.NoError(t, l2.firstErr(), "a close is how the relay stops, not an error")
}

func TestBurstyLossKeepsTheRateAndTheMeanBurst(t *testing.T) {
	const n = 200_000
	for _, tc := range []struct{ loss, burst float64 }{{0.01, 1}, {0.01, 3}, {0.05, 10}, {0.2, 2}} {
		s := newShaper(5)
		prof := Profile{Loss: tc.loss, LossBurst: tc.burst}
		require.NoError(t, prof.Validate())
		lost, bursts, run := 0, 0, 0
		for i := range n {
			_, v := s.admit(&prof, time.Duration(i), 100)
			if v == dropLoss {
				lost++
				run++
				continue
			}
			if run > 0 {
				bursts++
			}
			run = 0
		}
		rate := float64(lost) / n
		mean := float64(lost) / float64(bursts)
		// Losses are correlated, so the binomial bound is widened by the
		// burst length.
		sd := math.Sqrt(n*tc.loss*(1-tc.loss)) * (2*tc.burst + 1)
		assert.InDelta(t, tc.loss*n, float64(lost), 5*sd, "loss %v burst %v: rate %.4f", tc.loss, tc.burst, rate)
		assert.InEpsilon(t, tc.burst, mean, 0.15, "loss %v burst %v: mean burst %.2f", tc.loss, tc.burst, mean)
	}
	assert.Error(t, Profile{Loss: 0.1, LossBurst: 0.5}.Validate(), "a burst below one packet")
	assert.Error(t, Profile{Loss: 0.6, LossBurst: 1}.Validate(), "60% loss needs bursts longer than 1")
	assert.Error(t, Profile{Loss: 0.1, LossBurst: math.NaN()}.Validate())
}

func TestALinkHoldsBoundedMemoryWhateverTheLoad(t *testing.T) {
	l, err := newLink("test", Profile{Delay: MaxDelay, MTU: MaxMTU}, 0, 0)
	require.NoError(t, err)
	big := make([]byte, MaxMTU)
	n := maxInFlightBytes/MaxMTU + 10
	for range n {
		l.input(big, 0)
	}
	st := l.Stats()
	assert.Equal(t, uint64(n), st.Sent)
	assert.Equal(t, uint64(n-maxInFlightBytes/MaxMTU), st.Overflowed, "packets past the in-flight bytes are dropped")
	assert.LessOrEqual(t, l.qBytes, maxInFlightBytes)

	small := []byte{1}
	for range maxInFlight {
		l.input(small, 0)
	}
	assert.LessOrEqual(t, len(l.q), maxInFlight)
}
