package dnstest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/net/dns/dnsmessage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestServerAnswersAAndAAAAQueriesFromItsZone(t *testing.T) {
	s := start(t)
	s.SetAddrs("svc.test", time.Minute, netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::2"))

	got, err := s.Resolver().LookupNetIP(ctx(t), "ip", "svc.test")
	require.NoError(t, err)
	assert.ElementsMatch(t, []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::2")}, got)
	assert.Equal(t, 1, s.Queries("svc.test", dnsmessage.TypeA), "one A query")
	assert.Equal(t, 1, s.Queries("SVC.test.", dnsmessage.TypeAAAA), "one AAAA query, names compared without case")
}

func TestServerSaysNXDOMAINForUnknownNames(t *testing.T) {
	s := start(t)
	_, err := s.Resolver().LookupNetIP(ctx(t), "ip4", "nope.test")
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	assert.True(t, dnsErr.IsNotFound, "NXDOMAIN is reported as not found: %v", err)
}

func TestServerFollowsCNAMEChainsInsideItsZone(t *testing.T) {
	s := start(t)
	s.SetCNAME("www.test", "edge.test", time.Minute)
	s.SetAddrs("edge.test", time.Minute, netip.MustParseAddr("127.0.0.9"))
	got, err := s.Resolver().LookupNetIP(ctx(t), "ip4", "www.test")
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.9")}, got)
}

func TestServerForcedSERVFAILIsATemporaryFailureNotNotFound(t *testing.T) {
	s := start(t)
	s.SetAddrs("svc.test", time.Minute, netip.MustParseAddr("127.0.0.2"))
	s.SetRCode("svc.test", dnsmessage.RCodeServerFailure)
	_, err := s.Resolver().LookupNetIP(ctx(t), "ip4", "svc.test")
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	assert.False(t, dnsErr.IsNotFound, "SERVFAIL must not read as NXDOMAIN: %v", err)

	s.SetRCode("svc.test", dnsmessage.RCodeSuccess)
	_, err = s.Resolver().LookupNetIP(ctx(t), "ip4", "svc.test")
	assert.NoError(t, err, "clearing the override restores answers")
}

func TestServerTruncationMakesGoRetryOverTCP(t *testing.T) {
	s := start(t)
	s.SetAddrs("big.test", time.Minute, netip.MustParseAddr("127.0.0.3"))
	s.SetTruncate("", true)
	got, err := s.Resolver().LookupNetIP(ctx(t), "ip4", "big.test")
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.3")}, got)
	assert.Positive(t, s.TCPQueries(), "the truncated answer forced a TCP query")
	assert.Equal(t, 2, s.Queries("big.test", dnsmessage.TypeA), "one UDP and one TCP query")
}

func TestServerTruncatesOversizedUDPAnswersByItself(t *testing.T) {
	s := start(t)
	var many []netip.Addr
	for i := range 60 {
		many = append(many, netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}))
	}
	s.SetAddrs("many.test", time.Minute, many...)
	got, err := s.Resolver().LookupNetIP(ctx(t), "ip4", "many.test")
	require.NoError(t, err)
	assert.Len(t, got, 60)
	assert.Positive(t, s.TCPQueries(), "60 A records do not fit in 512 bytes")
}

func TestServerOutageDropsQueriesUntilItEnds(t *testing.T) {
	s := start(t)
	s.SetAddrs("svc.test", time.Minute, netip.MustParseAddr("127.0.0.2"))
	s.SetOutage(true)
	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Resolver().LookupNetIP(c, "ip4", "svc.test")
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	assert.True(t, dnsErr.IsTimeout || errors.Is(err, context.DeadlineExceeded), "an outage looks like a timeout: %v", err)
	assert.Positive(t, s.Queries("svc.test", dnsmessage.TypeA), "dropped queries are still counted")

	s.SetOutage(false)
	_, err = s.Resolver().LookupNetIP(ctx(t), "ip4", "svc.test")
	assert.NoError(t, err, "answers come back after the outage")
}

func TestServerDelaysAnswersByAtLeastTheConfiguredTime(t *testing.T) {
	s := start(t)
	s.SetAddrs("slow.test", time.Minute, netip.MustParseAddr("127.0.0.2"))
	s.SetDelay("slow.test", 150*time.Millisecond)
	start := time.Now()
	_, err := s.Resolver().LookupNetIP(ctx(t), "ip4", "slow.test")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "the answer waited for the delay")
}

func TestServerSendsSOAWithTheNegativeTTL(t *testing.T) {
	s := start(t)
	s.SetNegativeTTL(7 * time.Second)
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 42, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("gone.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	b, err := q.Pack()
	require.NoError(t, err)
	c, err := net.Dial("udp", s.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write(b)
	require.NoError(t, err)
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	require.NoError(t, err)
	var m dnsmessage.Message
	require.NoError(t, m.Unpack(buf[:n]))
	assert.Equal(t, uint16(42), m.Header.ID)
	assert.Equal(t, dnsmessage.RCodeNameError, m.Header.RCode)
	require.Len(t, m.Authorities, 1)
	soa, ok := m.Authorities[0].Body.(*dnsmessage.SOAResource)
	require.True(t, ok)
	assert.Equal(t, uint32(7), soa.MinTTL)
}

func TestServerSpoofSendsForgedAnswersBeforeTheRealOne(t *testing.T) {
	s := start(t)
	s.SetAddrs("svc.test", time.Minute, netip.MustParseAddr("127.0.0.2"))
	s.SetSpoof("svc.test", true)
	// Go's resolver checks IDs and questions too: it must see the real answer.
	got, err := s.Resolver().LookupNetIP(ctx(t), "ip4", "svc.test")
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.2")}, got)
}

func TestWriteResolvConfNamesTheServerWithItsPort(t *testing.T) {
	s := start(t)
	p := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, s.WriteResolvConf(p, "options timeout:1"))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "nameserver "+s.Addr().String()+"\n"), "got %q", b)
	assert.Contains(t, string(b), "options timeout:1\n")
}

func TestCloseStopsAServerWithAnswersStillDelayed(t *testing.T) {
	s, err := Start()
	require.NoError(t, err)
	s.SetAddrs("slow.test", time.Minute, netip.MustParseAddr("127.0.0.2"))
	s.SetDelay("", time.Hour)
	c, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c2, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _ = s.Resolver().LookupNetIP(c2, "ip4", "slow.test")
	require.NoError(t, s.Close(), "goleak in TestMain checks that nothing is left")
	assert.NoError(t, s.Close(), "a second Close is a no-op")
}

// query packs an A query for name with the given ID.
func query(t testing.TB, id uint16, name string) []byte {
	t.Helper()
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	b, err := q.Pack()
	require.NoError(t, err)
	return b
}

func TestServerSendsJunkDatagramsBeforeTheRealAnswer(t *testing.T) {
	s := start(t)
	s.SetAddrs("svc.test", time.Minute, netip.MustParseAddr("127.0.0.2"))
	s.SetJunk("svc.test", func(query, answer []byte) [][]byte {
		return [][]byte{{}, query[:2], answer[:len(answer)-1]}
	})
	c, err := net.Dial("udp", s.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write(query(t, 7, "svc.test."))
	require.NoError(t, err)
	var got [][]byte
	buf := make([]byte, 512)
	for range 4 {
		n, err := c.Read(buf)
		require.NoError(t, err)
		got = append(got, append([]byte(nil), buf[:n]...))
	}
	assert.Empty(t, got[0], "an empty datagram first")
	assert.Equal(t, []byte{0, 7}, got[1], "then the query's ID alone")
	var m dnsmessage.Message
	require.NoError(t, m.Unpack(got[3]), "the real answer comes last")
	assert.Equal(t, got[3][:len(got[3])-1], got[2], "the answer cut short came before it")
	require.Len(t, m.Answers, 1)

	s.SetJunk("svc.test", nil)
	_, err = c.Write(query(t, 8, "svc.test."))
	require.NoError(t, err)
	n, err := c.Read(buf)
	require.NoError(t, err)
	require.NoError(t, m.Unpack(buf[:n]), "without the hook only the answer comes")
	assert.Equal(t, uint16(8), m.Header.ID)
}

func TestServerTCPReplyWritesTheChosenBytesAndCloses(t *testing.T) {
	s := start(t)
	s.SetAddrs("svc.test", time.Minute, netip.MustParseAddr("127.0.0.2"))
	s.SetTCPReply("", func(query, answer []byte) []byte {
		return append([]byte{0xff, 0xff}, answer[:5]...) // a length the stream never delivers
	})
	c, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	q := query(t, 9, "svc.test.")
	_, err = c.Write(append([]byte{0, byte(len(q))}, q...))
	require.NoError(t, err)
	b, err := io.ReadAll(c)
	require.NoError(t, err, "the server closed the stream after the bytes")
	assert.Equal(t, []byte{0xff, 0xff, 0, 9}, b[:4], "the chosen bytes, the answer's ID among them")
	assert.Len(t, b, 7)
	assert.Equal(t, 1, s.TCPQueries())
}

// failingListener fails every Accept with EMFILE while failing is set,
// counting the calls.
type failingListener struct {
	net.Listener
	failing atomic.Bool
	calls   atomic.Int64
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.failing.Load() {
		l.calls.Add(1)
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestServerBacksOffAfterAnAcceptErrorAndServesAgainAfterIt(t *testing.T) {
	fl := &failingListener{}
	fl.failing.Store(true)
	s, err := startWrapped(func(l net.Listener) net.Listener { fl.Listener = l; return fl })
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	s.SetAddrs("tcp.test", time.Minute, netip.MustParseAddr("198.18.0.7"))

	// Over 200 ms a loop that backs off 5 ms, 10 ms, 20 ms, … calls Accept
	// at most 7 times; one that retries at once calls it thousands of times.
	// A loaded machine only lowers the count.
	time.Sleep(200 * time.Millisecond)
	calls := fl.calls.Load()
	assert.LessOrEqual(t, calls, int64(8), "the accept loop spins on a lasting error instead of backing off")
	assert.Positive(t, calls)

	fl.failing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 7, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("tcp.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	b, err := q.Pack()
	require.NoError(t, err)
	_, err = c.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...))
	require.NoError(t, err)
	var n [2]byte
	_, err = io.ReadFull(c, n[:])
	require.NoError(t, err, "the server stopped serving TCP after the accept errors ended")
	resp := make([]byte, int(n[0])<<8|int(n[1]))
	_, err = io.ReadFull(c, resp)
	require.NoError(t, err)
	var m dnsmessage.Message
	require.NoError(t, m.Unpack(resp))
	require.Len(t, m.Answers, 1)
	assert.Equal(t, [4]byte{198, 18, 0, 7}, m.Answers[0].Body.(*dnsmessage.AResource).A)
}
