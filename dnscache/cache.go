package dnscache

import (
	"context"
	"errors"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/nettune/nettune/internal/pin"
)

// ErrClosed is wrapped by the error of a lookup that needs the network after
// [Cache.Close].
var ErrClosed = errors.New("dnscache: closed")

// sweepEvery is how often the background goroutine drops unusable entries.
const sweepEvery = time.Second

// sweepBatch and sweepShare bound the entries one sweep looks at: all of
// them up to sweepBatch, else the larger of sweepBatch and 1/sweepShare of
// them, so that a sweep of a large cache holds the lock for a bounded time
// and an unusable entry is dropped within sweepShare sweeps.
const (
	sweepBatch = 4096
	sweepShare = 16
)

// maxNameLen is the longest name DNS can hold (253 bytes, 254 with the final
// dot). Longer names are answered (no such host) but never cached, so that a
// caller cannot fill the cache with huge keys.
const maxNameLen = 254

// What the cache counts for each entry against MaxBytes: a fixed part (the
// entry, its slot, its share of the table, a negative answer's error) plus
// the name plus the addresses, each stored once as a 24-byte netip.Addr and
// counted as 32 to cover the allocator's rounding (the address of a
// one-address answer lives in its entry). Measured on linux/amd64 with Go
// 1.26 and 16-byte names, 2,000 entries: 224 bytes of heap for an entry of
// one address (counted 368), 304 for a negative one (336), 2,016 for 64
// addresses (2,384), the slot's share of its table and the slot's own copy
// of the name included (16 bytes per cell, 4/3 to 4 cells per slot: 21 to
// 64 bytes, 32 here); TestAnEntryHoldsNoMoreHeapThanItCountsAgainstMaxBytes
// checks that each is under its count.
const (
	entryOverhead = 320
	addrBytes     = 32
)

// entryBytes is what an entry for host with n addresses counts against
// MaxBytes.
func entryBytes(host string, n int) int64 {
	return entryOverhead + int64(len(host)) + addrBytes*int64(n)
}

// Address families of a view into an entry: all of it, or the IPv4 or IPv6
// part of an "ip" answer (the same numbers as the tables of ip4 and ip6).
const (
	famAll = 0
	fam4   = 1
	fam6   = 2
)

// errBusy is returned by flight when every lookup slot is taken and the
// caller does not wait (prefetches and stale refreshes).
var errBusy = errors.New("dnscache: MaxLookups lookups in progress")

// networks are the networks a cache answers for, indexed by table.
var networks = [...]string{"ip", "ip4", "ip6"}

func netIndex(network string) int {
	switch network {
	case "ip":
		return 0
	case "ip4":
		return 1
	case "ip6":
		return 2
	}
	return -1
}

// Cache is a DNS cache. Create it with [New]; the zero value is not usable.
// A Cache is safe for concurrent use by any number of goroutines. Close it
// to stop its goroutines.
type Cache struct {
	// idx maps host to slot, one hash table per network (see table).
	// Readers probe it without a lock; writers (under mu) store a refreshed
	// answer into the existing slot, and add or remove a host in O(1)
	// amortised, whatever the number of hosts.
	idx  [len(networks)]index
	seed maphash.Seed // of the tables' hash

	cfg     config
	src     source
	instant bool          // src answers without waiting (see instantSource)
	start   time.Time     // the zero of the clock readings below (monotonic)
	clock   func() int64  // the injected Clock as nanoseconds since start, or nil
	foldDot bool          // "name." and "name" are the same name to the source
	sem     chan struct{} // one token per lookup at the source in progress (MaxLookups)

	hits *pin.Counter // per P: a hit counts without a locked instruction
	misses, staleServed, negativeHits, prefetches,
	evictions, expired, lookupErrors, lookups atomic.Uint64

	ctx    context.Context // cancelled by Close: ends lookups and the ticker
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the cache started

	mu      sync.Mutex // guards flights, count, bytes, gen, closed, hand, sweepAt and every write to idx and the ring
	flights map[key]*flight
	count   int    // entries in idx
	bytes   int64  // what the entries count against MaxBytes (see entryBytes)
	gen     uint64 // bumped by Invalidate and Flush: older lookups are not stored
	closed  bool
	hand    *slot // the eviction ring's next candidate (CLOCK); nil when empty
	sweepAt *slot // where the next sweep starts; nil: at hand
}

type key struct {
	net  int
	host string
}

// entry is an immutable cached answer, replaced whole on refresh; only
// prefetching changes in place. Times are clock readings (see Cache.now).
type entry struct {
	addrs      []netip.Addr  // never handed out: callers get copies
	n4         int           // how many of addrs are IPv4
	truncated  bool          // the answer had more than MaxAnswerAddrs addresses
	err        *net.DNSError // non-nil for a negative answer
	expires    int64         // fresh before this
	staleUntil int64         // servable, when a refresh fails, before this
	prefetchAt int64         // a hit at or after this starts a prefetch
	retryAt    int64         // after a failed refresh: no new query before this

	prefetching atomic.Bool

	one [1]netip.Addr // addrs of a one-address answer (one allocation, not two)
}

// flight is one lookup in progress; e or err is set before done is closed.
type flight struct {
	// done is closed when the lookup ends. It is made by the first caller
	// that waits for the lookup (under Cache.mu, while the flight is in
	// Cache.flights), so that a lookup nobody else joins, run by its caller
	// (see Cache.getSlow), makes no channel.
	done chan struct{}
	host string    // asked as the first caller spelt it
	gen  uint64    // Cache.gen when the lookup started: a later Invalidate or Flush keeps it from being stored
	ctx  lookupCtx // what the source runs under
	e    *entry
	err  error
}

// How a caller of Cache.flight takes part in the lookup.
type join uint8

const (
	joinPrefetch join = iota // start the lookup if a slot is free; nobody waits for it (prefetch)
	joinRefresh              // the same, and the caller waits for the answer, for a bounded time (serve-stale)
	joinWait                 // the caller needs the answer: it waits for a slot if none is free, then for the answer
	joinRun                  // joinWait, but a lookup the caller starts is the caller's to run (Cache.run)
)

// New returns a cache configured by opts. It reads the files named by
// [ResolvConf] and [HostsFile] and starts one background goroutine (the
// sweeper), which [Cache.Close] stops. A refused option, or a file it
// names that cannot be read, is an [*OptionError].
func New(opts ...Option) (*Cache, error) {
	cfg, err := configure(opts)
	if err != nil {
		return nil, err
	}
	src, foldDot, err := cfg.newSource()
	if err != nil {
		return nil, err
	}
	is, ok := src.(instantSource)
	c := &Cache{cfg: cfg, src: src, instant: ok && is.instant(), foldDot: foldDot, flights: make(map[key]*flight),
		sem: make(chan struct{}, cfg.maxLookups), seed: maphash.MakeSeed(), hits: pin.NewCounter()}
	for n := range c.idx {
		c.idx[n].reset()
	}
	c.start = time.Now()
	if cfg.clock != nil {
		c.start = cfg.clock()
		c.clock = func() int64 { return int64(cfg.clock().Sub(c.start)) }
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.background()
	return c, nil
}

// newSource makes the source the configuration names, reading its files,
// and says whether "name." and "name" are the same name to it.
func (cfg *config) newSource() (src source, foldDot bool, err error) {
	switch o := cfg.source.(type) {
	case resolvConfOption:
		stub := &stubSource{}
		if stub.conf, err = readResolvConf(cfg.resolvConf); err != nil {
			return nil, false, &OptionError{Option: o, Err: err}
		}
		if cfg.hostsFile != "" {
			if stub.hosts, err = readHosts(cfg.hostsFile); err != nil {
				return nil, false, &OptionError{Option: cfg.hostsOpt, Err: err}
			}
		}
		return stub, len(stub.conf.search) == 0, nil
	case staticOption:
		return staticSource{hosts: cfg.static, ttl: cfg.ttl}, true, nil
	}
	return systemSource{r: cfg.resolver, ttl: cfg.ttl}, false, nil
}

// now reads the cache's clock: nanoseconds since New, from the monotonic
// clock or the injected one.
//
// Every hit reads it. A coarse clock advanced by a background goroutine
// would be cheaper to read (an atomic load instead of 20–40 ns here, in a
// VM: a hit costs about twice what it did with such a clock), but
// after the process stalls (SIGSTOP, a paused VM, CPU throttling) it lags by
// the length of the stall until that goroutine runs again, and nothing a hit
// can read without a clock tells it that a stall happened: expired answers
// would be served as fresh.
func (c *Cache) now() int64 {
	if c.clock != nil {
		return c.clock()
	}
	return int64(time.Since(c.start))
}

func (c *Cache) background() {
	defer c.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.sweep()
	}
}

// LookupNetIP looks host up for network "ip", "ip4" or "ip6", like
// [net.Resolver.LookupNetIP], and returns a new slice the caller owns, with
// the addresses rotated (see [Cache.AppendNetIP]). IP literals are returned
// as they are, without caching. Errors are *[net.DNSError] naming host as
// given: IsNotFound for "no such host" (fresh or cached), IsTimeout /
// IsTemporary for failures; a cancelled ctx gives an error that unwraps to
// ctx.Err().
//
// Names are case-insensitive: host is cached and asked for in ASCII lower
// case (see the package documentation, Names, for the final dot). An "ip4"
// or "ip6" lookup is answered from a fresh "ip" answer for the same name
// when that answer holds addresses of the family.
//
// ctx bounds only this caller's wait: the lookup itself is shared with every
// concurrent caller for the same host and network and runs on, bounded by
// [LookupTimeout], when this caller gives up. A caller that cannot give up
// (a ctx that never ends, such as [context.Background], or the [Static]
// source, which answers from memory) runs a lookup it starts in its own
// goroutine instead of waiting for a new one; callers that join it are
// served, or give up, as for any lookup. When [MaxLookups] lookups are
// already in progress, a caller that needs a new one waits for one of them
// to end, for as long as ctx allows.
func (c *Cache) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	e, fam, r, err := c.get(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return e.appendRotated(make([]netip.Addr, 0, e.count(fam)), r, fam), nil
}

// AppendNetIP is [Cache.LookupNetIP] that appends the addresses to dst and
// returns the extended slice. When the answer is cached and fresh (for "ip4"
// and "ip6", also as part of an "ip" answer), host has no upper-case letter
// and dst has room, it allocates nothing, takes no lock, counts the hit in
// a counter of its P (a plain increment; an atomic one with -race, another
// compiler or on 32-bit platforms) and reads only the monotonic clock: this
// is the hot path.
//
// The addresses come rotated, starting at a different one from call to call
// (evenly over successive calls), so that connections opened one after the
// other spread over all of a service's addresses; the order is otherwise
// the order of the answer.
func (c *Cache) AppendNetIP(ctx context.Context, dst []netip.Addr, network, host string) ([]netip.Addr, error) {
	e, fam, r, err := c.get(ctx, network, host)
	if err != nil {
		return dst, err
	}
	if fam == famAll && len(e.addrs) == 1 {
		return append(dst, e.addrs[0]), nil
	}
	return e.appendRotated(dst, r, fam), nil
}

// LookupHost looks host up for network "ip" like [net.Resolver.LookupHost]
// and returns the addresses as strings, rotated as [Cache.AppendNetIP] does.
// The cache keeps each address once, as a [netip.Addr]: the strings are
// formatted for each call (two allocations, whatever the number of
// addresses).
func (c *Cache) LookupHost(ctx context.Context, host string) ([]string, error) {
	e, _, r, err := c.get(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	n := len(e.addrs)
	i := 0
	if n > 1 {
		i = int(uint64(r) * uint64(n) >> 32)
	}
	// Format every address into one buffer and cut the strings out of it.
	buf := make([]byte, 0, n*16)
	var endsBuf [16]int
	ends := endsBuf[:0]
	for k := range n {
		buf = e.addrs[(i+k)%n].AppendTo(buf)
		ends = append(ends, len(buf))
	}
	all := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is never written again
	out := make([]string, n)
	start := 0
	for k, end := range ends {
		out[k], start = all[start:end], end
	}
	return out, nil
}

// count is the number of addresses in the view fam of e.
func (e *entry) count(fam int) int {
	switch fam {
	case fam4:
		return e.n4
	case fam6:
		return len(e.addrs) - e.n4
	}
	return len(e.addrs)
}

// appendRotated appends the addresses of view fam of e to dst, starting at
// the one r picks.
func (e *entry) appendRotated(dst []netip.Addr, r uint32, fam int) []netip.Addr {
	if fam == famAll {
		n := len(e.addrs)
		if n == 1 {
			return append(dst, e.addrs[0])
		}
		i := int(uint64(r) * uint64(n) >> 32) // r mod n, without a division
		// One address at a time into room made once: appending a
		// slice of them calls the runtime's typed copy (an Addr holds
		// a pointer) twice, which cost a two-address hit about 8 ns.
		dst = slices.Grow(dst, n)
		for range n {
			dst = append(dst, e.addrs[i])
			if i++; i == n {
				i = 0
			}
		}
		return dst
	}
	// The IPv4 or IPv6 part of an "ip" answer, in place: skip the first i
	// addresses of the family, then wrap round to them.
	want4 := fam == fam4
	i := int(uint64(r) * uint64(e.count(fam)) >> 32)
	j := 0
	for _, a := range e.addrs {
		if a.Is4() == want4 {
			if j >= i {
				dst = append(dst, a)
			}
			j++
		}
	}
	j = 0
	for _, a := range e.addrs {
		if j == i {
			break
		}
		if a.Is4() == want4 {
			dst = append(dst, a)
			j++
		}
	}
	return dst
}

// countHit counts a hit and returns the number that rotates the answer.
// The count is kept per P (see internal/pin: a plain increment of the P's
// own word, about 2 ns, where an atomic add costs about 6 ns here
// uncontended and more when parallel hits share its line). The count of
// the P, multiplied by the golden ratio, is a Weyl sequence: successive
// hits on one P walk every rotation evenly.
func (c *Cache) countHit() uint32 {
	return uint32(c.hits.Inc()) * 0x9e3779b9
}

// get returns a positive entry for (network, host), the view of it that
// answers network, and a random number for rotation. The fast path is a
// fresh entry under host as given (the tables hold canonical names only, so
// a name found as given is canonical): one hash, one probe of a table, one
// clock read, no lock, no allocation.
func (c *Cache) get(ctx context.Context, network, host string) (*entry, int, uint32, error) {
	n := netIndex(network)
	if n >= 0 {
		if s := c.idx[n].t.Load().find(c.hashName(host), host); s != nil {
			if e := s.e.Load(); e.err == nil {
				var now int64
				if c.clock == nil {
					now = int64(time.Since(c.start)) // c.now, without a call
				} else {
					now = c.clock()
				}
				if now < e.expires {
					s.touch()
					if now >= e.prefetchAt {
						c.prefetch(n, host, e)
					}
					return e, famAll, c.countHit(), nil
				}
			}
		}
	}
	return c.getSlow(ctx, n, network, host)
}

// touch marks s as used since the eviction hand last passed it. Only the
// first hit after that writes: parallel hits on a hot entry only read it.
func (s *slot) touch() {
	if !s.used.Load() {
		s.used.Store(true)
	}
}

func (c *Cache) getSlow(ctx context.Context, n int, network, host string) (*entry, int, uint32, error) {
	if n < 0 {
		return nil, 0, 0, &net.DNSError{Err: "dnscache: unknown network " + network, Name: host, UnwrapErr: net.UnknownNetworkError(network)}
	}
	if host == "" {
		return nil, 0, 0, &net.DNSError{Err: "dnscache: no such host", Name: host, IsNotFound: true}
	}
	// Cached answers first (the tables never hold IP literals), then
	// literals, then the network.
	name := c.canonical(host)
	now := c.now()
	s := c.find(n, name)
	var e *entry
	if s != nil {
		e = s.e.Load()
	}
	switch {
	case e != nil && now < e.expires && e.err != nil:
		c.negativeHits.Add(1)
		return nil, 0, 0, e.negative(host)
	case e != nil && now < e.expires:
		s.touch()
		if name != host && now >= e.prefetchAt {
			c.prefetch(n, name, e)
		}
		return e, famAll, c.countHit(), nil
	}
	if n != 0 {
		// The IPv4 or IPv6 part of a fresh "ip" answer answers "ip4" or
		// "ip6": it is what the A or AAAA query for the same name returned.
		// Unless it is empty (the other family alone answered: this one may
		// have failed) or was cut at MaxAnswerAddrs (the family's own
		// answer may hold more).
		if s := c.find(0, name); s != nil {
			if ip := s.e.Load(); ip.err == nil && now < ip.expires && !ip.truncated && ip.count(n) > 0 {
				s.touch()
				return ip, n, c.countHit(), nil
			}
		}
	}
	if a, err := parseLiteral(host); err == nil {
		if (n == 1 && !a.Unmap().Is4()) || (n == 2 && a.Is4()) {
			return nil, 0, 0, &net.DNSError{Err: "dnscache: no suitable address for network " + network, Name: host}
		}
		return &entry{addrs: []netip.Addr{a}}, famAll, 0, nil
	}
	r := rand.Uint32()
	if e != nil && e.err == nil && now < e.staleUntil {
		return c.serveStale(ctx, n, name, host, e, now, r)
	}
	c.misses.Add(1)
	// A caller whose context never ends (Background, as net.Dialer.Dial
	// gives), or whose source answers without waiting (Static), cannot
	// give up before the lookup ends: a lookup it starts runs in its own
	// goroutine rather than in a new one that it would wait for. Callers
	// that join it wait on the flight as they would for any lookup, and
	// Close ends it as any other.
	j := joinWait
	if c.instant || ctx.Done() == nil {
		j = joinRun
	}
	f, started, err := c.flight(ctx, n, name, host, j)
	if err != nil {
		return nil, 0, 0, err
	}
	if started && j == joinRun {
		c.run(key{n, name}, f)
		return c.result(f, r, host)
	}
	select {
	case <-f.done:
		return c.result(f, r, host)
	case <-ctx.Done():
		return nil, 0, 0, ctxError(ctx, host)
	}
}

// parseLiteral is netip.ParseAddr for host if host may be an IP literal
// (IPv6 has a colon, IPv4 only digits and dots); it spares names the error
// ParseAddr allocates.
func parseLiteral(host string) (netip.Addr, error) {
	if strings.IndexByte(host, ':') < 0 && strings.Trim(host, "0123456789.") != "" {
		return netip.Addr{}, errNotLiteral
	}
	return netip.ParseAddr(host)
}

var errNotLiteral = errors.New("dnscache: not an IP literal")

// canonical returns the name host is cached and looked up under: ASCII
// lower case (DNS names are case-insensitive, RFC 4343), and without a
// final dot when the source gives "name." and "name" the same meaning (a
// stub source with no search list). It allocates only for a name with an
// upper-case letter.
func (c *Cache) canonical(host string) string {
	if c.foldDot && len(host) > 1 && host[len(host)-1] == '.' && host[len(host)-2] != '.' {
		host = host[:len(host)-1]
	}
	for i := 0; i < len(host); i++ {
		if 'A' <= host[i] && host[i] <= 'Z' {
			b := []byte(host)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return host
}

// serveStale handles an expired entry still inside its stale window: start
// (or join) a refresh, wait for it at most StaleAnswerTimeout, and fall back
// to the stale answer when it fails or is late (RFC 8767), or when every
// lookup slot is taken.
func (c *Cache) serveStale(ctx context.Context, n int, name, host string, e *entry, now int64, r uint32) (*entry, int, uint32, error) {
	if now >= e.retryAt {
		if f, _, err := c.flight(ctx, n, name, host, joinRefresh); err == nil {
			t := time.NewTimer(c.cfg.staleTimeout)
			defer t.Stop()
			select {
			case <-f.done:
				if f.e != nil {
					c.misses.Add(1)
					return c.result(f, r, host)
				}
			case <-t.C:
			case <-ctx.Done():
				return nil, 0, 0, ctxError(ctx, host)
			}
		}
	}
	c.staleServed.Add(1)
	return e, famAll, r, nil
}

// result is what a flight answers a caller that asked for host.
func (c *Cache) result(f *flight, r uint32, host string) (*entry, int, uint32, error) {
	switch {
	case f.err != nil:
		var de *net.DNSError
		if errors.As(f.err, &de) { // every waiter gets its own copy
			cp := *de
			cp.Name = host
			return nil, 0, 0, &cp
		}
		return nil, 0, 0, f.err
	case f.e.err != nil:
		return nil, 0, 0, f.e.negative(host)
	}
	return f.e, famAll, r, nil
}

// negative returns a copy of a negative entry's error naming host, so that
// callers can keep or change it.
func (e *entry) negative(host string) error {
	de := *e.err
	de.Name = host
	return &de
}

func ctxError(ctx context.Context, host string) error {
	err := ctx.Err()
	return &net.DNSError{
		Err:       "dnscache: " + err.Error(),
		Name:      host,
		IsTimeout: errors.Is(err, context.DeadlineExceeded),
		UnwrapErr: err,
	}
}

func closedError(host string) error {
	return &net.DNSError{Err: ErrClosed.Error(), Name: host, UnwrapErr: ErrClosed}
}

// find returns the slot of host in the table of network n, or nil.
func (c *Cache) find(n int, host string) *slot {
	return c.idx[n].t.Load().find(c.hashName(host), host)
}

// load returns the entry of host for network n, or nil.
func (c *Cache) load(n int, host string) *entry {
	if s := c.find(n, host); s != nil {
		return s.e.Load()
	}
	return nil
}

// prefetch starts a background refresh of a hot entry, once per entry. When
// every lookup slot is taken it starts nothing, and a later hit tries again.
func (c *Cache) prefetch(n int, name string, e *entry) {
	if !c.cfg.prefetch || !e.prefetching.CompareAndSwap(false, true) {
		return
	}
	_, started, err := c.flight(c.ctx, n, name, name, joinPrefetch)
	switch {
	case errors.Is(err, errBusy):
		e.prefetching.Store(false)
	case err == nil && started:
		c.prefetches.Add(1)
	}
}

// flight joins the lookup in progress for (n, name) or starts one. Starting
// one takes a lookup slot (MaxLookups): when none is free, flight returns
// errBusy, or for joinWait and joinRun waits for one for as long as ctx
// allows. A lookup started for joinRun is the caller's to run (Cache.run)
// at once; any other runs in a goroutine of its own. Except for
// joinPrefetch, the caller may wait on f.done (unless it runs the lookup
// itself). Errors name host, the name the caller gave.
func (c *Cache) flight(ctx context.Context, n int, name, host string, j join) (f *flight, started bool, err error) {
	k := key{n, name}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, closedError(host)
	}
	if f := c.flights[k]; f != nil {
		c.joinLocked(f, j)
		c.mu.Unlock()
		return f, false, nil
	}
	select {
	case c.sem <- struct{}{}:
		defer c.mu.Unlock()
		return c.startLocked(k, host, j), true, nil
	default:
	}
	c.mu.Unlock()
	if j == joinPrefetch || j == joinRefresh {
		return nil, false, errBusy
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctxError(ctx, host)
	case <-c.ctx.Done():
		return nil, false, closedError(host)
	}
	// A slot is ours. While we waited, the cache may have closed, another
	// caller may have started this lookup, or one may have finished it.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		<-c.sem
		return nil, false, closedError(host)
	}
	if f := c.flights[k]; f != nil {
		<-c.sem
		c.joinLocked(f, j)
		return f, false, nil
	}
	if e := c.load(n, name); e != nil && c.now() < e.expires {
		<-c.sem
		f := &flight{done: make(chan struct{}), e: e}
		close(f.done)
		return f, false, nil
	}
	return c.startLocked(k, host, j), true, nil
}

// joinLocked readies f, a lookup in progress, for a caller joining it as j.
// c.mu must be held.
func (c *Cache) joinLocked(f *flight, j join) {
	if j != joinPrefetch && f.done == nil {
		f.done = make(chan struct{})
	}
}

// startLocked starts the lookup for k, asking the source for host (k.host
// as the caller spelt it: a server ignores case, RFC 4343, and net sends
// names as given too), in a goroutine of its own unless j is joinRun, when
// the caller runs it. The lookup holds a slot of c.sem and gives it back
// when it ends. c.mu must be held.
func (c *Cache) startLocked(k key, host string, j join) *flight {
	f := &flight{host: host, gen: c.gen}
	c.flights[k] = f
	c.lookups.Add(1)
	c.wg.Add(1)
	if j != joinRun {
		c.joinLocked(f, j)
		go c.run(k, f)
	}
	return f
}

// run performs the lookup f at the source, detached from every caller's
// context (under f.ctx: LookupTimeout, and Close), and stores what it
// learnt: a good answer replaces the entry; a negative answer too (it is
// authoritative); a transient failure never replaces anything. A good
// answer with a TTL of 0 is for the callers waiting now only (RFC 1035
// §3.2.1): it is not stored, and the older answer it replaces is dropped,
// so that neither is served later, not even stale. It sets f.e or f.err,
// then closes f.done if anyone waits on it.
func (c *Cache) run(k key, f *flight) {
	defer c.wg.Done()
	defer func() { <-c.sem }()
	f.ctx.start(c.ctx, c.cfg.lookupTimeout)
	addrs, ttl, err := c.src.lookup(&f.ctx, networks[k.net], f.host)
	f.ctx.end()
	now := c.now()
	gen := f.gen

	var e *entry
	switch {
	case err == nil && len(addrs) > 0:
		e = c.positive(addrs, ttl, now)
	case err == nil:
		e = c.negativeEntry(k.host, nil, ttl, now)
	default:
		// Declared here: errors.As makes it escape, and a good answer
		// need not pay for that allocation.
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			e = c.negativeEntry(k.host, de, ttl, now)
			break
		}
		c.lookupErrors.Add(1)
		f.err = dnsError(k.host, "", err)
	}

	c.mu.Lock()
	if gen == c.gen && !c.closed && len(k.host) <= maxNameLen {
		switch old := c.load(k.net, k.host); {
		case e != nil && e.expires > now:
			c.storeLocked(k, e)
		case e != nil && e.err == nil && old != nil:
			c.deleteLocked(c.find(k.net, k.host))
		case e == nil && old != nil && old.err == nil:
			c.storeLocked(k, old.retryLater(now+int64(c.cfg.minRefresh)))
		}
	}
	delete(c.flights, k)
	f.e = e
	done := f.done // nobody can join f any more: it is out of c.flights
	c.mu.Unlock()
	if done != nil {
		close(done)
	}
}

func (c *Cache) positive(addrs []netip.Addr, ttl time.Duration, now int64) *entry {
	ttl = min(max(ttl, c.cfg.minTTL), c.cfg.maxTTL)
	e := &entry{expires: now + int64(ttl)}
	e.addrs, e.n4, e.truncated = keepAddrs(e.one[:0], addrs, c.cfg.maxAnswerAddrs)
	e.staleUntil = e.expires
	if c.cfg.maxStale > 0 && ttl > 0 {
		e.staleUntil += int64(c.cfg.maxStale)
	}
	// Prefetch in the last 10–20% of the TTL, jittered so that entries
	// fetched together do not refresh together, never sooner than
	// MinRefresh after this fetch.
	window := int64(ttl / 10)
	var jitter int64
	if window > 0 {
		jitter = rand.Int64N(window)
	}
	e.prefetchAt = max(e.expires-window-jitter, now+int64(c.cfg.minRefresh))
	if !c.cfg.prefetch {
		e.prefetchAt = math.MaxInt64 // keeps the hit path from even asking
	}
	return e
}

// keepAddrs copies at most limit addresses of an answer into buf when they
// fit, else into a slice of their own (so that a large answer's array is
// not kept alive), in the
// answer's order: the first ones of each family, IPv4 and IPv6 sharing the
// limit evenly when both have more than their half (an answer of thousands
// of A records does not crowd out the AAAA ones). It returns how many of
// the kept ones are IPv4 and whether any were left out.
func keepAddrs(buf, addrs []netip.Addr, limit int) (kept []netip.Addr, n4 int, truncated bool) {
	for _, a := range addrs {
		if a.Is4() {
			n4++
		}
	}
	k4, k6 := n4, len(addrs)-n4
	if len(addrs) > limit {
		k4 = min(n4, max(limit-k6, limit/2))
		k6 = min(k6, limit-k4)
		truncated = true
	}
	n4 = k4
	kept = buf[:0]
	if cap(buf) < k4+k6 {
		kept = make([]netip.Addr, 0, k4+k6)
	}
	for _, a := range addrs {
		switch {
		case a.Is4() && k4 > 0:
			kept = append(kept, a)
			k4--
		case !a.Is4() && k6 > 0:
			kept = append(kept, a)
			k6--
		}
	}
	return kept, n4, truncated
}

func (c *Cache) negativeEntry(host string, de *net.DNSError, ttl time.Duration, now int64) *entry {
	neg := &net.DNSError{Err: "dnscache: no such host", Name: host, IsNotFound: true}
	if de != nil {
		neg.Server = de.Server
		if de.Err != "" { // the source's reason: NXDOMAIN, not a valid domain name, .onion, the hosts file
			neg.Err = de.Err
		}
	}
	t := c.cfg.negativeTTL
	if ttl >= 0 && t >= 0 {
		t = min(t, ttl)
	}
	e := &entry{err: neg, expires: now + max(int64(t), 0)}
	e.staleUntil = e.expires
	e.prefetchAt = e.expires
	return e
}

// retryLater copies a positive entry after a failed refresh: still served
// until it goes stale, with no new query before at.
func (e *entry) retryLater(at int64) *entry {
	return &entry{
		addrs:      e.addrs,
		n4:         e.n4,
		truncated:  e.truncated,
		expires:    e.expires,
		staleUntil: e.staleUntil,
		prefetchAt: max(e.prefetchAt, at),
		retryAt:    at,
	}
}

// size is what e, cached under host, counts against MaxBytes.
func (e *entry) size(host string) int64 { return entryBytes(host, len(e.addrs)) }

// storeLocked puts e in the table and evicts when the cache is over one of
// its bounds. c.mu must be held.
func (c *Cache) storeLocked(k key, e *entry) {
	x := &c.idx[k.net]
	h := c.hashName(k.host)
	s := x.t.Load().find(h, k.host)
	if s != nil {
		c.bytes += e.size(k.host) - s.e.Load().size(k.host)
		s.e.Store(e)
	} else {
		// A copy of the name: the caller's may be cut out of a larger
		// string (a URL, a request buffer) that MaxBytes does not count.
		s = &slot{host: strings.Clone(k.host), hash: h, net: k.net}
		s.e.Store(e)
		x.insert(s)
		c.ringAdd(s)
		c.count++
		c.bytes += e.size(k.host)
	}
	if c.count > c.cfg.maxEntries || c.bytes > c.cfg.maxBytes {
		c.evictLocked(s)
	}
}

// deleteLocked removes s (nil: nothing) from its table and the ring.
// c.mu must be held.
func (c *Cache) deleteLocked(s *slot) {
	if s == nil {
		return
	}
	c.idx[s.net].remove(s)
	c.ringRemove(s)
	c.count--
	c.bytes -= s.e.Load().size(s.host)
}

// evictLocked removes entries, never keep, until the cache is within both
// bounds again, one at a time with the CLOCK algorithm (an approximation
// of least recently used): the hand goes round the ring of entries, in
// insertion order, and drops the first that cannot be served any more or
// has not been used since the hand last passed it; a used one has its mark
// cleared and is passed over (a second chance). Each step either drops an
// entry or clears a mark that a hit set, so an eviction costs O(1)
// amortised, and a hit only sets a mark that is not set yet.
// c.mu must be held.
func (c *Cache) evictLocked(keep *slot) {
	now := c.now()
	for c.count > c.cfg.maxEntries || c.bytes > c.cfg.maxBytes {
		// Two turns clear every mark; a third would find keep alone.
		for steps := 2*c.count + 1; ; steps-- {
			s := c.hand
			if steps == 0 || s == nil {
				return // keep alone is over a bound: New makes sure it cannot be
			}
			c.hand = s.next
			if s == keep {
				continue
			}
			if now >= s.e.Load().staleUntil {
				c.deleteLocked(s)
				c.expired.Add(1)
				break
			}
			if s.used.Load() {
				s.used.Store(false)
				continue
			}
			c.deleteLocked(s)
			c.evictions.Add(1)
			break
		}
	}
}

// sweep drops entries that can no longer be served: positive ones past
// their stale window, negative ones past their TTL. It looks at every
// entry when there are at most sweepBatch of them, else at the larger of
// sweepBatch and 1/sweepShare of them, going on from where the last sweep
// stopped, so that one sweep holds the lock for a bounded time.
func (c *Cache) sweep() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	budget := c.count
	if budget > sweepBatch {
		budget = max(sweepBatch, c.count/sweepShare)
	}
	s := c.sweepAt
	if s == nil {
		s = c.hand
	}
	for ; budget > 0 && s != nil && c.count > 0; budget-- {
		next := s.next
		if now >= s.e.Load().staleUntil {
			c.deleteLocked(s)
			c.expired.Add(1)
			if c.count == 0 {
				next = nil
			}
		}
		s = next
	}
	c.sweepAt = s
}

// Invalidate drops every cached answer for host (all networks; host is
// normalised as lookups normalise it). Lookups in progress still answer
// their callers but are not stored.
func (c *Cache) Invalidate(host string) {
	name := c.canonical(host)
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := range c.idx {
		c.deleteLocked(c.find(n, name))
	}
	c.gen++
}

// Flush drops every cached answer. Lookups in progress still answer their
// callers but are not stored.
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := range c.idx {
		c.idx[n].reset()
	}
	c.hand, c.sweepAt = nil, nil
	c.count, c.bytes = 0, 0
	c.gen++
}

// Close stops the cache's goroutines: lookups in progress are cancelled
// (their callers get errors) and Close waits for them to return; callers
// waiting for a lookup slot get an error wrapping [ErrClosed]. Afterwards,
// fresh cached answers may still be served, but any lookup that needs the
// network fails with an error wrapping [ErrClosed]. Close is idempotent.
//
// Close always returns nil: it has the signature of [io.Closer] so that a
// Cache closes as every nettune type does. It never waits on callers (their
// lookups are cancelled, not awaited), so there is no Shutdown(ctx); and no
// error reaches it, since each lookup's error goes to its callers.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// Stats are counters since [New]. Each field is read atomically, the set as
// a whole is not a snapshot. The words are those of pool.Stats where the
// idea is the same: Hits and Misses; Lookups, LookupErrors and InFlight as
// pool's Dials, DialErrors and Dialing (started, failed, in progress now).
type Stats struct {
	Hits         uint64 // answers served fresh from the cache
	Misses       uint64 // lookups answered by waiting for the source: nothing cached, or an expired answer refreshed in time
	StaleServed  uint64 // expired answers served because a refresh failed or was late
	NegativeHits uint64 // cached "no such host" answers served
	Prefetches   uint64 // background refreshes started by hits near expiry
	Evictions    uint64 // entries dropped to hold MaxEntries and MaxBytes
	Expired      uint64 // entries dropped because they could no longer be served (by the sweeper, or by eviction, which drops those first)
	Lookups      uint64 // lookups at the source started
	LookupErrors uint64 // of those, ended by a transient failure (a timeout, SERVFAIL, REFUSED); "no such host" is an answer
	InFlight     int    // lookups at the source in progress now (at most MaxLookups)
	Entries      int    // cached answers now
	Bytes        int64  // what the cached answers count against MaxBytes now
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		Misses:       c.misses.Load(),
		StaleServed:  c.staleServed.Load(),
		NegativeHits: c.negativeHits.Load(),
		Prefetches:   c.prefetches.Load(),
		Evictions:    c.evictions.Load(),
		Expired:      c.expired.Load(),
		Lookups:      c.lookups.Load(),
		LookupErrors: c.lookupErrors.Load(),
	}
	s.Hits = c.hits.Load()
	c.mu.Lock()
	s.InFlight, s.Entries, s.Bytes = len(c.flights), c.count, c.bytes
	c.mu.Unlock()
	return s
}
