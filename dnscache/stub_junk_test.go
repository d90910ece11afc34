package dnscache

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nettune/nettune/internal/dnstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// forge answers query with the address dnstest.SpoofedAddr, after edit has
// changed the message (nil: none), so that a client that takes it is caught.
func forge(query []byte, edit func(*dnsmessage.Message)) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(query); err != nil || len(m.Questions) != 1 {
		panic("dnscache test: cannot parse the query")
	}
	m.Header.Response = true
	m.Additionals = nil
	m.Answers = []dnsmessage.Resource{{
		Header: dnsmessage.ResourceHeader{Name: m.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 3600},
		Body:   &dnsmessage.AResource{A: dnstest.SpoofedAddr.As4()},
	}}
	if edit != nil {
		edit(&m)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// junkCases are datagrams that are not the answer to the query, each as a
// function of the query and of the real answer.
var junkCases = []struct {
	name string
	junk func(query, answer []byte) []byte
}{
	{"empty", func(_, _ []byte) []byte { return []byte{} }},
	{"one byte", func(_, _ []byte) []byte { return []byte{0} }},
	{"eleven bytes of the answer", func(_, a []byte) []byte { return a[:11] }},
	{"the answer's header alone", func(_, a []byte) []byte { return a[:12] }},
	{"the answer cut in its last record", func(_, a []byte) []byte { return a[:len(a)-1] }},
	{"the answer cut in its question", func(_, a []byte) []byte { return a[:14] }},
	{"garbage", func(_, _ []byte) []byte { return []byte(strings.Repeat("\xde\xad\xbe\xef", 64)) }},
	{"the query itself", func(q, _ []byte) []byte { return slices.Clone(q) }},
	{"a forged answer with the wrong ID", func(q, _ []byte) []byte {
		return forge(q, func(m *dnsmessage.Message) { m.Header.ID ^= 0x8001 })
	}},
	{"a forged answer not flagged as a response", func(q, _ []byte) []byte {
		return forge(q, func(m *dnsmessage.Message) { m.Header.Response = false })
	}},
	{"a forged answer with opcode STATUS", func(q, _ []byte) []byte {
		return forge(q, func(m *dnsmessage.Message) { m.Header.OpCode = 2 })
	}},
	{"a forged answer to another name", func(q, _ []byte) []byte {
		return forge(q, func(m *dnsmessage.Message) {
			m.Questions[0].Name = dnsmessage.MustNewName("other.test.")
			m.Answers[0].Header.Name = m.Questions[0].Name
		})
	}},
	{"a forged answer to another type", func(q, _ []byte) []byte {
		return forge(q, func(m *dnsmessage.Message) { m.Questions[0].Type = dnsmessage.TypeMX })
	}},
	{"a forged answer with two questions", func(q, _ []byte) []byte {
		return forge(q, func(m *dnsmessage.Message) { m.Questions = append(m.Questions, m.Questions[0]) })
	}},
	{"a forged answer with no question", func(q, _ []byte) []byte {
		return forge(q, func(m *dnsmessage.Message) { m.Questions = nil })
	}},
	{"a forged answer larger than the stub reads", func(q, _ []byte) []byte {
		return forge(q, func(m *dnsmessage.Message) {
			for range 200 {
				m.Answers = append(m.Answers, m.Answers[0])
			}
		})
	}},
	{"a forged answer cut in its record", func(q, _ []byte) []byte {
		b := forge(q, nil)
		return b[:len(b)-2]
	}},
}

func TestStubSkipsEveryDatagramThatIsNotTheAnswer(t *testing.T) {
	for _, tc := range junkCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t)
			srv.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
			srv.SetJunk("", func(query, answer []byte) [][]byte {
				return [][]byte{tc.junk(query, answer), tc.junk(query, answer)}
			})
			c := stubCache(t, srv, newFakeClock())
			got, err := c.LookupNetIP(testCtx(t), "ip4", "svc.test")
			require.NoError(t, err, "the junk aborted the lookup")
			assert.Equal(t, addrs("127.0.0.2"), got, "the answer, not the junk (%v is forged)", dnstest.SpoofedAddr)
		})
	}
	t.Run("all of them", func(t *testing.T) {
		srv := startServer(t)
		srv.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2", "::2")...)
		srv.SetJunk("", func(query, answer []byte) [][]byte {
			var out [][]byte
			for _, tc := range junkCases {
				out = append(out, tc.junk(query, answer))
			}
			return out
		})
		c := stubCache(t, srv, newFakeClock())
		got, err := c.LookupNetIP(testCtx(t), "ip", "svc.test")
		require.NoError(t, err)
		assert.ElementsMatch(t, addrs("127.0.0.2", "::2"), got)
	})
}

func TestATimeoutSaysHowManyDatagramsWereSkipped(t *testing.T) {
	// A server that sends only junk: two datagrams, never the answer.
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer pc.Close()
	done := make(chan struct{})
	defer func() { <-done }()
	defer pc.Close()
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		pc.WriteToUDPAddrPort(buf[:2], from)   // the ID alone
		pc.WriteToUDPAddrPort(buf[:n-1], from) // the query, cut
	}()
	rc, err := parseResolvConf("test.conf", []byte("nameserver "+pc.LocalAddr().String()+"\noptions timeout:1 attempts:1\n"))
	require.NoError(t, err)
	s := &stubSource{conf: rc}
	_, _, err = s.lookup(testCtx(t), "ip4", "svc.test.")
	var de *net.DNSError
	require.ErrorAs(t, err, &de)
	assert.True(t, de.IsTimeout, "no answer came: a timeout: %v", err)
	assert.False(t, de.IsNotFound)
	assert.Contains(t, err.Error(), "skipped 2 datagrams", "the timeout says junk came instead")
	t.Log(err)
}

// stubFor is a stub source asking srv alone, with one attempt and a 5 s
// timeout, and extra resolv.conf lines.
func stubFor(t testing.TB, srv *dnstest.Server, extra ...string) *stubSource {
	t.Helper()
	conf := "nameserver " + srv.Addr().String() + "\noptions timeout:5 attempts:1\n" + strings.Join(extra, "\n")
	rc, err := parseResolvConf("test.conf", []byte(conf))
	require.NoError(t, err)
	return &stubSource{conf: rc}
}

// tcpStub is stubFor(srv) and the question it is tested with.
func tcpStub(t testing.TB, srv *dnstest.Server) (*stubSource, dnsmessage.Question) {
	t.Helper()
	return stubFor(t, srv), dnsmessage.Question{
		Name: dnsmessage.MustNewName("svc.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET,
	}
}

// frame prefixes msg with its length, as DNS over TCP sends it.
func frame(msg []byte) []byte { return binary.BigEndian.AppendUint16(nil, uint16(len(msg))) }

func TestAMalformedTCPAnswerIsAClearErrorNeverAHang(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(query, answer []byte) []byte
	}{
		{"the stream closes at once", func(_, _ []byte) []byte { return nil }},
		{"half a length", func(_, _ []byte) []byte { return []byte{0} }},
		{"a length longer than the stream", func(_, a []byte) []byte { return append(frame(a), a[:len(a)-1]...) }},
		{"a zero length", func(_, _ []byte) []byte { return []byte{0, 0} }},
		{"garbage of the announced length", func(_, _ []byte) []byte { return append([]byte{0, 4}, "junk"...) }},
		{"an answer cut in its last record", func(_, a []byte) []byte {
			return append(frame(a[:len(a)-1]), a[:len(a)-1]...)
		}},
		{"an answer with the wrong ID", func(q, _ []byte) []byte {
			b := forge(q, func(m *dnsmessage.Message) { m.Header.ID++ })
			return append(frame(b), b...)
		}},
		{"an answer to another name", func(q, _ []byte) []byte {
			b := forge(q, func(m *dnsmessage.Message) { m.Questions[0].Name = dnsmessage.MustNewName("other.test.") })
			return append(frame(b), b...)
		}},
		{"an answer truncated again", func(q, _ []byte) []byte {
			b := forge(q, func(m *dnsmessage.Message) { m.Header.Truncated = true })
			return append(frame(b), b...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t)
			srv.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
			srv.SetTruncate("", true) // over UDP: go to TCP
			srv.SetTCPReply("", tc.reply)
			s, q := tcpStub(t, srv)
			p, err := s.exchange(testCtx(t), srv.Addr(), q)
			require.Error(t, err, "got %+v", p)
			assert.NotErrorIs(t, err, os.ErrDeadlineExceeded, "the stream ended: no need to wait for the deadline")
			assert.NotErrorIs(t, err, context.DeadlineExceeded, "the stream ended: no need to wait for the deadline")
			assert.Contains(t, err.Error(), "TCP answer: ", "the error says which answer was wrong")

			_, err = stubCache(t, srv, newFakeClock()).LookupNetIP(testCtx(t), "ip4", "svc.test")
			var de *net.DNSError
			require.ErrorAs(t, err, &de)
			assert.True(t, de.IsTemporary && !de.IsNotFound, "a broken answer is a transient failure: %+v", de)
			assert.Equal(t, srv.Addr().String(), de.Server, "the error names the server")
			assert.NotContains(t, err.Error(), "dnscache: dnscache:", "said once")
			t.Log(err)
		})
	}
}

// FuzzStubSkipsJunkBeforeTheAnswer sends two arbitrary datagrams from a real
// loopback server ahead of the real answer (127.0.0.2), with the query's ID
// copied into them or not. The stub must never fail or panic: it takes the
// first datagram that is a well-formed answer to its query (a forger who knows
// the ID and question is indistinguishable from the server), and otherwise
// the real answer.
func FuzzStubSkipsJunkBeforeTheAnswer(f *testing.F) {
	srv, err := dnstest.Start()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	srv.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
	s, q := tcpStub(f, srv)
	real := parsed{outcome: outcomeAddrs, addrs: addrs("127.0.0.2"), ttl: time.Minute}

	good, _ := answerFor(0, 1, 60, 0, false, false, dnsmessage.RCodeSuccess)
	f.Add([]byte{}, []byte{0}, false)
	f.Add(good[:11], good[:12], true)
	f.Add(good[:len(good)-1], good, false)
	f.Add(good[:len(good)-1], good, true)
	f.Add([]byte(strings.Repeat("\xff", 1500)), good[:20], true)
	f.Fuzz(func(t *testing.T, junk1, junk2 []byte, patchID bool) {
		want := make(chan parsed, 1)
		srv.SetJunk("", func(query, _ []byte) [][]byte {
			id := binary.BigEndian.Uint16(query)
			expect := real
			var out [][]byte
			decided := false
			for _, j := range [][]byte{junk1, junk2} {
				j = slices.Clone(j[:min(len(j), 60000)])
				if patchID && len(j) >= 2 {
					copy(j, query[:2])
				}
				out = append(out, j)
				// What the stub reads: a datagram longer than its buffer is cut.
				p, err := parseAnswer(j[:min(len(j), udpBufSize)], id, q)
				if err != nil || decided {
					continue
				}
				decided = true
				if !p.truncated { // a truncated one sends the stub to TCP, where the real answer is
					expect = p
				}
			}
			want <- expect
			return out
		})
		p, err := s.exchange(testCtx(t), srv.Addr(), q)
		if err != nil {
			t.Fatalf("junk %.64x, %.64x aborted the lookup: %v", junk1, junk2, err)
		}
		w := <-want
		if p.outcome != w.outcome || !slices.Equal(p.addrs, w.addrs) || p.ttl != w.ttl {
			t.Fatalf("junk %.64x, %.64x: got %+v, want %+v", junk1, junk2, p, w)
		}
	})
}

// FuzzStubTCPAnswer answers the stub's TCP retry with an arbitrary stream
// (with the query's ID written where a framed message's ID goes, or not),
// then closes it. The stub must return what the first framed message says
// when it is a complete answer to the query, and otherwise an error, at once
// (the stream ended: no waiting for the deadline) and without panicking.
func FuzzStubTCPAnswer(f *testing.F) {
	srv, err := dnstest.Start()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	srv.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
	srv.SetTruncate("", true)
	s, q := tcpStub(f, srv)

	good, _ := answerFor(0, 3, 60, 30, true, false, dnsmessage.RCodeSuccess)
	f.Add(append(frame(good), good...), true)
	f.Add(append(frame(good), good[:len(good)-1]...), true)
	f.Add(append(frame(good[:len(good)-1]), good[:len(good)-1]...), true)
	f.Add([]byte{0, 0}, false)
	f.Add([]byte{0}, false)
	f.Fuzz(func(t *testing.T, stream []byte, patchID bool) {
		type expectation struct {
			p  parsed
			ok bool
		}
		want := make(chan expectation, 1)
		srv.SetTCPReply("", func(query, _ []byte) []byte {
			st := slices.Clone(stream)
			if patchID && len(st) >= 4 {
				copy(st[2:], query[:2])
			}
			var e expectation
			if len(st) >= 2 {
				if l := int(binary.BigEndian.Uint16(st)); len(st)-2 >= l {
					p, err := parseAnswer(st[2:2+l], binary.BigEndian.Uint16(query), q)
					e = expectation{p, err == nil && !p.truncated && p.outcome != outcomeFailed}
					if err == nil && p.outcome == outcomeFailed {
						e.ok = true // a failure code is an answer too
					}
				}
			}
			want <- e
			return st
		})
		p, err := s.exchange(testCtx(t), srv.Addr(), q)
		w := <-want
		switch {
		case err != nil && w.ok:
			t.Fatalf("stream %.64x: a good answer %+v refused: %v", stream, w.p, err)
		case err == nil && !w.ok:
			t.Fatalf("stream %.64x: a bad stream accepted as %+v", stream, p)
		case err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)):
			t.Fatalf("stream %.64x: waited for the deadline after the stream ended: %v", stream, err)
		case err == nil && (p.outcome != w.p.outcome || !slices.Equal(p.addrs, w.p.addrs) || p.ttl != w.p.ttl):
			t.Fatalf("stream %.64x: got %+v, want %+v", stream, p, w.p)
		}
	})
}
