package dnscache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// stubSource sends its own queries to the nameservers of a resolv.conf file
// and reads the TTLs of the answers.
//
// It sends only names net's pure-Go resolver would send: a host that is not
// a domain name as net's isDomainName defines it (letters, digits, '_' and
// inner '-' in labels of 1 to 63 bytes, at most 253 bytes or 254 with the
// final dot, not all digits), or that ends in .onion (RFC 7686), is "no such
// host" without a query, as net says. localhost and names under .localhost
// are answered from loopback (127.0.0.1 for A, ::1 for AAAA) without a query
// (RFC 6761 §6.3), whatever the server or a hosts file would say. An absolute
// name (with the final dot) is asked as it is, once per record type, without
// the search list. A name goes out in the case the caller wrote it; answers
// match it in any case (RFC 4343).
//
// With a hosts file (hosts non-nil), a name the file lists is answered from
// it alone, without a query, as net does in its default "files, then DNS"
// order: the addresses of the asked family, or "no such host" when the file
// lists the name with addresses of the other family only. Names are matched
// without case and without the final dot, and not through the search list.
type stubSource struct {
	conf  *resolvConf
	hosts *hostsFile    // nil: no hosts file is consulted
	next  atomic.Uint32 // first server to try, with options rotate
}

// udpBufSize is the EDNS0 payload size the stub advertises (the 2020 DNS flag
// day value) and the largest UDP answer it reads.
const udpBufSize = 1232

// maxCNAMEHops bounds the CNAME chain followed inside one answer.
const maxCNAMEHops = 16

// outcome is one parsed answer, classified.
type outcome int

const (
	outcomeAddrs    outcome = iota // records found
	outcomeNotFound                // NXDOMAIN or no data: a negative answer
	outcomeFailed                  // SERVFAIL, REFUSED, other codes: transient
)

// parsed is what parseAnswer extracts from one DNS message.
type parsed struct {
	outcome   outcome
	addrs     []netip.Addr
	ttl       time.Duration // min TTL along the chain; for negatives, from the SOA, or noTTL
	rcode     dnsmessage.RCode
	truncated bool
}

func (s *stubSource) lookup(ctx context.Context, network, host string) ([]netip.Addr, time.Duration, error) {
	var types []dnsmessage.Type
	switch network {
	case "ip":
		types = []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA}
	case "ip4":
		types = []dnsmessage.Type{dnsmessage.TypeA}
	case "ip6":
		types = []dnsmessage.Type{dnsmessage.TypeAAAA}
	default:
		return nil, 0, net.UnknownNetworkError(network)
	}
	switch {
	case !isDomainName(host):
		return nil, noTTL, &net.DNSError{Err: "dnscache: no such host (not a valid domain name)", Name: host, IsNotFound: true}
	case isOnion(host):
		return nil, noTTL, &net.DNSError{Err: "dnscache: no such host (.onion names are never sent to DNS, RFC 7686)", Name: host, IsNotFound: true}
	}
	if isLocalhost(host) {
		return loopback(network), staticTTL, nil
	}
	if s.hosts != nil {
		if addrs, ttl, listed, err := s.hosts.answer(network, host, staticTTL); listed {
			return addrs, ttl, err
		}
	}
	negTTL := time.Duration(-1)
	var server string
	for _, name := range s.conf.names(host) {
		if isLocalhost(name) { // a search domain made it one
			return loopback(network), staticTTL, nil
		}
		addrs, ttl, srv, err := s.lookupName(ctx, name, types)
		server = srv
		if err != nil {
			var de *net.DNSError
			if errors.As(err, &de) && de.IsNotFound {
				negTTL = minTTL(negTTL, ttl)
				continue // the next name in the search list
			}
			err := dnsError(host, srv, err)
			return nil, 0, err
		}
		return addrs, ttl, nil
	}
	return nil, negTTL, &net.DNSError{Err: "dnscache: no such host", Name: host, Server: server, IsNotFound: true}
}

// minTTL is min for TTLs where a negative value means "none".
func minTTL(a, b time.Duration) time.Duration {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}

// lookupName asks for every type in types for one fully qualified name, in
// parallel, and combines the answers.
func (s *stubSource) lookupName(ctx context.Context, name string, types []dnsmessage.Type) ([]netip.Addr, time.Duration, string, error) {
	results := make([]queryResult, len(types))
	if len(types) == 1 {
		p, srv, err := s.query(ctx, name, types[0])
		results[0] = queryResult{p, srv, err}
	} else {
		done := make(chan struct{}, len(types))
		for i, t := range types {
			go func() {
				p, srv, err := s.query(ctx, name, t)
				results[i] = queryResult{p, srv, err}
				done <- struct{}{}
			}()
		}
		for range types {
			<-done
		}
	}
	return combine(name, results)
}

// queryResult is what query returned for one record type.
type queryResult struct {
	p      parsed
	server string
	err    error
}

// combine merges the answers for the record types of one name. Any
// addresses make a positive answer (a transient failure of the other type is
// ignored, as net does); otherwise a transient failure wins over a negative
// answer, so that a SERVFAIL is never cached as NXDOMAIN.
func combine(name string, results []queryResult) ([]netip.Addr, time.Duration, string, error) {
	var addrs []netip.Addr
	ttl, negTTL := time.Duration(-1), time.Duration(-1)
	var transient error
	var server string
	for _, r := range results {
		server = r.server
		switch {
		case r.err != nil:
			transient = r.err
		case r.p.outcome == outcomeAddrs:
			addrs = append(addrs, r.p.addrs...)
			ttl = minTTL(ttl, r.p.ttl)
		default:
			negTTL = minTTL(negTTL, r.p.ttl)
		}
	}
	switch {
	case len(addrs) > 0:
		return addrs, max(ttl, 0), server, nil
	case transient != nil:
		return nil, 0, server, transient
	}
	return nil, negTTL, server, &net.DNSError{Err: "dnscache: no such host", Name: name, Server: server, IsNotFound: true}
}

// query asks the servers for (name, t), attempts times round the list,
// moving to the next server on a timeout or a failure code. It returns a
// positive or negative answer, or the last transient error.
func (s *stubSource) query(ctx context.Context, name string, t dnsmessage.Type) (parsed, string, error) {
	qname, err := dnsmessage.NewName(name)
	if err != nil || !validLabels(name) { // not a DNS name: no such host, as net says
		return parsed{outcome: outcomeNotFound, ttl: noTTL}, "", nil
	}
	q := dnsmessage.Question{Name: qname, Type: t, Class: dnsmessage.ClassINET}
	servers := s.conf.servers
	first := s.firstServer()
	var lastErr error
	var server string
	for range s.conf.attempts {
		for i := range servers {
			srv := servers[(first+i)%len(servers)]
			server = srv.String()
			p, err := s.exchange(ctx, srv, q)
			if err != nil {
				lastErr = err
				if ctx.Err() != nil {
					return parsed{}, server, lastErr
				}
				continue
			}
			if p.outcome == outcomeFailed {
				lastErr = rcodeError(p.rcode)
				continue
			}
			return p, server, nil
		}
	}
	return parsed{}, server, lastErr
}

// firstServer returns the index of the server to ask first: 0, or with
// options rotate the next one round the list for every query.
func (s *stubSource) firstServer() int {
	if !s.conf.rotate {
		return 0
	}
	return int(s.next.Add(1) % uint32(len(s.conf.servers))) // reduced as uint32: int is 32 bits on some platforms
}

// rcodeError describes a failure response code; every such code is transient.
func rcodeError(rc dnsmessage.RCode) error {
	switch rc {
	case dnsmessage.RCodeServerFailure:
		return &net.DNSError{Err: "dnscache: server failure (SERVFAIL)", IsTemporary: true}
	case dnsmessage.RCodeRefused:
		return &net.DNSError{Err: "dnscache: query refused (REFUSED)", IsTemporary: true}
	}
	return &net.DNSError{Err: "dnscache: server answered " + rc.String(), IsTemporary: true}
}

// dnsError turns any lookup error into the *net.DNSError callers expect,
// keeping the cause reachable through errors.Is/As.
func dnsError(host, server string, err error) *net.DNSError {
	var de *net.DNSError
	if errors.As(err, &de) {
		c := *de
		c.Name = host
		if server != "" {
			c.Server = server
		}
		return &c
	}
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
	return &net.DNSError{
		UnwrapErr:   err,
		Err:         "dnscache: " + err.Error(),
		Name:        host,
		Server:      server,
		IsTimeout:   timeout,
		IsTemporary: true,
	}
}

// exchange sends one query to one server over UDP, and over TCP when the UDP
// answer comes back truncated.
func (s *stubSource) exchange(ctx context.Context, srv netip.AddrPort, q dnsmessage.Question) (parsed, error) {
	ctx, cancel := context.WithTimeout(ctx, s.conf.timeout)
	defer cancel()
	p, err := s.roundTrip(ctx, "udp", srv, q)
	if err == nil && p.truncated {
		p, err = s.roundTrip(ctx, "tcp", srv, q)
	}
	return p, err
}

func newID() uint16 {
	var b [2]byte
	rand.Read(b[:]) // never fails (crypto/rand documents it)
	return binary.BigEndian.Uint16(b[:])
}

func buildQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 2, 514), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(udpBufSize, dnsmessage.RCodeSuccess, false); err != nil {
		return nil, err
	}
	if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
		return nil, err
	}
	return b.Finish() // with two leading bytes reserved for the TCP length
}

// roundTrip sends q with a fresh random ID and returns the answer.
//
// Over UDP anyone who knows the port can send a datagram, so every datagram
// that is not a well-formed answer to this query (empty, short, garbage, cut
// short, larger than udpBufSize, another ID or question, not a response,
// another opcode) is skipped and reading goes on until the deadline, as net
// does (go.dev/issue/13281); a timeout then says how many were skipped. A TCP
// stream comes from the server alone and carries one answer: anything else
// in its place is an error naming what was wrong.
func (s *stubSource) roundTrip(ctx context.Context, network string, srv netip.AddrPort, q dnsmessage.Question) (parsed, error) {
	id := newID()
	msg, err := buildQuery(id, q)
	if err != nil {
		return parsed{}, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, srv.String())
	if err != nil {
		return parsed{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	// Cancellation (Close, or the lookup's own timeout) unblocks the read.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if network == "tcp" {
		p, err := tcpRoundTrip(c, msg, id, q)
		if err != nil {
			return parsed{}, ctxErr(ctx, fmt.Errorf("TCP answer: %w", err))
		}
		return p, nil
	}
	if _, err := c.Write(msg[2:]); err != nil {
		return parsed{}, ctxErr(ctx, err)
	}
	buf := make([]byte, udpBufSize)
	skipped := 0
	var lastSkipped error
	for {
		n, err := c.Read(buf)
		if err != nil {
			if skipped > 0 {
				err = fmt.Errorf("%w; skipped %d datagrams that did not answer the query, the last: %v", err, skipped, lastSkipped)
			}
			return parsed{}, ctxErr(ctx, err)
		}
		p, err := parseAnswer(buf[:n], id, q)
		if err != nil {
			skipped, lastSkipped = skipped+1, err
			continue
		}
		return p, nil
	}
}

// tcpRoundTrip writes msg (a query built with two leading bytes reserved for
// its length) on the stream c and reads the one answer to query id and
// question q.
func tcpRoundTrip(c net.Conn, msg []byte, id uint16, q dnsmessage.Question) (parsed, error) {
	binary.BigEndian.PutUint16(msg, uint16(len(msg)-2))
	if _, err := c.Write(msg); err != nil {
		return parsed{}, err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return parsed{}, fmt.Errorf("the server closed the connection before the answer's length: %w", err)
		}
		return parsed{}, err
	}
	want := binary.BigEndian.Uint16(l[:])
	buf := make([]byte, want)
	if n, err := io.ReadFull(c, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return parsed{}, fmt.Errorf("the server closed the connection after %d of the %d bytes it announced: %w", n, want, err)
		}
		return parsed{}, err
	}
	p, err := parseAnswer(buf, id, q)
	if err != nil {
		return parsed{}, err
	}
	if p.truncated {
		return parsed{}, errors.New("truncated (TC bit set) over TCP too")
	}
	return p, nil
}

// ctxErr prefers the context's reason when the deadline it set fired.
func ctxErr(ctx context.Context, err error) error {
	if ce := ctx.Err(); ce != nil {
		return fmt.Errorf("%w (%w)", ce, err)
	}
	return err
}

// errMismatch marks an answer to some other query.
var errMismatch = errors.New("answer does not match the query")

// parseAnswer checks that msg answers query id for question q (a response,
// opcode QUERY, the same ID, exactly the one question; errMismatch if not,
// another error if msg is malformed anywhere it is read) and extracts
// the addresses of type q.Type reached from q.Name through the CNAME chain in
// the answer section, with the smallest TTL along the way. A negative answer
// takes its TTL from the SOA in the authority section (RFC 2308: the smaller
// of the record's TTL and its MINIMUM field).
func parseAnswer(msg []byte, id uint16, q dnsmessage.Question) (parsed, error) {
	var p dnsmessage.Parser
	h, err := startAnswer(&p, msg, id, q)
	switch {
	case err != nil:
		return parsed{}, err
	case h.Truncated:
		return parsed{truncated: true}, nil
	case h.RCode != dnsmessage.RCodeSuccess && h.RCode != dnsmessage.RCodeNameError:
		return parsed{outcome: outcomeFailed, rcode: h.RCode}, nil
	}
	records, err := readAnswers(&p, q.Type)
	if err != nil {
		return parsed{}, malformed(err)
	}
	if addrs, ttl := records.follow(q.Name); len(addrs) > 0 && h.RCode == dnsmessage.RCodeSuccess {
		return parsed{outcome: outcomeAddrs, addrs: addrs, ttl: ttl}, nil
	}
	// NXDOMAIN, or NOERROR without records of the type: negative.
	ttl, err := negativeTTL(&p)
	if err != nil {
		return parsed{}, malformed(err)
	}
	return parsed{outcome: outcomeNotFound, ttl: ttl, rcode: h.RCode}, nil
}

func malformed(err error) error { return fmt.Errorf("malformed answer: %w", err) }

// startAnswer reads the header and the question of msg with p and checks
// that they answer query id for question q.
func startAnswer(p *dnsmessage.Parser, msg []byte, id uint16, q dnsmessage.Question) (dnsmessage.Header, error) {
	h, err := p.Start(msg)
	if err != nil {
		return h, malformed(err)
	}
	if !h.Response || h.ID != id || h.OpCode != 0 { // 0 is QUERY, what the stub asks
		return h, errMismatch
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return h, malformed(err)
	}
	if len(qs) != 1 || qs[0].Type != q.Type || qs[0].Class != q.Class || !equalNames(qs[0].Name, q.Name) {
		return h, errMismatch
	}
	return h, nil
}

// answerRecords are the records of an answer section that lead to
// addresses: the CNAMEs, and the addresses of the type asked for.
type answerRecords struct {
	cnames []cnameRecord
	addrs  []addrRecord
}

type cnameRecord struct {
	owner, target dnsmessage.Name
	ttl           uint32
}

type addrRecord struct {
	owner dnsmessage.Name
	addr  netip.Addr
	ttl   uint32
}

// forEachRecord calls fn with the header of each record of one section,
// read with next, until the section ends; fn reads or skips the record.
func forEachRecord(next func() (dnsmessage.ResourceHeader, error), fn func(dnsmessage.ResourceHeader) error) error {
	for {
		rh, err := next()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(rh); err != nil {
			return err
		}
	}
}

// readAnswers reads the answer section with p, keeping the CNAME records
// and the addresses of type t, in class IN.
func readAnswers(p *dnsmessage.Parser, t dnsmessage.Type) (answerRecords, error) {
	var rs answerRecords
	err := forEachRecord(p.AnswerHeader, func(rh dnsmessage.ResourceHeader) error {
		switch {
		case rh.Class != dnsmessage.ClassINET:
		case rh.Type == dnsmessage.TypeCNAME:
			r, err := p.CNAMEResource()
			if err == nil {
				rs.cnames = append(rs.cnames, cnameRecord{rh.Name, r.CNAME, rh.TTL})
			}
			return err
		case rh.Type == dnsmessage.TypeA && t == dnsmessage.TypeA:
			r, err := p.AResource()
			if err == nil {
				rs.addrs = append(rs.addrs, addrRecord{rh.Name, netip.AddrFrom4(r.A), rh.TTL})
			}
			return err
		case rh.Type == dnsmessage.TypeAAAA && t == dnsmessage.TypeAAAA:
			r, err := p.AAAAResource()
			if err == nil {
				rs.addrs = append(rs.addrs, addrRecord{rh.Name, netip.AddrFrom16(r.AAAA), rh.TTL})
			}
			return err
		}
		return p.SkipAnswer()
	})
	return rs, err
}

// follow returns the addresses reached from name through the CNAME chain
// (at most maxCNAMEHops links), with the smallest TTL along the way.
func (rs *answerRecords) follow(name dnsmessage.Name) ([]netip.Addr, time.Duration) {
	ttl := time.Duration(math.MaxInt64)
	var addrs []netip.Addr
	for hop := 0; ; hop++ {
		for _, r := range rs.addrs {
			if equalNames(r.owner, name) {
				addrs = append(addrs, r.addr)
				ttl = min(ttl, ttlDuration(r.ttl))
			}
		}
		if len(addrs) > 0 || hop == maxCNAMEHops {
			return addrs, ttl
		}
		i := slices.IndexFunc(rs.cnames, func(c cnameRecord) bool { return equalNames(c.owner, name) })
		if i < 0 {
			return addrs, ttl
		}
		ttl = min(ttl, ttlDuration(rs.cnames[i].ttl))
		name = rs.cnames[i].target
	}
}

// negativeTTL reads past the answer section with p and returns the
// negative-caching time of the SOA records in the authority section (RFC
// 2308: the smaller of a record's TTL and its MINIMUM field), or noTTL when
// there is none.
func negativeTTL(p *dnsmessage.Parser) (time.Duration, error) {
	if err := p.SkipAllAnswers(); err != nil {
		return 0, err
	}
	ttl := noTTL
	err := forEachRecord(p.AuthorityHeader, func(rh dnsmessage.ResourceHeader) error {
		if rh.Type != dnsmessage.TypeSOA {
			return p.SkipAuthority()
		}
		soa, err := p.SOAResource()
		if err == nil {
			ttl = minTTL(ttl, min(ttlDuration(rh.TTL), ttlDuration(soa.MinTTL)))
		}
		return err
	})
	return ttl, err
}

// ttlDuration converts a TTL; RFC 2181 says values with the top bit set are
// to be read as zero.
func ttlDuration(ttl uint32) time.Duration {
	if ttl > math.MaxInt32 {
		return 0
	}
	return time.Duration(ttl) * time.Second
}

func equalNames(a, b dnsmessage.Name) bool {
	return a.Length == b.Length && strings.EqualFold(string(a.Data[:a.Length]), string(b.Data[:b.Length]))
}

// isDomainName reports whether s is a name net's resolver sends, with the
// rules of isDomainName in GOROOT/src/net/dnsclient.go (RFC 1035 and 3696):
// the root ".", or labels of 1 to 63 letters, digits, '_' and '-' (not first
// or last in a label), separated by dots, at most 253 bytes long (254 with
// the final dot), with at least one byte that is not a digit.
func isDomainName(s string) bool {
	if s == "." {
		return true
	}
	l := len(s)
	if l == 0 || l > 254 || l == 254 && s[l-1] != '.' {
		return false
	}
	last := byte('.')
	nonNumeric := false
	label := 0
	for i := range l {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_':
			nonNumeric = true
			label++
		case '0' <= c && c <= '9':
			label++
		case c == '-':
			if last == '.' {
				return false
			}
			nonNumeric = true
			label++
		case c == '.':
			if last == '.' || last == '-' || label > 63 {
				return false
			}
			label = 0
		default:
			return false
		}
		last = c
	}
	return last != '-' && label <= 63 && nonNumeric
}

// isOnion reports whether name is under .onion, which net never sends to DNS
// (RFC 7686).
func isOnion(name string) bool {
	return hasSuffixFold(strings.TrimSuffix(name, "."), ".onion")
}

// isLocalhost reports whether name is localhost or under .localhost (RFC
// 6761 §6.3), in any case, with or without the final dot.
func isLocalhost(name string) bool {
	name = strings.TrimSuffix(name, ".")
	return strings.EqualFold(name, "localhost") || hasSuffixFold(name, ".localhost")
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// staticTTL is how long an answer that never changes (localhost, the hosts
// file, read once) may be kept: the largest TTL a record can carry (RFC
// 2181); MaxTTL caps it.
const staticTTL = math.MaxInt32 * time.Second

// loopback is the answer to a localhost name for network "ip", "ip4" or "ip6".
func loopback(network string) []netip.Addr {
	switch network {
	case "ip4":
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	case "ip6":
		return []netip.Addr{netip.IPv6Loopback()}
	}
	return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
}

// validLabels reports whether every label of the fully qualified name is 1
// to 63 bytes long, as a DNS message needs.
func validLabels(name string) bool {
	if name == "." {
		return true
	}
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if len(l) == 0 || len(l) > 63 {
			return false
		}
	}
	return true
}
