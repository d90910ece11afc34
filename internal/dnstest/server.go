// Package dnstest runs a small authoritative DNS server on loopback for tests
// and examples: UDP and TCP on one 127.0.0.1 port, a zone set from code (A,
// AAAA and CNAME records with chosen TTLs), and faults switched on and off at
// run time: delays, forced response codes (SERVFAIL, REFUSED, NXDOMAIN),
// truncation that forces a TCP retry, forged replies, junk datagrams sent
// before the answer, raw bytes in place of a TCP answer, and a full outage. It
// counts the queries it receives per name and type.
//
// A Server is safe for concurrent use. Close stops every goroutine it started.
package dnstest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// maxUDPPayload is the classic DNS UDP limit: answers larger than this are
// sent truncated (TC bit set, no records) so that the client retries over TCP.
const maxUDPPayload = 512

// Server is a loopback DNS server. Create it with [Start]; it is safe for
// concurrent use.
type Server struct {
	udp  *net.UDPConn
	tcp  net.Listener
	addr netip.AddrPort

	done chan struct{} // closed by Close: wakes delayed handlers
	wg   sync.WaitGroup

	mu         sync.Mutex // guards every field below
	zone       map[string]*records
	negTTL     uint32
	delays     map[string]time.Duration // "" is every name
	rcodes     map[string]dnsmessage.RCode
	truncate   map[string]bool
	spoof      map[string]bool
	junk       map[string]JunkFunc
	tcpReply   map[string]ReplyFunc
	outage     bool
	queries    map[queryKey]int
	tcpQueries int
	conns      map[net.Conn]struct{} // accepted TCP conns
	clients    map[net.Conn]struct{} // conns opened by Resolver
	closed     bool
}

type records struct {
	a, aaaa []netip.Addr
	ttl     uint32
	cname   string
	cttl    uint32
}

type queryKey struct {
	name string
	typ  dnsmessage.Type
}

// Start listens on 127.0.0.1 (one port for UDP and TCP) and serves until
// [Server.Close]. The zone starts empty: every name is NXDOMAIN.
func Start() (*Server, error) { return startWrapped(nil) }

// startWrapped is Start with the TCP listener wrapped by wrap, if not nil, so that
// a test can make Accept fail.
func startWrapped(wrap func(net.Listener) net.Listener) (*Server, error) {
	var lastErr error
	for range 20 {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, fmt.Errorf("dnstest: %w", err)
		}
		ap := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
		if err != nil { // the TCP port was taken: try another pair
			lastErr = err
			udp.Close()
			continue
		}
		var l net.Listener = tcp
		if wrap != nil {
			l = wrap(tcp)
		}
		s := &Server{
			udp:      udp,
			tcp:      l,
			addr:     netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()),
			done:     make(chan struct{}),
			zone:     make(map[string]*records),
			negTTL:   60,
			delays:   make(map[string]time.Duration),
			rcodes:   make(map[string]dnsmessage.RCode),
			truncate: make(map[string]bool),
			spoof:    make(map[string]bool),
			junk:     make(map[string]JunkFunc),
			tcpReply: make(map[string]ReplyFunc),
			queries:  make(map[queryKey]int),
			conns:    make(map[net.Conn]struct{}),
			clients:  make(map[net.Conn]struct{}),
		}
		s.wg.Add(2)
		go s.serveUDP()
		go s.serveTCP()
		return s, nil
	}
	return nil, fmt.Errorf("dnstest: no free UDP+TCP port pair: %w", lastErr)
}

// Addr is the address the server listens on, for UDP and TCP alike.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Close stops the server and waits for every goroutine it started.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for c := range s.conns {
		c.Close()
	}
	for c := range s.clients {
		c.Close()
	}
	s.mu.Unlock()
	err := errors.Join(s.udp.Close(), s.tcp.Close())
	s.wg.Wait()
	return err
}

// Canonical returns name lower-cased and fully qualified (with a final dot),
// the form the server keys names by.
func Canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// SetAddrs replaces the address records of name: IPv4 addresses become A
// records and IPv6 addresses AAAA records, all with the given TTL. No
// addresses removes the name (it becomes NXDOMAIN unless it has a CNAME).
func (s *Server) SetAddrs(name string, ttl time.Duration, addrs ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = Canonical(name)
	r := s.zone[name]
	if r == nil {
		r = &records{}
	}
	r.a, r.aaaa = nil, nil
	r.ttl = uint32(ttl / time.Second)
	for _, a := range addrs {
		if a.Unmap().Is4() {
			r.a = append(r.a, a.Unmap())
		} else {
			r.aaaa = append(r.aaaa, a)
		}
	}
	if len(r.a) == 0 && len(r.aaaa) == 0 && r.cname == "" {
		delete(s.zone, name)
		return
	}
	s.zone[name] = r
}

// SetCNAME makes name an alias of target with the given TTL. The answer
// carries the whole chain as far as the zone knows it.
func (s *Server) SetCNAME(name, target string, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = Canonical(name)
	s.zone[name] = &records{cname: Canonical(target), cttl: uint32(ttl / time.Second)}
}

// SetNegativeTTL sets the SOA minimum (and SOA TTL) sent with NXDOMAIN and
// no-data answers: the negative-caching time of RFC 2308. The default is 60 s.
func (s *Server) SetNegativeTTL(ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.negTTL = uint32(ttl / time.Second)
}

// SetDelay delays every answer about name by d; name "" delays every answer.
// Zero removes the delay. Delays add up when both are set.
func (s *Server) SetDelay(name string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "" {
		name = Canonical(name)
	}
	if d <= 0 {
		delete(s.delays, name)
		return
	}
	s.delays[name] = d
}

// SetRCode forces the response code of every answer about name (""
// means every name), for example [dnsmessage.RCodeServerFailure],
// [dnsmessage.RCodeRefused] or [dnsmessage.RCodeNameError]. Such answers
// carry no records. [dnsmessage.RCodeSuccess] removes the override.
func (s *Server) SetRCode(name string, rc dnsmessage.RCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "" {
		name = Canonical(name)
	}
	if rc == dnsmessage.RCodeSuccess {
		delete(s.rcodes, name)
		return
	}
	s.rcodes[name] = rc
}

// SetTruncate makes UDP answers about name ("" means every name) come back
// empty with the TC bit set, so that a correct client retries over TCP.
func (s *Server) SetTruncate(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "" {
		name = Canonical(name)
	}
	s.truncate[name] = on
}

// SetSpoof makes the server send, before each real UDP answer about name,
// two forged answers pointing at 192.0.2.66 (TEST-NET-1, never routed): one
// with a wrong query ID and one with the right ID but a different question.
// A correct client ignores both.
func (s *Server) SetSpoof(name string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spoof[Canonical(name)] = on
}

// A JunkFunc returns the datagrams to send before the real UDP answer to
// query (both as sent on the wire), for [Server.SetJunk]. It may build them
// from the query or the answer, for example to copy the query's ID, and must
// not keep or change either slice. It runs on the server's goroutines.
type JunkFunc func(query, answer []byte) [][]byte

// SetJunk makes the server send, before each real UDP answer about name (""
// means every name), the datagrams junk returns: empty or short datagrams,
// garbage, answers cut short, anything a hostile sender could slip in ahead of
// the answer. The real answer follows them on the same socket, so a client
// reads them first. A nil junk removes the hook. Datagrams longer than 65,507
// bytes cannot be sent and are dropped.
func (s *Server) SetJunk(name string, junk JunkFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "" {
		name = Canonical(name)
	}
	if junk == nil {
		delete(s.junk, name)
		return
	}
	s.junk[name] = junk
}

// A ReplyFunc returns the bytes to write on a TCP connection in place of the
// framed answer to query (query and answer as DNS messages, without the
// two-byte length prefix), for [Server.SetTCPReply]. It must not keep or
// change either slice. It runs on the server's goroutines.
type ReplyFunc func(query, answer []byte) []byte

// SetTCPReply makes the server answer each TCP query about name ("" means
// every name) by writing the bytes reply returns exactly as they are (frame
// a message with its two-byte length to send it whole) and then closing the
// connection, so that a client reading a short or malformed stream sees the
// end of it rather than a stall. A nil reply removes the hook.
func (s *Server) SetTCPReply(name string, reply ReplyFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name != "" {
		name = Canonical(name)
	}
	if reply == nil {
		delete(s.tcpReply, name)
		return
	}
	s.tcpReply[name] = reply
}

// SpoofedAddr is the address forged answers point at (see [Server.SetSpoof]).
var SpoofedAddr = netip.AddrFrom4([4]byte{192, 0, 2, 66})

// SetOutage makes the server drop every query (UDP and TCP) while on: the
// clients see timeouts. Queries are still counted.
func (s *Server) SetOutage(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = on
}

// Queries reports how many queries for name and type the server received
// over UDP and TCP together.
func (s *Server) Queries(name string, t dnsmessage.Type) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[queryKey{Canonical(name), t}]
}

// TotalQueries reports how many queries the server received in all.
func (s *Server) TotalQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.queries {
		n += v
	}
	return n
}

// TCPQueries reports how many queries arrived over TCP.
func (s *Server) TCPQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpQueries
}

// ResetCounters sets every query counter back to zero.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.queries)
	s.tcpQueries = 0
}

// Resolver returns a pure-Go [net.Resolver] that sends every query to this
// server (over UDP, or TCP when Go asks for TCP). Close also closes the
// connections this resolver opened, so that the goroutines net keeps for a
// lookup its caller abandoned end with the server instead of at net's own
// timeout.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, s.addr.String())
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.closed {
				c.Close()
				return nil, fmt.Errorf("dnstest: %w", net.ErrClosed)
			}
			s.clients[c] = struct{}{}
			switch c := c.(type) {
			case *net.UDPConn:
				return &clientUDP{c, s}, nil
			case *net.TCPConn:
				return &clientTCP{c, s}, nil
			}
			return c, nil
		},
	}
}

// clientUDP and clientTCP keep the dynamic type net's resolver looks at
// (net.PacketConn or not) while letting the server forget closed conns.
type clientUDP struct {
	*net.UDPConn
	s *Server
}

func (c *clientUDP) Close() error { c.s.forget(c.UDPConn); return c.UDPConn.Close() }

type clientTCP struct {
	*net.TCPConn
	s *Server
}

func (c *clientTCP) Close() error { c.s.forget(c.TCPConn); return c.TCPConn.Close() }

func (s *Server) forget(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, c)
}

// WriteResolvConf writes a resolv.conf file at path naming this server (as
// "nameserver 127.0.0.1:PORT", the host:port form the dnscache stub resolver
// accepts) followed by the extra lines given, for example "options
// timeout:1 attempts:1" or "search corp.example".
func (s *Server) WriteResolvConf(path string, extra ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "nameserver %s\n", s.addr)
	for _, l := range extra {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("dnstest: %w", err)
	}
	return nil
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	var backoff time.Duration
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || !s.pause(&backoff) {
				return
			}
			continue
		}
		backoff = 0
		msg := append([]byte(nil), buf[:n]...)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			out, _ := s.handle(msg, false)
			for _, b := range out {
				s.udp.WriteToUDPAddrPort(b, from)
			}
		}()
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || !s.pause(&backoff) {
				return
			}
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// pause waits after a failed read or accept (EMFILE, ENOBUFS, …) before the
// caller tries again, 5 ms doubling to 1 s as net/http does, so a lasting
// error does not spin a core. It reports false when the server closed
// meanwhile.
func (s *Server) pause(backoff *time.Duration) bool {
	*backoff = min(max(2**backoff, 5*time.Millisecond), time.Second)
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	var lenBuf [2]byte
	for {
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		out, raw := s.handle(msg, true)
		if raw != nil {
			c.Write(raw.b)
			return // closes the conn
		}
		for _, out := range out {
			framed := binary.BigEndian.AppendUint16(nil, uint16(len(out)))
			if _, err := c.Write(append(framed, out...)); err != nil {
				return
			}
		}
	}
}

// rawReply is what a ReplyFunc returned: written as is, then the TCP
// connection is closed.
type rawReply struct{ b []byte }

// handle answers one query; it returns the messages to send (none when the
// query is dropped), after any configured delay, or over TCP the raw bytes a
// ReplyFunc chose instead.
func (s *Server) handle(msg []byte, overTCP bool) ([][]byte, *rawReply) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil, nil
	}
	q, err := p.Question()
	if err != nil {
		return nil, nil
	}
	name := strings.ToLower(q.Name.String())

	s.mu.Lock()
	s.queries[queryKey{name, q.Type}]++
	if overTCP {
		s.tcpQueries++
	}
	outage := s.outage
	delay := s.delays[""] + s.delays[name]
	rc, forced := s.rcodes[name]
	if !forced {
		rc, forced = s.rcodes[""]
	}
	trunc := !overTCP && (s.truncate[name] || s.truncate[""])
	spoof := !overTCP && s.spoof[name]
	var junk JunkFunc
	var reply ReplyFunc
	if overTCP {
		if reply = s.tcpReply[name]; reply == nil {
			reply = s.tcpReply[""]
		}
	} else if junk = s.junk[name]; junk == nil {
		junk = s.junk[""]
	}
	answer, rcode := s.resolveLocked(name, q.Type)
	negTTL := s.negTTL
	s.mu.Unlock()

	if outage {
		return nil, nil
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return nil, nil
		}
	}
	if forced {
		rcode, answer = rc, nil
	}
	hdr := dnsmessage.Header{
		ID:                 h.ID,
		Response:           true,
		Authoritative:      true,
		RecursionDesired:   h.RecursionDesired,
		RecursionAvailable: true,
		RCode:              rcode,
	}
	var out [][]byte
	if spoof {
		forged := []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 3600},
			Body:   &dnsmessage.AResource{A: SpoofedAddr.As4()},
		}}
		wrongID := hdr
		wrongID.ID = h.ID ^ 0x5a5a
		wrongID.RCode = dnsmessage.RCodeSuccess
		if b, err := build(wrongID, q, forged, nil); err == nil {
			out = append(out, b)
		}
		otherQ := q
		otherQ.Name = dnsmessage.MustNewName("forged.invalid.")
		forged[0].Header.Name = otherQ.Name
		rightID := hdr
		rightID.RCode = dnsmessage.RCodeSuccess
		if b, err := build(rightID, otherQ, forged, nil); err == nil {
			out = append(out, b)
		}
	}
	var authority []dnsmessage.Resource
	if (rcode == dnsmessage.RCodeNameError || rcode == dnsmessage.RCodeSuccess) && len(answer) == 0 {
		authority = []dnsmessage.Resource{soa(negTTL)}
	}
	b, err := build(hdr, q, answer, authority)
	if err != nil {
		return out, nil
	}
	if trunc || (!overTCP && len(b) > maxUDPPayload) {
		hdr.Truncated = true
		if b, err = build(hdr, q, nil, nil); err != nil {
			return out, nil
		}
	}
	if reply != nil {
		return nil, &rawReply{reply(msg, b)}
	}
	if junk != nil {
		out = append(out, junk(msg, b)...)
	}
	return append(out, b), nil
}

// resolveLocked builds the answer section for (name, type) from the zone,
// following CNAMEs inside it.
func (s *Server) resolveLocked(name string, t dnsmessage.Type) ([]dnsmessage.Resource, dnsmessage.RCode) {
	var answer []dnsmessage.Resource
	cur := name
	for range 16 {
		r := s.zone[cur]
		if r == nil {
			if len(answer) == 0 {
				return nil, dnsmessage.RCodeNameError
			}
			return answer, dnsmessage.RCodeSuccess
		}
		n, err := dnsmessage.NewName(cur)
		if err != nil {
			return nil, dnsmessage.RCodeServerFailure
		}
		if r.cname != "" && t != dnsmessage.TypeCNAME {
			target, err := dnsmessage.NewName(r.cname)
			if err != nil {
				return nil, dnsmessage.RCodeServerFailure
			}
			answer = append(answer, dnsmessage.Resource{
				Header: dnsmessage.ResourceHeader{Name: n, Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET, TTL: r.cttl},
				Body:   &dnsmessage.CNAMEResource{CNAME: target},
			})
			cur = r.cname
			continue
		}
		switch t {
		case dnsmessage.TypeA:
			for _, a := range r.a {
				answer = append(answer, dnsmessage.Resource{
					Header: dnsmessage.ResourceHeader{Name: n, Type: t, Class: dnsmessage.ClassINET, TTL: r.ttl},
					Body:   &dnsmessage.AResource{A: a.As4()},
				})
			}
		case dnsmessage.TypeAAAA:
			for _, a := range r.aaaa {
				answer = append(answer, dnsmessage.Resource{
					Header: dnsmessage.ResourceHeader{Name: n, Type: t, Class: dnsmessage.ClassINET, TTL: r.ttl},
					Body:   &dnsmessage.AAAAResource{AAAA: a.As16()},
				})
			}
		}
		return answer, dnsmessage.RCodeSuccess
	}
	return nil, dnsmessage.RCodeServerFailure // CNAME loop
}

// soaName is the zone apex the server claims in its SOA records.
var soaName = dnsmessage.MustNewName("test.")

func soa(ttl uint32) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: soaName, Type: dnsmessage.TypeSOA, Class: dnsmessage.ClassINET, TTL: ttl},
		Body: &dnsmessage.SOAResource{
			NS:      dnsmessage.MustNewName("ns.test."),
			MBox:    dnsmessage.MustNewName("hostmaster.test."),
			Serial:  1,
			Refresh: 3600,
			Retry:   600,
			Expire:  86400,
			MinTTL:  ttl,
		},
	}
}

func build(h dnsmessage.Header, q dnsmessage.Question, answer, authority []dnsmessage.Resource) ([]byte, error) {
	m := dnsmessage.Message{Header: h, Questions: []dnsmessage.Question{q}, Answers: answer, Authorities: authority}
	return m.Pack()
}
