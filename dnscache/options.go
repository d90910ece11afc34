package dnscache

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nettune/nettune/internal/opterr"
)

// Defaults used when an option is not given (or given as zero).
const (
	DefaultTTL                = 30 * time.Second
	DefaultMaxTTL             = time.Hour
	DefaultNegativeTTL        = 5 * time.Second
	DefaultMaxStale           = 5 * time.Minute
	DefaultStaleAnswerTimeout = 250 * time.Millisecond
	DefaultMinRefresh         = time.Second
	DefaultLookupTimeout      = 10 * time.Second
	DefaultMaxEntries         = 10000
	DefaultMaxAnswerAddrs     = 64
	DefaultMaxBytes           = 16 << 20
	DefaultMaxLookups         = 128
)

// DefaultResolvConf is the file [ResolvConf] reads when given "".
const DefaultResolvConf = "/etc/resolv.conf"

// DefaultHostsFile is the file [HostsFile] reads when given "".
const DefaultHostsFile = "/etc/hosts"

// An Option configures a [Cache] in [New]. Options validate their own value;
// [New] returns the first error, an [*OptionError] naming the option. When
// the same option is given twice the last one wins; the sources [System],
// [ResolvConf] and [Static] replace each other. An option prints as the call
// that made it: dnscache.TTL(30s).
type Option interface {
	apply(*config) error
	String() string
}

// OptionError is the error of [New] for an option it refuses: a bad value,
// a file named by [ResolvConf] or [HostsFile] that cannot be read, or options
// that cannot be combined.
type OptionError struct {
	Option    Option   // the option refused; nil for a nil Option
	Conflicts []Option // the options it cannot be combined with, if that is why
	Err       error    // what is wrong
}

// Error returns "<option>: <what is wrong>", followed by
// " (conflicts with <option>, ...)" when there are Conflicts.
func (e *OptionError) Error() string {
	return opterr.Message("dnscache", e.Option, e.Option == nil, e.Conflicts, e.Err)
}

// Unwrap returns e.Err.
func (e *OptionError) Unwrap() error { return e.Err }

type config struct {
	source         Option        // the source given last: System, ResolvConf or Static; nil: System(nil)
	resolver       *net.Resolver // System's
	resolvConf     string        // ResolvConf's path
	static         *hostsFile    // Static's answers
	hostsFile      string        // read by the ResolvConf source; "": none
	ttl            time.Duration // for the System and Static sources
	minTTL, maxTTL time.Duration
	negativeTTL    time.Duration // < 0: no negative caching
	maxStale       time.Duration // < 0: no serve-stale
	staleTimeout   time.Duration
	minRefresh     time.Duration
	lookupTimeout  time.Duration
	prefetch       bool
	maxEntries     int
	maxAnswerAddrs int
	maxBytes       int64
	maxLookups     int
	clock          func() time.Time

	// The options given, which New checks against each other; nil if not given.
	hostsOpt       Option
	durationsGiven [numDurations]Option
	numbersGiven   [numNumbers]Option
}

func defaultConfig() config {
	return config{
		ttl:            DefaultTTL,
		maxTTL:         DefaultMaxTTL,
		negativeTTL:    DefaultNegativeTTL,
		maxStale:       DefaultMaxStale,
		staleTimeout:   DefaultStaleAnswerTimeout,
		minRefresh:     DefaultMinRefresh,
		lookupTimeout:  DefaultLookupTimeout,
		prefetch:       true,
		maxEntries:     DefaultMaxEntries,
		maxAnswerAddrs: DefaultMaxAnswerAddrs,
		maxBytes:       DefaultMaxBytes,
		maxLookups:     DefaultMaxLookups,
	}
}

// configure applies opts over the defaults and checks them against each
// other.
func configure(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return cfg, &OptionError{Err: errors.New("nil Option")}
		}
		if err := o.apply(&cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.check()
}

// check refuses options that cannot be combined. Each error names the
// option given, and in Conflicts the given one it clashes with; a default
// it clashes with is named in Err.
func (c *config) check() error {
	given := func(opts ...Option) []Option {
		var out []Option
		for _, o := range opts {
			if o != nil {
				out = append(out, o)
			}
		}
		return out
	}
	_, stub := c.source.(resolvConfOption)
	ttlOpt, minTTLOpt, maxTTLOpt := c.durationsGiven[durTTL], c.durationsGiven[durMinTTL], c.durationsGiven[durMaxTTL]
	maxBytesOpt, maxAnswerAddrsOpt := c.numbersGiven[numMaxBytes], c.numbersGiven[numMaxAnswerAddrs]
	switch {
	case c.minTTL > c.maxTTL:
		return &OptionError{Option: minTTLOpt, Conflicts: given(maxTTLOpt),
			Err: fmt.Errorf("above MaxTTL (%v)", c.maxTTL)}
	case c.hostsOpt != nil && !stub:
		return &OptionError{Option: c.hostsOpt, Conflicts: given(c.source),
			Err: errors.New("needs ResolvConf: the System source's resolver reads the hosts file itself, and Static has no DNS to put it before")}
	case ttlOpt != nil && stub:
		return &OptionError{Option: ttlOpt, Conflicts: given(c.source),
			Err: errors.New("ResolvConf keeps the TTLs of the answers: TTL is for the System and Static sources (bound ResolvConf's TTLs with MinTTL and MaxTTL)")}
	}
	if one := entryBytes(strings.Repeat("x", maxNameLen), c.maxAnswerAddrs); c.maxBytes < one {
		err := fmt.Errorf("one answer of %d addresses counts %d bytes, above MaxBytes (%d)", c.maxAnswerAddrs, one, c.maxBytes)
		if maxBytesOpt == nil {
			return &OptionError{Option: maxAnswerAddrsOpt, Err: err}
		}
		return &OptionError{Option: maxBytesOpt, Conflicts: given(maxAnswerAddrsOpt), Err: err}
	}
	return nil
}

// duration returns def for d == 0 and d for d > 0. A negative d is -1 (off)
// when negativeMeansOff, and otherwise an *OptionError naming o.
func duration(o Option, d, def time.Duration, negativeMeansOff bool) (time.Duration, error) {
	switch {
	case d == 0:
		return def, nil
	case d > 0:
		return d, nil
	case negativeMeansOff:
		return -1, nil
	}
	if def == 0 {
		return 0, &OptionError{Option: o, Err: errors.New("must not be negative")}
	}
	return 0, &OptionError{Option: o, Err: fmt.Errorf("must not be negative (0 means the default, %v)", def)}
}

type systemOption struct{ r *net.Resolver }

// System makes the cache ask r (nil means [net.DefaultResolver]) and keep each
// answer for the time set with [TTL], since net does not report record TTLs.
// This is the default source.
func System(r *net.Resolver) Option { return systemOption{r} }

func (o systemOption) apply(c *config) error {
	c.source, c.resolver = o, o.r
	return nil
}

func (o systemOption) String() string {
	if o.r == nil {
		return "dnscache.System(net.DefaultResolver)"
	}
	return "dnscache.System(resolver)"
}

type resolvConfOption string

// ResolvConf makes the cache send its own queries (a stub resolver on
// golang.org/x/net/dns/dnsmessage) to the nameservers listed in the
// resolv.conf file at path ("" means [DefaultResolvConf]) and keep each answer
// for the TTLs the server sent (the smallest across the CNAME chain and the
// address records, clamped by [MinTTL] and [MaxTTL]; [TTL] is refused with
// it). The file is read once, in [New]; its nameserver, search, domain and
// options ndots, timeout, attempts and rotate lines are honoured. A
// nameserver may carry a port ("nameserver 127.0.0.1:5353" or
// "[::1]:5353"), an extension of the usual format. Option values past the
// resolver library's limits (ndots 15, timeout 30 s, attempts 5, six search
// domains) are capped as the library caps them, so that the file means the
// same to both; a malformed value, or a file that cannot be read, is an
// [*OptionError] naming the file and line.
//
// Names are answered without a query where net's resolver would not send one
// either: "localhost" and names under ".localhost" are 127.0.0.1 and ::1
// (RFC 6761 §6.3), and a name that is not a valid domain name (NUL, spaces,
// "*", non-ASCII, an empty or over-long label) or ends in ".onion"
// (RFC 7686) is a *net.DNSError with IsNotFound. The hosts file is consulted
// only with [HostsFile]. A UDP datagram that is not a well-formed answer to
// the query (short, garbage, a wrong ID or question, from an off-path sender)
// is skipped until the attempt's timeout, as net's resolver does.
//
// On Windows there is no default resolv.conf: ResolvConf("") makes [New]
// return an error wrapping [errors.ErrUnsupported].
func ResolvConf(path string) Option { return resolvConfOption(path) }

func (o resolvConfOption) apply(c *config) error {
	p, err := defaultPath(o, string(o), DefaultResolvConf)
	c.source, c.resolvConf = o, p
	return err
}

func (o resolvConfOption) String() string { return fmt.Sprintf("dnscache.ResolvConf(%q)", string(o)) }

// defaultPath returns path, or def for "" where the system has such a file.
func defaultPath(o Option, path, def string) (string, error) {
	if path != "" {
		return path, nil
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		return "", &OptionError{Option: o, Err: fmt.Errorf("no %s on %s: %w", def, runtime.GOOS, errors.ErrUnsupported)}
	}
	return def, nil
}

type hostsFileOption string

// HostsFile makes the [ResolvConf] stub answer the names listed in the hosts
// file at path ("" means [DefaultHostsFile]) from that file, before DNS and
// without a query, as net's resolver does in its usual files-then-DNS order:
// a name the file lists only for the other family is "no such host". The file
// is read once, in [New] (net re-reads it when it changes); names match
// without regard to case or a final dot; a line whose address does not parse
// is an [*OptionError] from New naming the file and line, and a file over
// 64 MiB is refused. HostsFile with another source than ResolvConf is an
// error: the [System] source's resolver reads the hosts file itself.
//
// On Windows there is no default hosts file path: HostsFile("") makes [New]
// return an error wrapping [errors.ErrUnsupported].
func HostsFile(path string) Option { return hostsFileOption(path) }

func (o hostsFileOption) apply(c *config) error {
	p, err := defaultPath(o, string(o), DefaultHostsFile)
	c.hostsOpt, c.hostsFile = o, p
	return err
}

func (o hostsFileOption) String() string { return fmt.Sprintf("dnscache.HostsFile(%q)", string(o)) }

type staticOption struct{ hosts map[string][]netip.Addr }

// Static makes the cache answer from hosts, a map from names to addresses,
// without a DNS server: to try the cache, and for tests of code that takes
// a resolver. Each answer is kept for the time set with [TTL], as with
// [System], so a test on a [Clock] sees answers expire and lookups at the
// source repeat (see [Stats]).
//
// A name is found whatever its case and with or without a final dot. An
// "ip4" or "ip6" lookup gets the addresses of its family, in the map's
// order; a name that is missing, or lists only addresses of the other
// family, is a *net.DNSError with IsNotFound, cached for [NegativeTTL].
// IPv4-mapped IPv6 addresses are kept as IPv4. Static copies hosts; [New]
// refuses a name that is not a domain name, two keys that are the same
// name, a name without addresses and an invalid (zero) address.
func Static(hosts map[string][]netip.Addr) Option {
	cp := make(map[string][]netip.Addr, len(hosts))
	for name, addrs := range hosts {
		cp[name] = append([]netip.Addr(nil), addrs...)
	}
	return staticOption{cp}
}

func (o staticOption) apply(c *config) error {
	h := &hostsFile{what: "Static", byName: make(map[string][]netip.Addr, len(o.hosts))}
	for name, addrs := range o.hosts {
		k, ok := hostsName(name)
		if err := o.checkName(h, name, k, ok, addrs); err != nil {
			return err
		}
		for _, a := range addrs {
			h.byName[k] = append(h.byName[k], a.Unmap())
		}
	}
	c.source, c.static = o, h
	return nil
}

// checkName checks one entry of the map before it is added to h as k.
func (o staticOption) checkName(h *hostsFile, name, k string, ok bool, addrs []netip.Addr) error {
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("%q is not a domain name", name)
	case len(addrs) == 0:
		err = fmt.Errorf("%q has no addresses (leave a name out to make it \"no such host\")", name)
	case h.byName[k] != nil:
		err = fmt.Errorf("two keys are the name %q (names are compared without case or a final dot)", k)
	case slices.Contains(addrs, netip.Addr{}):
		err = fmt.Errorf("%q has an invalid (zero) netip.Addr", name)
	}
	if err != nil {
		return &OptionError{Option: o, Err: err}
	}
	return nil
}

// staticShown is how many names Static's String prints in full.
const staticShown = 4

func (o staticOption) String() string {
	if len(o.hosts) <= staticShown {
		return fmt.Sprintf("dnscache.Static(%v)", o.hosts)
	}
	return fmt.Sprintf("dnscache.Static(map[…%d names…])", len(o.hosts))
}

// A durationOption is one of the options that take a duration; what tells
// them apart is in durationSpecs.
type durationOption struct {
	which durationKind
	d     time.Duration
}

type durationKind uint8

const (
	durTTL durationKind = iota
	durMinTTL
	durMaxTTL
	durNegativeTTL
	durMaxStale
	durStaleAnswerTimeout
	durMinRefresh
	durLookupTimeout
	numDurations
)

// durationSpecs gives each duration option its name, its default (what 0
// means), whether a negative value turns its feature off (or is an error),
// and the field it sets.
var durationSpecs = [numDurations]struct {
	name        string
	def         time.Duration
	negativeOff bool
	field       func(*config) *time.Duration
}{
	durTTL:                {"TTL", DefaultTTL, false, func(c *config) *time.Duration { return &c.ttl }},
	durMinTTL:             {"MinTTL", 0, false, func(c *config) *time.Duration { return &c.minTTL }},
	durMaxTTL:             {"MaxTTL", DefaultMaxTTL, false, func(c *config) *time.Duration { return &c.maxTTL }},
	durNegativeTTL:        {"NegativeTTL", DefaultNegativeTTL, true, func(c *config) *time.Duration { return &c.negativeTTL }},
	durMaxStale:           {"MaxStale", DefaultMaxStale, true, func(c *config) *time.Duration { return &c.maxStale }},
	durStaleAnswerTimeout: {"StaleAnswerTimeout", DefaultStaleAnswerTimeout, false, func(c *config) *time.Duration { return &c.staleTimeout }},
	durMinRefresh:         {"MinRefresh", DefaultMinRefresh, false, func(c *config) *time.Duration { return &c.minRefresh }},
	durLookupTimeout:      {"LookupTimeout", DefaultLookupTimeout, false, func(c *config) *time.Duration { return &c.lookupTimeout }},
}

func (o durationOption) apply(c *config) error {
	spec := durationSpecs[o.which]
	c.durationsGiven[o.which] = o
	d, err := duration(o, o.d, spec.def, spec.negativeOff)
	*spec.field(c) = d
	return err
}

func (o durationOption) String() string {
	return fmt.Sprintf("dnscache.%s(%v)", durationSpecs[o.which].name, o.d)
}

// TTL sets how long the answers of a source that reports no TTLs ([System],
// [Static]) are kept, before [MinTTL] and [MaxTTL] clamp it. 0 means the
// default ([DefaultTTL]); a negative value is an error. TTL with
// [ResolvConf], which keeps the TTLs of the answers, is an error too.
func TTL(d time.Duration) Option { return durationOption{durTTL, d} }

// MinTTL raises every positive TTL below d to d. 0, the default, keeps TTLs
// as sent; a negative value is an error, and so is a MinTTL above [MaxTTL].
// An answer whose TTL is still 0 is used only for the lookup that fetched
// it (RFC 1035 §3.2.1): it is never cached, not even for serve-stale
// ([MaxStale]), and the older answer it replaces is dropped.
func MinTTL(d time.Duration) Option { return durationOption{durMinTTL, d} }

// MaxTTL lowers every TTL above d to d, so that a service notices address
// changes even behind a zone with day-long TTLs. 0 means the default
// ([DefaultMaxTTL]); a negative value is an error.
func MaxTTL(d time.Duration) Option { return durationOption{durMaxTTL, d} }

// NegativeTTL bounds how long a "no such host" answer (NXDOMAIN, or no record
// of the asked type) is cached. With [ResolvConf] the time comes from the SOA
// record in the answer as RFC 2308 says (the smaller of its TTL and its
// MINIMUM field), capped at d; with [System] and [Static], or when the answer
// has no SOA, it is d. 0 means the default ([DefaultNegativeTTL]); a
// negative value turns it off. Transient failures (timeouts, SERVFAIL,
// REFUSED) are never cached.
func NegativeTTL(d time.Duration) Option { return durationOption{durNegativeTTL, d} }

// MaxStale sets how long past its expiry an answer may still be served when
// refreshing it fails (RFC 8767 serve-stale). 0 means the default
// ([DefaultMaxStale]); a negative value turns it off.
func MaxStale(d time.Duration) Option { return durationOption{durMaxStale, d} }

// StaleAnswerTimeout sets how long a caller that finds only an expired answer
// waits for the fresh lookup it starts before it is handed the stale answer
// (the "client response timer" of RFC 8767, which suggests 1.8 s for
// recursive servers; a dialer wants less). The lookup carries on in the
// background. 0 means the default ([DefaultStaleAnswerTimeout]); a negative
// value is an error.
func StaleAnswerTimeout(d time.Duration) Option { return durationOption{durStaleAnswerTimeout, d} }

// MinRefresh sets the shortest time between two background queries for the
// same entry: a prefetch never starts sooner than d after the answer it
// refreshes was fetched, and after a failed refresh the stale answer is served
// without a new query for d (the "failure recheck" of RFC 8767). It protects
// the DNS server from hot names with tiny TTLs. 0 means the default
// ([DefaultMinRefresh]); a negative value is an error.
func MinRefresh(d time.Duration) Option { return durationOption{durMinRefresh, d} }

// LookupTimeout bounds one lookup at the source, retries included. Lookups run
// detached from the callers' contexts (a caller that gives up never fails the
// others), so this is what ends a lookup nobody waits for any more. 0 means
// the default ([DefaultLookupTimeout]); a negative value is an error.
func LookupTimeout(d time.Duration) Option { return durationOption{durLookupTimeout, d} }

type prefetchOption bool

// Prefetch turns prefetching on or off (default on): an entry that is looked
// up in the last 10–20% of its TTL (the exact point is jittered per entry) is
// refreshed in the background, so that hot names never expire. Entries nobody
// looks up are not refreshed and age out.
func Prefetch(on bool) Option { return prefetchOption(on) }

func (o prefetchOption) apply(c *config) error {
	c.prefetch = bool(o)
	return nil
}

func (o prefetchOption) String() string { return fmt.Sprintf("dnscache.Prefetch(%t)", bool(o)) }

// A numberOption is one of the options that take a count of at least 1;
// what tells them apart is in numberSpecs.
type numberOption struct {
	which numberKind
	n     int64
}

type numberKind uint8

const (
	numMaxEntries numberKind = iota
	numMaxAnswerAddrs
	numMaxBytes
	numMaxLookups
	numNumbers
)

// numberSpecs gives each number option its name and what it sets.
var numberSpecs = [numNumbers]struct {
	name string
	set  func(*config, int64)
}{
	numMaxEntries:     {"MaxEntries", func(c *config, n int64) { c.maxEntries = int(n) }},
	numMaxAnswerAddrs: {"MaxAnswerAddrs", func(c *config, n int64) { c.maxAnswerAddrs = int(n) }},
	numMaxBytes:       {"MaxBytes", func(c *config, n int64) { c.maxBytes = n }},
	numMaxLookups:     {"MaxLookups", func(c *config, n int64) { c.maxLookups = int(n) }},
}

func (o numberOption) apply(c *config) error {
	c.numbersGiven[o.which] = o
	if o.n < 1 {
		return &OptionError{Option: o, Err: errors.New("must be at least 1")}
	}
	numberSpecs[o.which].set(c, o.n)
	return nil
}

func (o numberOption) String() string {
	return fmt.Sprintf("dnscache.%s(%d)", numberSpecs[o.which].name, o.n)
}

// MaxEntries bounds the number of cached answers, one per (host, network)
// pair, positive and negative alike (default [DefaultMaxEntries]; n must be
// at least 1). An insert that goes over the bound evicts one entry, so the
// cache holds exactly n once full: the first, going round the entries in
// the order they were added, that cannot be served any more or has not
// been used since the last time round (the CLOCK algorithm, an
// approximation of least recently used that costs a hit no lock and an
// insert O(1) amortised). [MaxBytes] bounds their size.
func MaxEntries(n int) Option { return numberOption{numMaxEntries, int64(n)} }

// MaxAnswerAddrs bounds the addresses kept from one answer (default
// [DefaultMaxAnswerAddrs], about what fits in one UDP answer; n must be at
// least 1). The cache keeps the first n in the order the source gave them
// (the answer's order for [ResolvConf], net's RFC 6724 order for [System],
// the map's for [Static]), IPv4 and IPv6 sharing n evenly when an "ip"
// answer has more than n/2 of both; the others are dropped, and the lookup
// succeeds with the n kept. An answer of thousands of records thus costs
// what an answer of n does.
func MaxAnswerAddrs(n int) Option { return numberOption{numMaxAnswerAddrs, int64(n)} }

// MaxBytes bounds the heap the cached answers hold (default
// [DefaultMaxBytes]). Each answer counts 320 bytes plus the length of its
// name plus 32 bytes per address, which is more than it holds (an address
// is stored once, as a 24-byte [netip.Addr]; an answer of one address
// holds about 220 bytes in all, one of 64 about 2,000), so one answer
// counts at most 320 + 254 + 32 × [MaxAnswerAddrs] bytes (2,622 with the
// defaults) and [New] refuses an n below that. When an insert goes over the
// bound, entries are evicted as [MaxEntries] evicts them until the count is
// within it again. [Cache.Stats] reports the count. With the
// defaults the cache holds at most 16 MiB of answers, whatever the zones
// it is asked about return.
func MaxBytes(n int64) Option { return numberOption{numMaxBytes, n} }

// MaxLookups bounds the lookups at the source in progress at once (default
// [DefaultMaxLookups]; n must be at least 1), and so the goroutines and
// sockets the cache holds when its DNS servers stop answering: a lookup
// nobody waits for any more still runs until [LookupTimeout]. A caller that
// needs a new lookup when n are in progress waits for one of them to end,
// for as long as its context allows (it then gets the context's error, as
// for any wait); callers joining a lookup already in progress never wait
// for a slot. Prefetches and stale refreshes never wait: beyond the bound
// they are not started, and the stale answer is served.
func MaxLookups(n int) Option { return numberOption{numMaxLookups, int64(n)} }

type clockOption struct{ now func() time.Time }

// Clock replaces the cache's clock, for tests: expiry, staleness and prefetch
// decisions read now() instead of the monotonic clock. Timeouts
// (StaleAnswerTimeout, LookupTimeout, the DNS timeouts) still run on real
// time. now should be monotonic; Clock(nil) is an error.
func Clock(now func() time.Time) Option { return clockOption{now} }

func (o clockOption) apply(c *config) error {
	if o.now == nil {
		return &OptionError{Option: o, Err: errors.New("need a function")}
	}
	c.clock = o.now
	return nil
}

func (o clockOption) String() string {
	if o.now == nil {
		return "dnscache.Clock(nil)"
	}
	return "dnscache.Clock(func)"
}
