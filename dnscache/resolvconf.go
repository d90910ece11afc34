package dnscache

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// resolvConf is what the stub resolver takes from a resolv.conf file.
type resolvConf struct {
	servers  []netip.AddrPort
	search   []string // fully qualified, with the final dot
	ndots    int
	timeout  time.Duration // per query attempt
	attempts int
	rotate   bool
}

// Limits applied as the resolver library does (resolv.conf(5)).
const (
	maxNdots    = 15
	maxTimeout  = 30 * time.Second
	maxAttempts = 5
	maxSearch   = 6
)

// maxResolvConfSize bounds what readResolvConf reads: a real file is a few
// hundred bytes, and a path to something that never ends (/dev/zero) must
// not take the process's memory.
const maxResolvConfSize = 1 << 20

func readResolvConf(path string) (*resolvConf, error) {
	return readParsed(path, maxResolvConfSize, parseResolvConf)
}

// readParsed reads the file at path, of at most limit bytes, and parses it.
func readParsed[T any](path string, limit int64, parse func(path string, b []byte) (T, error)) (T, error) {
	b, err := readFileAtMost(path, limit)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(path, b)
}

// readFileAtMost reads the file at path, or fails when it holds more than
// limit bytes.
func readFileAtMost(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, limit>>20)
	}
	return b, nil
}

// parseResolvConf reads the lines the stub needs and ignores the rest, as the
// C library does; a line it understands but whose value is malformed is an
// error naming the file, line and value, since a silently ignored nameserver
// would send queries somewhere the caller did not mean.
func parseResolvConf(path string, b []byte) (*resolvConf, error) {
	rc := &resolvConf{ndots: 1, timeout: 5 * time.Second, attempts: 2}
	for line, f := range fieldLines(b, "#;") {
		if err := rc.parseLine(f); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
	if len(rc.servers) == 0 { // what the resolver library and Go do
		rc.servers = []netip.AddrPort{
			netip.MustParseAddrPort("127.0.0.1:53"),
			netip.MustParseAddrPort("[::1]:53"),
		}
	}
	return rc, nil
}

// fieldLines yields the number and the fields of each line of b that has
// any once a comment (from any byte in comment to the end) is cut off.
func fieldLines(b []byte, comment string) iter.Seq2[int, []string] {
	return func(yield func(int, []string) bool) {
		line := 0
		for l := range bytes.Lines(b) {
			line++
			text := string(l)
			if i := strings.IndexAny(text, comment); i >= 0 {
				text = text[:i]
			}
			if f := strings.Fields(text); len(f) > 0 && !yield(line, f) {
				return
			}
		}
	}
}

// parseLine takes in the fields f of one line of a resolv.conf file.
func (rc *resolvConf) parseLine(f []string) error {
	switch f[0] {
	case "nameserver":
		if len(f) < 2 {
			return errors.New("nameserver without an address")
		}
		ap, err := parseNameserver(f[1])
		if err != nil {
			return fmt.Errorf("nameserver %q: %v", f[1], err)
		}
		rc.servers = append(rc.servers, ap)
	case "domain":
		if len(f) < 2 {
			return errors.New("domain without a name")
		}
		rc.search = []string{fqdn(f[1])}
	case "search":
		rc.search = rc.search[:0]
		for _, d := range f[1:] {
			if len(rc.search) == maxSearch {
				break
			}
			if d != "." {
				rc.search = append(rc.search, fqdn(d))
			}
		}
	case "options":
		for _, o := range f[1:] {
			if err := rc.parseOption(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseOption takes in one word of an options line: ndots:n, timeout:n,
// attempts:n or rotate (others are ignored), numbers capped as the resolver
// library caps them.
func (rc *resolvConf) parseOption(o string) error {
	name, val, hasVal := strings.Cut(o, ":")
	num := func(lo, hi int) (int, error) {
		n, err := strconv.Atoi(val)
		if !hasVal || err != nil || n < lo {
			return 0, fmt.Errorf("options %s: want a whole number of at least %d", o, lo)
		}
		return min(n, hi), nil
	}
	var err error
	switch name {
	case "ndots":
		rc.ndots, err = num(0, maxNdots)
	case "timeout":
		var s int
		s, err = num(1, int(maxTimeout/time.Second))
		rc.timeout = time.Duration(s) * time.Second
	case "attempts":
		rc.attempts, err = num(1, maxAttempts)
	case "rotate":
		rc.rotate = true
	}
	return err
}

func parseNameserver(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("port 0")
	}
	return ap, nil
}

func fqdn(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// names lists the fully qualified names to try for host, in order, the way
// the resolver library does: an absolute name only as is; a name with at
// least ndots dots as is first, then with each search domain; otherwise the
// search domains first. Like net, it leaves out names longer than 254 bytes
// and names under .onion (RFC 7686).
func (rc *resolvConf) names(host string) []string {
	if strings.HasSuffix(host, ".") {
		if isOnion(host) {
			return nil
		}
		return []string{host}
	}
	withSearch := make([]string, 0, len(rc.search)+1)
	for _, d := range rc.search {
		if n := host + "." + d; len(n) <= 254 && !isOnion(n) {
			withSearch = append(withSearch, n)
		}
	}
	n := host + "."
	switch {
	case len(n) > 254 || isOnion(n):
		return withSearch
	case strings.Count(host, ".") >= rc.ndots:
		return append([]string{n}, withSearch...)
	}
	return append(withSearch, n)
}

// hostsFile is what the stub takes from a hosts file (hosts(5)), and what
// the Static source answers from: the addresses listed for each name.
type hostsFile struct {
	what   string                  // where the names come from, for errors
	byName map[string][]netip.Addr // keys from hostsKey; in file order
}

// maxHostsSize bounds what readHosts reads: large block-list files run to a
// few MiB.
const maxHostsSize = 64 << 20

// readHosts reads the hosts file at path.
func readHosts(path string) (*hostsFile, error) { return readParsed(path, maxHostsSize, parseHosts) }

// parseHosts reads lines of an address followed by names, with comments
// from '#', as the C library and net do. A line with an address and no name
// says nothing and is skipped; a line whose address does not parse is an
// error naming the file and line (net skips it), since skipping it would
// send its names to DNS. IPv4-mapped IPv6 addresses are kept as IPv4. Names
// that are not domain names (see isDomainName) are left out: the stub never
// asks for them.
func parseHosts(path string, b []byte) (*hostsFile, error) {
	h := &hostsFile{what: "the hosts file", byName: make(map[string][]netip.Addr)}
	for line, f := range fieldLines(b, "#") {
		if len(f) < 2 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: address %q: %v", path, line, f[0], err)
		}
		a = a.Unmap()
		for _, name := range f[1:] {
			if k, ok := hostsName(name); ok {
				h.byName[k] = append(h.byName[k], a)
			}
		}
	}
	return h, nil
}

// hostsName returns the key a name in a hosts file is kept under, and false
// for a name the stub never asks for (not a domain name once its final dot
// is dropped: "a..", or the root).
func hostsName(name string) (string, bool) {
	k := hostsKey(name)
	return k, !strings.HasSuffix(k, ".") && isDomainName(k)
}

// hostsKey is the form names are looked up by: ASCII lower case, without
// the final dot.
func hostsKey(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// lookup returns the addresses listed for host of the family network ("ip",
// "ip4" or "ip6") asks for, in file order, and whether the file lists host
// at all.
func (h *hostsFile) lookup(network, host string) ([]netip.Addr, bool) {
	all, ok := h.byName[hostsKey(host)]
	if !ok {
		return nil, false
	}
	var out []netip.Addr
	for _, a := range all {
		if network == "ip" || (network == "ip4") == a.Is4() {
			out = append(out, a)
		}
	}
	return out, true
}

// answer is lookup as a source answers: the addresses with ttl, or a
// *net.DNSError with IsNotFound for a name listed only for the other family.
// listed is false, and the rest zero, for a name h does not list.
func (h *hostsFile) answer(network, host string, ttl time.Duration) (addrs []netip.Addr, _ time.Duration, listed bool, err error) {
	addrs, listed = h.lookup(network, host)
	switch {
	case !listed:
		return nil, 0, false, nil
	case len(addrs) == 0:
		return nil, noTTL, true, &net.DNSError{Err: "dnscache: no such host (" + h.what + " lists it for the other address family only)", Name: host, IsNotFound: true}
	}
	return addrs, ttl, true, nil
}
