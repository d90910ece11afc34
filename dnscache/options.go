package dnscache

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"
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
// [New] returns the first error, naming the option. When the same option is
// given twice the last one wins; [System] and [ResolvConf] replace each other.
type Option interface {
	apply(*config) error
	String() string
}

type config struct {
	resolver       *net.Resolver // system source
	ttl            time.Duration // for the system source
	resolvConf     string        // stub source when useStub
	useStub        bool
	hostsFile      string // read by the stub source; "": none
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

// durationOr returns def for 0, d for d > 0, and an error for d < 0 unless
// negative values mean "off" for the option.
func durationOr(name string, d, def time.Duration, negativeMeansOff bool) (time.Duration, error) {
	switch {
	case d == 0:
		return def, nil
	case d > 0:
		return d, nil
	case negativeMeansOff:
		return -1, nil
	}
	return 0, fmt.Errorf("dnscache: %s=%v: must not be negative", name, d)
}

type systemOption struct{ r *net.Resolver }

// System makes the cache ask r (nil means [net.DefaultResolver]) and keep each
// answer for the TTL set with [TTL], since net does not report record TTLs.
// This is the default source.
func System(r *net.Resolver) Option { return systemOption{r} }

func (o systemOption) apply(c *config) error {
	c.resolver, c.useStub = o.r, false
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
// address records, clamped by [MinTTL] and [MaxTTL]). The file is read once, in
// [New]; its nameserver, search, domain and options ndots, timeout, attempts
// and rotate lines are honoured. A nameserver may carry a port
// ("nameserver 127.0.0.1:5353" or "[::1]:5353"), an extension of the usual
// format. Option values past the resolver library's limits (ndots 15,
// timeout 30 s, attempts 5, six search domains) are capped as the library
// caps them, so that the file means the same to both; a malformed value is an
// error naming the file and line.
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
	p := string(o)
	if p == "" {
		if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
			return fmt.Errorf("dnscache: ResolvConf(\"\"): no %s on %s: %w", DefaultResolvConf, runtime.GOOS, errors.ErrUnsupported)
		}
		p = DefaultResolvConf
	}
	c.resolvConf, c.useStub = p, true
	return nil
}

func (o resolvConfOption) String() string { return fmt.Sprintf("dnscache.ResolvConf(%q)", string(o)) }

type hostsFileOption string

// HostsFile makes the [ResolvConf] stub answer the names listed in the hosts
// file at path ("" means [DefaultHostsFile]) from that file, before DNS and
// without a query, as net's resolver does in its usual files-then-DNS order:
// a name the file lists only for the other family is "no such host". The file
// is read once, in [New] (net re-reads it when it changes); names match
// without regard to case or a final dot; a line whose address does not parse
// is an error from New naming the file and line, and a file over 64 MiB is
// refused. HostsFile without ResolvConf is an error: the [System] source's
// resolver reads the hosts file itself.
//
// On Windows there is no default hosts file path: HostsFile("") makes [New]
// return an error wrapping [errors.ErrUnsupported].
func HostsFile(path string) Option { return hostsFileOption(path) }

func (o hostsFileOption) apply(c *config) error {
	p := string(o)
	if p == "" {
		if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
			return fmt.Errorf("dnscache: HostsFile(\"\"): no %s on %s: %w", DefaultHostsFile, runtime.GOOS, errors.ErrUnsupported)
		}
		p = DefaultHostsFile
	}
	c.hostsFile = p
	return nil
}

func (o hostsFileOption) String() string { return fmt.Sprintf("dnscache.HostsFile(%q)", string(o)) }

type ttlOption time.Duration

// TTL sets how long answers from the [System] source are kept (0 means
// [DefaultTTL]; negative is an error). It has no effect with [ResolvConf],
// which uses the TTLs from the answers.
func TTL(d time.Duration) Option { return ttlOption(d) }

func (o ttlOption) apply(c *config) (err error) {
	c.ttl, err = durationOr("TTL", time.Duration(o), DefaultTTL, false)
	return err
}

func (o ttlOption) String() string { return fmt.Sprintf("dnscache.TTL(%v)", time.Duration(o)) }

type minTTLOption time.Duration

// MinTTL raises every positive TTL below d to d (default 0: TTLs are kept as
// sent). An answer whose TTL is still 0 is used only for the lookup that
// fetched it (RFC 1035 §3.2.1): it is never cached, not even for serve-stale
// ([MaxStale]), and the older answer it replaces is dropped. Negative is an
// error. [New] rejects a MinTTL above [MaxTTL].
func MinTTL(d time.Duration) Option { return minTTLOption(d) }

func (o minTTLOption) apply(c *config) (err error) {
	c.minTTL, err = durationOr("MinTTL", time.Duration(o), 0, false)
	return err
}

func (o minTTLOption) String() string { return fmt.Sprintf("dnscache.MinTTL(%v)", time.Duration(o)) }

type maxTTLOption time.Duration

// MaxTTL lowers every TTL above d to d (0 means [DefaultMaxTTL]; negative is
// an error), so that a service notices address changes even behind a zone
// with day-long TTLs.
func MaxTTL(d time.Duration) Option { return maxTTLOption(d) }

func (o maxTTLOption) apply(c *config) (err error) {
	c.maxTTL, err = durationOr("MaxTTL", time.Duration(o), DefaultMaxTTL, false)
	return err
}

func (o maxTTLOption) String() string { return fmt.Sprintf("dnscache.MaxTTL(%v)", time.Duration(o)) }

type negativeTTLOption time.Duration

// NegativeTTL bounds how long a "no such host" answer (NXDOMAIN, or no record
// of the asked type) is cached. With [ResolvConf] the time comes from the SOA
// record in the answer as RFC 2308 says (the smaller of its TTL and its
// MINIMUM field), capped at d; with [System], or when the answer has no SOA,
// it is d. 0 means [DefaultNegativeTTL]; negative turns negative caching off.
// Transient failures (timeouts, SERVFAIL, REFUSED) are never cached.
func NegativeTTL(d time.Duration) Option { return negativeTTLOption(d) }

func (o negativeTTLOption) apply(c *config) (err error) {
	c.negativeTTL, err = durationOr("NegativeTTL", time.Duration(o), DefaultNegativeTTL, true)
	return err
}

func (o negativeTTLOption) String() string {
	return fmt.Sprintf("dnscache.NegativeTTL(%v)", time.Duration(o))
}

type maxStaleOption time.Duration

// MaxStale sets how long past its expiry an answer may still be served when
// refreshing it fails (RFC 8767 serve-stale). 0 means [DefaultMaxStale];
// negative turns serve-stale off.
func MaxStale(d time.Duration) Option { return maxStaleOption(d) }

func (o maxStaleOption) apply(c *config) (err error) {
	c.maxStale, err = durationOr("MaxStale", time.Duration(o), DefaultMaxStale, true)
	return err
}

func (o maxStaleOption) String() string {
	return fmt.Sprintf("dnscache.MaxStale(%v)", time.Duration(o))
}

type staleTimeoutOption time.Duration

// StaleAnswerTimeout sets how long a caller that finds only an expired answer
// waits for the fresh lookup it starts before it is handed the stale answer
// (the "client response timer" of RFC 8767, which suggests 1.8 s for
// recursive servers; a dialer wants less). The lookup carries on in the
// background. 0 means [DefaultStaleAnswerTimeout]; negative is an error.
func StaleAnswerTimeout(d time.Duration) Option { return staleTimeoutOption(d) }

func (o staleTimeoutOption) apply(c *config) (err error) {
	c.staleTimeout, err = durationOr("StaleAnswerTimeout", time.Duration(o), DefaultStaleAnswerTimeout, false)
	return err
}

func (o staleTimeoutOption) String() string {
	return fmt.Sprintf("dnscache.StaleAnswerTimeout(%v)", time.Duration(o))
}

type minRefreshOption time.Duration

// MinRefresh sets the shortest time between two background queries for the
// same entry: a prefetch never starts sooner than d after the answer it
// refreshes was fetched, and after a failed refresh the stale answer is served
// without a new query for d (the "failure recheck" of RFC 8767). It protects
// the DNS server from hot names with tiny TTLs. 0 means [DefaultMinRefresh];
// negative is an error.
func MinRefresh(d time.Duration) Option { return minRefreshOption(d) }

func (o minRefreshOption) apply(c *config) (err error) {
	c.minRefresh, err = durationOr("MinRefresh", time.Duration(o), DefaultMinRefresh, false)
	return err
}

func (o minRefreshOption) String() string {
	return fmt.Sprintf("dnscache.MinRefresh(%v)", time.Duration(o))
}

type lookupTimeoutOption time.Duration

// LookupTimeout bounds one lookup at the source, retries included. Lookups run
// detached from the callers' contexts (a caller that gives up never fails the
// others), so this is what ends a lookup nobody waits for any more. 0 means
// [DefaultLookupTimeout]; negative is an error.
func LookupTimeout(d time.Duration) Option { return lookupTimeoutOption(d) }

func (o lookupTimeoutOption) apply(c *config) (err error) {
	c.lookupTimeout, err = durationOr("LookupTimeout", time.Duration(o), DefaultLookupTimeout, false)
	return err
}

func (o lookupTimeoutOption) String() string {
	return fmt.Sprintf("dnscache.LookupTimeout(%v)", time.Duration(o))
}

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

type maxEntriesOption int

// MaxEntries bounds the number of cached answers, one per (host, network)
// pair, positive and negative alike (default [DefaultMaxEntries]; n must be
// at least 1). When an insert goes over the bound, the least recently used
// tenth of the entries is evicted. [MaxBytes] bounds their size.
func MaxEntries(n int) Option { return maxEntriesOption(n) }

func (o maxEntriesOption) apply(c *config) error {
	if o < 1 {
		return fmt.Errorf("dnscache: MaxEntries(%d): must be at least 1", int(o))
	}
	c.maxEntries = int(o)
	return nil
}

func (o maxEntriesOption) String() string { return fmt.Sprintf("dnscache.MaxEntries(%d)", int(o)) }

type maxAnswerAddrsOption int

// MaxAnswerAddrs bounds the addresses kept from one answer (default
// [DefaultMaxAnswerAddrs], about what fits in one UDP answer; n must be at
// least 1). The cache keeps the first n in the order the source gave them
// (the answer's order for [ResolvConf], net's RFC 6724 order for [System]),
// IPv4 and IPv6 sharing n evenly when an "ip" answer has more than n/2 of
// both; the others are dropped, and the lookup succeeds with the n kept.
// An answer of thousands of records thus costs what an answer of n does.
func MaxAnswerAddrs(n int) Option { return maxAnswerAddrsOption(n) }

func (o maxAnswerAddrsOption) apply(c *config) error {
	if o < 1 {
		return fmt.Errorf("dnscache: MaxAnswerAddrs(%d): must be at least 1", int(o))
	}
	c.maxAnswerAddrs = int(o)
	return nil
}

func (o maxAnswerAddrsOption) String() string {
	return fmt.Sprintf("dnscache.MaxAnswerAddrs(%d)", int(o))
}

type maxBytesOption int64

// MaxBytes bounds the heap the cached answers hold (default
// [DefaultMaxBytes]). Each answer counts 320 bytes plus the length of its
// name plus 32 bytes per address, which is more than it holds (an address
// is stored once, as a 24-byte [netip.Addr]; an answer of one address
// holds about 170 bytes in all, one of 64 about 1,930), so one answer
// counts at most 320 + 254 + 32 × [MaxAnswerAddrs] bytes (2,622 with the
// defaults) and [New] rejects an n below that. When an insert goes over the
// bound, the least recently used entries are evicted until the count is
// under nine tenths of it. [Cache.Stats] reports the count. With the
// defaults the cache holds at most 16 MiB of answers, whatever the zones
// it is asked about return.
func MaxBytes(n int64) Option { return maxBytesOption(n) }

func (o maxBytesOption) apply(c *config) error {
	if o < 1 {
		return fmt.Errorf("dnscache: MaxBytes(%d): must be positive", int64(o))
	}
	c.maxBytes = int64(o)
	return nil
}

func (o maxBytesOption) String() string { return fmt.Sprintf("dnscache.MaxBytes(%d)", int64(o)) }

type maxLookupsOption int

// MaxLookups bounds the lookups at the source in progress at once (default
// [DefaultMaxLookups]; n must be at least 1), and so the goroutines and
// sockets the cache holds when its DNS servers stop answering: a lookup
// nobody waits for any more still runs until [LookupTimeout]. A caller that
// needs a new lookup when n are in progress waits for one of them to end,
// for as long as its context allows (it then gets the context's error, as
// for any wait); callers joining a lookup already in progress never wait
// for a slot. Prefetches and stale refreshes never wait: beyond the bound
// they are not started, and the stale answer is served.
func MaxLookups(n int) Option { return maxLookupsOption(n) }

func (o maxLookupsOption) apply(c *config) error {
	if o < 1 {
		return fmt.Errorf("dnscache: MaxLookups(%d): must be at least 1", int(o))
	}
	c.maxLookups = int(o)
	return nil
}

func (o maxLookupsOption) String() string { return fmt.Sprintf("dnscache.MaxLookups(%d)", int(o)) }

type clockOption struct{ now func() time.Time }

// Clock replaces the cache's clock, for tests: expiry, staleness and prefetch
// decisions read now() instead of the monotonic clock. Timeouts
// (StaleAnswerTimeout, LookupTimeout, the DNS timeouts) still run on real
// time. now must not be nil and should be monotonic.
func Clock(now func() time.Time) Option { return clockOption{now} }

func (o clockOption) apply(c *config) error {
	if o.now == nil {
		return errors.New("dnscache: Clock(nil): need a function")
	}
	c.clock = o.now
	return nil
}

func (o clockOption) String() string { return "dnscache.Clock(func)" }
