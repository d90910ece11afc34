package latency

import (
	"crypto/tls"
	"errors"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// samples is a Sink that keeps what it is given.
type samples struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *samples) Record(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// steppedClock is a fake clock that a test moves by hand.
type steppedClock struct{ t time.Time }

func (c *steppedClock) now() time.Time { return c.t }
func (c *steppedClock) to(ms int) *steppedClock {
	c.t = time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond)
	return c
}

// traced returns an HTTPStages on a stepped clock at 0 and a round trip
// started at 0.
func traced() (*HTTPStages, *roundTrip, *steppedClock, *samples) {
	var connect samples
	c := (&steppedClock{}).to(0)
	s := &HTTPStages{Connect: &connect, Now: c.now}
	return s, &roundTrip{s: s, start: c.now()}, c, &connect
}

func TestHTTPStagesRecordsTheFirstAttemptThatConnectsAndNotTheLoserOfTheRace(t *testing.T) {
	s, rt, c, connect := traced()
	tr := rt.trace()
	tr.GetConn("example.com:443")
	tr.ConnectStart("tcp", "[2001:db8::1]:443")
	c.to(300)
	tr.ConnectStart("tcp", "192.0.2.1:443") // the fallback, after the delay
	c.to(310)
	tr.ConnectDone("tcp", "192.0.2.1:443", nil) // the fallback wins, in 10ms
	c.to(320)
	tr.ConnectDone("tcp", "[2001:db8::1]:443", nil) // the primary completes too late: closed by the dialer
	assert.Equal(t, []time.Duration{10 * time.Millisecond}, connect.d, "only the winner, from its own start")
	assert.Equal(t, uint64(1), s.Stats().Conns)
}

func TestHTTPStagesRecordsNoFailedAttemptAndTheSuccessAfterIt(t *testing.T) {
	s, rt, c, connect := traced()
	tr := rt.trace()
	tr.GetConn("example.com:443")
	tr.ConnectStart("tcp", "[2001:db8::1]:443")
	c.to(5)
	tr.ConnectDone("tcp", "[2001:db8::1]:443", errors.New("connection refused"))
	tr.ConnectStart("tcp", "192.0.2.1:443")
	c.to(12)
	tr.ConnectDone("tcp", "192.0.2.1:443", nil)
	assert.Equal(t, []time.Duration{7 * time.Millisecond}, connect.d)

	// A retry of the request on a new connection is a new dial.
	tr.GetConn("example.com:443")
	tr.ConnectStart("tcp", "192.0.2.1:443")
	c.to(15)
	tr.ConnectDone("tcp", "192.0.2.1:443", nil)
	assert.Equal(t, []time.Duration{7 * time.Millisecond, 3 * time.Millisecond}, connect.d)
	assert.Equal(t, uint64(2), s.Stats().Conns)
}

func TestHTTPStagesRecordsNoFailedLookupOrHandshake(t *testing.T) {
	var dns, hs samples
	c := (&steppedClock{}).to(0)
	s := &HTTPStages{DNS: &dns, TLS: &hs, Now: c.now}
	tr := (&roundTrip{s: s, start: c.now()}).trace()
	tr.DNSStart(httptrace.DNSStartInfo{Host: "example.com"})
	c.to(4)
	tr.DNSDone(httptrace.DNSDoneInfo{Err: errors.New("no such host")})
	tr.DNSStart(httptrace.DNSStartInfo{Host: "example.com"})
	c.to(6)
	tr.DNSDone(httptrace.DNSDoneInfo{})
	tr.TLSHandshakeStart()
	c.to(9)
	tr.TLSHandshakeDone(tls.ConnectionState{}, errors.New("bad certificate"))
	tr.TLSHandshakeStart()
	c.to(10)
	tr.TLSHandshakeDone(tls.ConnectionState{}, nil)
	assert.Equal(t, []time.Duration{2 * time.Millisecond}, dns.d)
	assert.Equal(t, []time.Duration{time.Millisecond}, hs.d)
}
