package dnscache

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

var fuzzQ = dnsmessage.Question{
	Name:  dnsmessage.MustNewName("svc.example.test."),
	Type:  dnsmessage.TypeA,
	Class: dnsmessage.ClassINET,
}

// answerFor builds an answer to fuzzQ: an optional CNAME hop, then n A
// records at the end of the chain, optionally with the owner names in upper
// case (names compare without case).
func answerFor(id uint16, n uint8, ttlA, ttlC uint32, viaCNAME, upper bool, rcode dnsmessage.RCode) ([]byte, []netip.Addr) {
	owner := fuzzQ.Name
	var answers []dnsmessage.Resource
	if viaCNAME {
		target := dnsmessage.MustNewName("edge.example.test.")
		answers = append(answers, dnsmessage.Resource{
			Header: dnsmessage.ResourceHeader{Name: owner, Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET, TTL: ttlC},
			Body:   &dnsmessage.CNAMEResource{CNAME: target},
		})
		owner = target
	}
	if upper {
		owner = dnsmessage.MustNewName(strings.ToUpper(owner.String()))
	}
	var want []netip.Addr
	for i := range int(n % 40) {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		want = append(want, a)
		answers = append(answers, dnsmessage.Resource{
			Header: dnsmessage.ResourceHeader{Name: owner, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: ttlA},
			Body:   &dnsmessage.AResource{A: a.As4()},
		})
	}
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, Response: true, RCode: rcode},
		Questions: []dnsmessage.Question{fuzzQ},
		Answers:   answers,
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b, want
}

// FuzzParseAnswer feeds arbitrary bytes to the answer parser, as an answer
// to an A and to an AAAA question: it must never panic, what it accepts must
// obey the parser's invariants, and every reader of the result (the stub's
// rcode and merge steps, and the error it builds) must cope with it.
func FuzzParseAnswer(f *testing.F) {
	for _, seed := range []struct {
		n        uint8
		cname    bool
		rcode    dnsmessage.RCode
		truncate int
	}{{1, false, 0, 0}, {3, true, 0, 0}, {0, false, dnsmessage.RCodeNameError, 0}, {2, true, 0, 7}, {5, false, dnsmessage.RCodeServerFailure, 0}} {
		b, _ := answerFor(7, seed.n, 60, 30, seed.cname, false, seed.rcode)
		f.Add(b[:len(b)-seed.truncate], uint16(7))
	}
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, msg []byte, id uint16) {
		for _, q := range []dnsmessage.Question{fuzzQ, fuzzQ6} {
			p, err := parseAnswer(msg, id, q)
			if err != nil {
				if p.outcome != outcomeAddrs || p.addrs != nil {
					t.Fatalf("error %v with a result %+v", err, p)
				}
				if err.Error() == "" {
					t.Fatal("an empty error")
				}
				continue
			}
			checkParsed(t, p, q)
			checkReaders(t, p)
		}
	})
}

var fuzzQ6 = dnsmessage.Question{Name: fuzzQ.Name, Type: dnsmessage.TypeAAAA, Class: dnsmessage.ClassINET}

// checkParsed checks the invariants of an accepted answer to q.
func checkParsed(t *testing.T, p parsed, q dnsmessage.Question) {
	t.Helper()
	if p.truncated {
		if p.outcome != outcomeAddrs || p.addrs != nil {
			t.Fatalf("a truncated answer with a result %+v", p)
		}
		return
	}
	switch p.outcome {
	case outcomeAddrs:
		if len(p.addrs) == 0 {
			t.Fatal("a positive answer without addresses")
		}
		if p.ttl < 0 || p.ttl > math.MaxInt32*time.Second {
			t.Fatalf("TTL %v out of range", p.ttl)
		}
		for _, a := range p.addrs {
			if a.Is4() != (q.Type == dnsmessage.TypeA) || !a.IsValid() {
				t.Fatalf("%v answered a %v question", a, q.Type)
			}
		}
	case outcomeNotFound:
		if len(p.addrs) != 0 {
			t.Fatal("a negative answer with addresses")
		}
		if p.ttl != noTTL && (p.ttl < 0 || p.ttl > math.MaxInt32*time.Second) {
			t.Fatalf("negative TTL %v out of range", p.ttl)
		}
		if p.rcode != dnsmessage.RCodeSuccess && p.rcode != dnsmessage.RCodeNameError {
			t.Fatalf("rcode %v classed as not found", p.rcode)
		}
	case outcomeFailed:
		if p.rcode == dnsmessage.RCodeSuccess || p.rcode == dnsmessage.RCodeNameError {
			t.Fatalf("rcode %v classed as a failure", p.rcode)
		}
	default:
		t.Fatalf("outcome %v", p.outcome)
	}
}

// checkReaders runs what the stub does with an accepted answer: a failure
// code becomes a transient error, and the answer is merged with another
// type's (positive, negative or failed), as lookupName and lookup do.
func checkReaders(t *testing.T, p parsed) {
	t.Helper()
	if p.truncated {
		return // exchange retries over TCP, and fails on a truncated TCP answer
	}
	var err error
	if p.outcome == outcomeFailed {
		err = rcodeError(p.rcode)
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsTemporary || de.IsNotFound || de.Err == "" {
			t.Fatalf("rcode %v: %#v", p.rcode, err)
		}
	}
	r := queryResult{p, "127.0.0.1:53", err}
	others := []queryResult{
		{parsed{outcome: outcomeAddrs, addrs: []netip.Addr{netip.IPv6Loopback()}, ttl: time.Second}, "127.0.0.1:53", nil},
		{parsed{outcome: outcomeNotFound, ttl: noTTL}, "127.0.0.1:53", nil},
		{parsed{outcome: outcomeNotFound, ttl: time.Hour}, "127.0.0.1:53", nil},
		{parsed{}, "127.0.0.1:53", rcodeError(dnsmessage.RCodeRefused)},
	}
	for _, set := range [][]queryResult{{r}, {r, others[0]}, {others[1], r}, {r, others[2]}, {others[3], r}} {
		addrs, ttl, server, err := combine(fuzzQ.Name.String(), set)
		switch {
		case err == nil:
			if len(addrs) == 0 || ttl < 0 || ttl > math.MaxInt32*time.Second {
				t.Fatalf("%+v: combined to %v for %v", set, addrs, ttl)
			}
		default:
			if addrs != nil {
				t.Fatalf("%+v: an error %v with addresses", set, err)
			}
			// What lookup returns for it: not found (cacheable for ttl),
			// or a transient failure (never cached).
			de := dnsError("svc.example.test", server, err)
			if de.Name != "svc.example.test" || de.Err == "" || de.IsNotFound != isNotFound(err) || de.IsNotFound == de.IsTemporary {
				t.Fatalf("%+v: %#v", set, de)
			}
			if de.IsNotFound && ttl != noTTL && (ttl < 0 || ttl > math.MaxInt32*time.Second) {
				t.Fatalf("%+v: negative TTL %v", set, ttl)
			}
		}
	}
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// FuzzParseAnswerRoundTrip builds well-formed answers from fuzzed parts and
// checks the parser returns exactly the records put in, with the smallest
// TTL along the chain, and rejects a wrong ID.
func FuzzParseAnswerRoundTrip(f *testing.F) {
	f.Add(uint16(1), uint8(1), uint32(60), uint32(30), false, false)
	f.Add(uint16(2), uint8(3), uint32(5), uint32(3600), true, true)
	f.Add(uint16(3), uint8(0), uint32(5), uint32(5), true, false)
	f.Add(uint16(4), uint8(2), uint32(math.MaxUint32), uint32(10), false, false)
	f.Add(uint16(5), uint8(1), uint32(1), uint32(1<<31), true, false) // a CNAME TTL with the top bit set counts as 0
	f.Fuzz(func(t *testing.T, id uint16, n uint8, ttlA, ttlC uint32, viaCNAME, upper bool) {
		msg, want := answerFor(id, n, ttlA, ttlC, viaCNAME, upper, dnsmessage.RCodeSuccess)
		if _, err := parseAnswer(msg, id+1, fuzzQ); !errors.Is(err, errMismatch) {
			t.Fatalf("wrong ID accepted: %v", err)
		}
		p, err := parseAnswer(msg, id, fuzzQ)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			if p.outcome != outcomeNotFound {
				t.Fatalf("no records: outcome %v, want not found", p.outcome)
			}
			return
		}
		if p.outcome != outcomeAddrs || len(p.addrs) != len(want) {
			t.Fatalf("got %v %v, want %v", p.outcome, p.addrs, want)
		}
		for i := range want {
			if p.addrs[i] != want[i] {
				t.Fatalf("addr %d: got %v, want %v", i, p.addrs[i], want[i])
			}
		}
		wantTTL := ttlDuration(ttlA)
		if viaCNAME {
			wantTTL = min(wantTTL, ttlDuration(ttlC))
		}
		if ttlA > math.MaxInt32 || (viaCNAME && ttlC > math.MaxInt32) {
			wantTTL = 0
		}
		if p.ttl != wantTTL {
			t.Fatalf("TTL %v, want %v", p.ttl, wantTTL)
		}
	})
}

// FuzzParseResolvConf checks that any file either fails with an error or
// yields a usable configuration within the documented limits.
func FuzzParseResolvConf(f *testing.F) {
	f.Add("nameserver 127.0.0.1\nsearch a.test b.test\noptions ndots:2 timeout:1 attempts:3 rotate\n")
	f.Add("nameserver [::1]:5353\ndomain corp.test\n# comment\n")
	f.Add("options ndots:99 timeout:999 attempts:0\n")
	f.Add("nameserver 127.0.0.1:0\n")
	f.Fuzz(func(t *testing.T, conf string) {
		rc, err := parseResolvConf("fuzz.conf", []byte(conf))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.conf:") {
				t.Fatalf("error does not name the file and line: %v", err)
			}
			return
		}
		if len(rc.servers) == 0 || rc.ndots < 0 || rc.ndots > maxNdots ||
			rc.attempts < 1 || rc.attempts > maxAttempts || rc.timeout < time.Second || rc.timeout > maxTimeout ||
			len(rc.search) > maxSearch {
			t.Fatalf("out of limits: %+v", rc)
		}
		for _, s := range rc.servers {
			if !s.IsValid() || s.Port() == 0 {
				t.Fatalf("bad server %v", s)
			}
		}
		// Every reader of the configuration: the candidate names for
		// relative and absolute hosts, and the server rotation.
		long := strings.Repeat("a.", 120) + "b"
		for _, host := range []string{"host", "a.b.c", long, "abs.test.", "x.onion"} {
			names := rc.names(host)
			if strings.HasSuffix(host, ".") && (len(names) != 1 || names[0] != host) {
				t.Fatalf("absolute %q gave %q", host, names)
			}
			if len(names) > len(rc.search)+1 {
				t.Fatalf("%q gave %d names from %d search domains", host, len(names), len(rc.search))
			}
			for _, name := range names {
				if !strings.HasSuffix(name, ".") || len(name) > 254 || !strings.HasPrefix(name, host) || isOnion(name) {
					t.Fatalf("%q gave the name %q", host, name)
				}
			}
		}
		s := &stubSource{conf: rc}
		for _, next := range []uint32{0, math.MaxInt32, math.MaxUint32} {
			s.next.Store(next)
			if i := s.firstServer(); i < 0 || i >= len(rc.servers) || !rc.rotate && i != 0 {
				t.Fatalf("first server %d of %d (rotate %v)", i, len(rc.servers), rc.rotate)
			}
		}
	})
}
