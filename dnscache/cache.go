package dnscache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrClosed is wrapped by the error of a lookup that needs the network after
// [Cache.Close].
var ErrClosed = errors.New("dnscache: closed")

// tick is the resolution of the coarse clock the hit path reads, and how
// often the background goroutine wakes up.
const tick = 10 * time.Millisecond

// hitShardBits sets the number of hit counters (1<<hitShardBits).
const hitShardBits = 4

// sweepTicks is how many ticks pass between two sweeps of unusable entries.
const sweepTicks = 100

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
	// tables maps host to slot, one table per network. A table is
	// copy-on-write: readers load it with one atomic read and never lock;
	// writers (under mu) store a refreshed answer into the existing slot and
	// copy the map only to add or remove hosts, which a service with a
	// steady set of upstreams rarely does.
	tables [len(networks)]atomic.Pointer[map[string]*slot]

	cfg    config
	src    source
	start  time.Time    // the zero of the clock readings below
	coarse atomic.Int64 // nanoseconds since start, advanced every tick
	clock  func() int64 // the injected Clock as nanoseconds since start, or nil

	hits [1 << hitShardBits]paddedCounter // sharded: parallel hits rarely share a line
	misses, staleServed, negativeHits, prefetches,
	evictions, expired, errorCount, lookups atomic.Uint64

	ctx    context.Context // cancelled by Close: ends lookups and the ticker
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the cache started

	mu      sync.Mutex // guards flights, count, gen, closed and every write to tables
	flights map[key]*flight
	count   int    // entries in tables
	gen     uint64 // bumped by Invalidate and Flush: older lookups are not stored
	closed  bool
}

type paddedCounter struct {
	n atomic.Uint64
	_ [56]byte
}

// slot holds the current entry of one (host, network); a refresh swaps the
// entry without copying the table.
type slot struct{ e atomic.Pointer[entry] }

type key struct {
	net  int
	host string
}

// entry is an immutable cached answer, replaced whole on refresh; only the
// two atomics change in place. Times are clock readings (see Cache.now).
type entry struct {
	addrs      []netip.Addr  // never handed out: callers get copies
	strs       []string      // addrs as strings, for LookupHost (strings are immutable: shared)
	err        *net.DNSError // non-nil for a negative answer
	expires    int64         // fresh before this
	staleUntil int64         // servable, when a refresh fails, before this
	prefetchAt int64         // a hit at or after this starts a prefetch
	retryAt    int64         // after a failed refresh: no new query before this

	lastUsed    atomic.Int64
	prefetching atomic.Bool
}

// flight is one lookup in progress; e or err is set before done is closed.
type flight struct {
	done chan struct{}
	e    *entry
	err  error
}

// New returns a cache configured by opts. It reads the resolv.conf file when
// [ResolvConf] is given and starts one background goroutine (the coarse
// clock and the sweeper), which [Cache.Close] stops.
func New(opts ...Option) (*Cache, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("dnscache: nil Option")
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.minTTL > cfg.maxTTL {
		return nil, fmt.Errorf("dnscache: MinTTL(%v) is above MaxTTL(%v)", cfg.minTTL, cfg.maxTTL)
	}
	var src source = systemSource{r: cfg.resolver, ttl: cfg.ttl}
	if cfg.useStub {
		rc, err := readResolvConf(cfg.resolvConf)
		if err != nil {
			return nil, err
		}
		src = &stubSource{conf: rc}
	}
	c := &Cache{cfg: cfg, src: src, flights: make(map[key]*flight)}
	for n := range c.tables {
		c.tables[n].Store(&map[string]*slot{})
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

// now reads the cache's clock: nanoseconds since New, from the coarse clock
// (one atomic load, at most one tick behind) or the injected one.
func (c *Cache) now() int64 {
	if c.clock != nil {
		return c.clock()
	}
	return c.coarse.Load()
}

func (c *Cache) background() {
	defer c.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.coarse.Store(int64(time.Since(c.start)))
		if i%sweepTicks == 0 {
			c.sweep()
		}
	}
}

// LookupNetIP looks host up for network "ip", "ip4" or "ip6", like
// [net.Resolver.LookupNetIP], and returns a new slice the caller owns, with
// the addresses rotated (see [Cache.AppendNetIP]). IP literals are returned
// as they are, without caching. Errors are *[net.DNSError]: IsNotFound for
// "no such host" (fresh or cached), IsTimeout / IsTemporary for failures; a
// cancelled ctx gives an error that unwraps to ctx.Err().
//
// ctx bounds only this caller's wait: the lookup itself is shared with every
// concurrent caller for the same host and network and runs on, bounded by
// [LookupTimeout], when this caller gives up.
func (c *Cache) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	e, r, err := c.get(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return e.appendRotated(make([]netip.Addr, 0, len(e.addrs)), r), nil
}

// AppendNetIP is [Cache.LookupNetIP] that appends the addresses to dst and
// returns the extended slice. When the answer is cached and fresh and dst has
// room, it allocates nothing and reads no wall clock: this is the hot path.
//
// The addresses come rotated, starting at a different one from call to call
// (evenly over successive calls), so that connections opened one after the
// other spread over all of a service's addresses; the order is otherwise
// the order of the answer.
func (c *Cache) AppendNetIP(ctx context.Context, dst []netip.Addr, network, host string) ([]netip.Addr, error) {
	e, r, err := c.get(ctx, network, host)
	if err != nil {
		return dst, err
	}
	return e.appendRotated(dst, r), nil
}

// LookupHost looks host up for network "ip" like [net.Resolver.LookupHost]
// and returns the addresses as strings, rotated as [Cache.AppendNetIP] does.
func (c *Cache) LookupHost(ctx context.Context, host string) ([]string, error) {
	e, r, err := c.get(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if e.strs == nil { // an IP literal
		return []string{e.addrs[0].String()}, nil
	}
	n := len(e.strs)
	i := int(uint64(r) * uint64(n) >> 32)
	out := make([]string, 0, n)
	out = append(out, e.strs[i:]...)
	return append(out, e.strs[:i]...), nil
}

func (e *entry) appendRotated(dst []netip.Addr, r uint32) []netip.Addr {
	n := len(e.addrs)
	if n == 1 {
		return append(dst, e.addrs[0])
	}
	i := int(uint64(r) * uint64(n) >> 32) // r mod n, without a division
	// Element by element: for two or three addresses this beats the
	// typed bulk copy append(dst, addrs...) would do.
	for _, a := range e.addrs[i:] {
		dst = append(dst, a)
	}
	for _, a := range e.addrs[:i] {
		dst = append(dst, a)
	}
	return dst
}

// countHit counts a hit and returns the number that rotates the answer.
// The counter is sharded so that parallel hits do not fight over one cache
// line. The shard is picked from the address of the calling goroutine's
// stack, which differs between goroutines and costs nothing to read (a
// random number costs about 4 ns, a fifth of a hit); it is only a hint, so
// a stack that moves does no harm. The count, multiplied by the golden
// ratio, is a Weyl sequence: successive hits of one goroutine walk every
// rotation evenly.
func (c *Cache) countHit() uint32 {
	var here byte
	// Stacks are at least 2 KiB: drop the offset inside one, then hash.
	shard := uint64(uintptr(unsafe.Pointer(&here))>>11) * 0x9e3779b97f4a7c15 >> (64 - hitShardBits)
	n := c.hits[shard].n.Add(1)
	return uint32(n) * 0x9e3779b9
}

// get returns a positive entry for (network, host) and a random number for
// rotation. The fast path is a fresh entry: one map load, one atomic clock
// read, no allocation.
func (c *Cache) get(ctx context.Context, network, host string) (*entry, uint32, error) {
	n := netIndex(network)
	if n >= 0 {
		if s := (*c.tables[n].Load())[host]; s != nil {
			e := s.e.Load()
			now := c.now()
			if now < e.expires && e.err == nil {
				if e.lastUsed.Load() != now {
					e.lastUsed.Store(now)
				}
				if now >= e.prefetchAt {
					c.prefetch(n, host, e)
				}
				return e, c.countHit(), nil
			}
		}
	}
	return c.getSlow(ctx, n, network, host)
}

func (c *Cache) getSlow(ctx context.Context, n int, network, host string) (*entry, uint32, error) {
	if n < 0 {
		return nil, 0, &net.DNSError{Err: "dnscache: unknown network " + network, Name: host, UnwrapErr: net.UnknownNetworkError(network)}
	}
	if host == "" {
		return nil, 0, &net.DNSError{Err: "dnscache: no such host", Name: host, IsNotFound: true}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if (n == 1 && !a.Unmap().Is4()) || (n == 2 && a.Is4()) {
			return nil, 0, &net.DNSError{Err: "dnscache: no suitable address for network " + network, Name: host}
		}
		return &entry{addrs: []netip.Addr{a}}, 0, nil
	}
	r := rand.Uint32()
	now := c.now()
	e := c.load(n, host)
	switch {
	case e != nil && now < e.expires && e.err != nil:
		c.negativeHits.Add(1)
		return nil, 0, e.negative()
	case e != nil && now < e.expires:
		return e, c.countHit(), nil
	case e != nil && e.err == nil && now < e.staleUntil:
		return c.serveStale(ctx, n, host, e, now, r)
	}
	c.misses.Add(1)
	f, _, err := c.flight(n, host)
	if err != nil {
		return nil, 0, err
	}
	select {
	case <-f.done:
		return c.result(f, r)
	case <-ctx.Done():
		return nil, 0, ctxError(ctx, host)
	}
}

// serveStale handles an expired entry still inside its stale window: start
// (or join) a refresh, wait for it at most StaleAnswerTimeout, and fall back
// to the stale answer when it fails or is late (RFC 8767).
func (c *Cache) serveStale(ctx context.Context, n int, host string, e *entry, now int64, r uint32) (*entry, uint32, error) {
	if now >= e.retryAt {
		if f, _, err := c.flight(n, host); err == nil {
			t := time.NewTimer(c.cfg.staleTimeout)
			defer t.Stop()
			select {
			case <-f.done:
				if f.e != nil {
					c.misses.Add(1)
					return c.result(f, r)
				}
			case <-t.C:
			case <-ctx.Done():
				return nil, 0, ctxError(ctx, host)
			}
		}
	}
	c.staleServed.Add(1)
	return e, r, nil
}

func (c *Cache) result(f *flight, r uint32) (*entry, uint32, error) {
	switch {
	case f.err != nil:
		var de *net.DNSError
		if errors.As(f.err, &de) { // every waiter gets its own copy
			cp := *de
			return nil, 0, &cp
		}
		return nil, 0, f.err
	case f.e.err != nil:
		return nil, 0, f.e.negative()
	}
	return f.e, r, nil
}

// negative returns a copy of a negative entry's error, so that callers can
// keep or change it.
func (e *entry) negative() error {
	de := *e.err
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

func (c *Cache) load(n int, host string) *entry {
	if s := (*c.tables[n].Load())[host]; s != nil {
		return s.e.Load()
	}
	return nil
}

// prefetch starts a background refresh of a hot entry, once per entry.
func (c *Cache) prefetch(n int, host string, e *entry) {
	if !c.cfg.prefetch || !e.prefetching.CompareAndSwap(false, true) {
		return
	}
	if _, started, err := c.flight(n, host); err == nil && started {
		c.prefetches.Add(1)
	}
}

// flight joins the lookup in progress for (n, host) or starts one.
func (c *Cache) flight(n int, host string) (f *flight, started bool, err error) {
	k := key{n, host}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false, &net.DNSError{Err: ErrClosed.Error(), Name: host, UnwrapErr: ErrClosed}
	}
	if f := c.flights[k]; f != nil {
		return f, false, nil
	}
	f = &flight{done: make(chan struct{})}
	c.flights[k] = f
	c.wg.Add(1)
	go c.run(k, f, c.gen)
	return f, true, nil
}

// run performs one lookup at the source, detached from every caller, and
// stores what it learnt: a good answer replaces the entry; a negative answer
// too (it is authoritative); a transient failure never replaces anything.
func (c *Cache) run(k key, f *flight, gen uint64) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.lookupTimeout)
	addrs, ttl, err := c.src.lookup(ctx, networks[k.net], k.host)
	cancel()
	c.lookups.Add(1)
	now := c.now()

	var e *entry
	var de *net.DNSError
	switch {
	case err == nil && len(addrs) > 0:
		e = c.positive(addrs, ttl, now)
	case err == nil, errors.As(err, &de) && de.IsNotFound:
		e = c.negativeEntry(k.host, de, ttl, now)
	default:
		c.errorCount.Add(1)
		f.err = dnsError(k.host, "", err)
	}

	c.mu.Lock()
	if gen == c.gen && !c.closed {
		switch old := c.load(k.net, k.host); {
		case e != nil && (e.err == nil || e.expires > now):
			c.storeLocked(k, e)
		case e == nil && old != nil && old.err == nil:
			c.storeLocked(k, old.retryLater(now+int64(c.cfg.minRefresh)))
		}
	}
	delete(c.flights, k)
	c.mu.Unlock()
	f.e = e
	close(f.done)
}

func (c *Cache) positive(addrs []netip.Addr, ttl time.Duration, now int64) *entry {
	ttl = min(max(ttl, c.cfg.minTTL), c.cfg.maxTTL)
	e := &entry{addrs: addrs, strs: make([]string, len(addrs)), expires: now + int64(ttl)}
	for i, a := range addrs {
		e.strs[i] = a.String()
	}
	e.staleUntil = e.expires
	if c.cfg.maxStale > 0 {
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
	e.lastUsed.Store(now)
	return e
}

func (c *Cache) negativeEntry(host string, de *net.DNSError, ttl time.Duration, now int64) *entry {
	neg := &net.DNSError{Err: "dnscache: no such host", Name: host, IsNotFound: true}
	if de != nil {
		neg.Server = de.Server
	}
	t := c.cfg.negativeTTL
	if ttl >= 0 && t >= 0 {
		t = min(t, ttl)
	}
	e := &entry{err: neg, expires: now + max(int64(t), 0)}
	e.staleUntil = e.expires
	e.prefetchAt = e.expires
	e.lastUsed.Store(now)
	return e
}

// retryLater copies a positive entry after a failed refresh: still served
// until it goes stale, with no new query before at.
func (e *entry) retryLater(at int64) *entry {
	n := &entry{
		addrs:      e.addrs,
		expires:    e.expires,
		staleUntil: e.staleUntil,
		prefetchAt: max(e.prefetchAt, at),
		retryAt:    at,
	}
	n.lastUsed.Store(e.lastUsed.Load())
	return n
}

// storeLocked puts e in the table and evicts when the cache is over its
// bound. c.mu must be held.
func (c *Cache) storeLocked(k key, e *entry) {
	t := *c.tables[k.net].Load()
	if s := t[k.host]; s != nil {
		s.e.Store(e)
		return
	}
	nt := maps.Clone(t)
	s := &slot{}
	s.e.Store(e)
	nt[k.host] = s
	c.tables[k.net].Store(&nt)
	c.count++
	if c.count > c.cfg.maxEntries {
		c.evictLocked(k)
	}
}

// deleteLocked removes hosts from table n with one copy of the table.
// c.mu must be held.
func (c *Cache) deleteLocked(n int, hosts []string) int {
	if len(hosts) == 0 {
		return 0
	}
	nt := maps.Clone(*c.tables[n].Load())
	before := len(nt)
	for _, h := range hosts {
		delete(nt, h)
	}
	c.tables[n].Store(&nt)
	removed := before - len(nt)
	c.count -= removed
	return removed
}

// evictLocked removes the least recently used tenth of the entries (at least
// one), never keep. Sorting the whole cache once per tenth of its size keeps
// the cost per insert at O(log n) while the hit path only stamps lastUsed.
// c.mu must be held.
func (c *Cache) evictLocked(keep key) {
	type victim struct {
		k        key
		lastUsed int64
	}
	all := make([]victim, 0, c.count)
	for n := range c.tables {
		for h, s := range *c.tables[n].Load() {
			if k := (key{n, h}); k != keep {
				all = append(all, victim{k, s.e.Load().lastUsed.Load()})
			}
		}
	}
	slices.SortFunc(all, func(a, b victim) int { return cmp.Compare(a.lastUsed, b.lastUsed) })
	excess := c.count - (c.cfg.maxEntries - c.cfg.maxEntries/10)
	var drop [len(networks)][]string
	for _, v := range all[:min(max(excess, 1), len(all))] {
		drop[v.k.net] = append(drop[v.k.net], v.k.host)
	}
	for n := range drop {
		c.evictions.Add(uint64(c.deleteLocked(n, drop[n])))
	}
}

// sweep drops entries that can no longer be served: positive ones past
// their stale window, negative ones past their TTL.
func (c *Cache) sweep() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := range c.tables {
		var drop []string
		for h, s := range *c.tables[n].Load() {
			if now >= s.e.Load().staleUntil {
				drop = append(drop, h)
			}
		}
		c.expired.Add(uint64(c.deleteLocked(n, drop)))
	}
}

// Invalidate drops every cached answer for host (all networks). Lookups in
// progress still answer their callers but are not stored.
func (c *Cache) Invalidate(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := range c.tables {
		if _, ok := (*c.tables[n].Load())[host]; ok {
			c.deleteLocked(n, []string{host})
		}
	}
	c.gen++
}

// Flush drops every cached answer. Lookups in progress still answer their
// callers but are not stored.
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := range c.tables {
		c.tables[n].Store(&map[string]*slot{})
	}
	c.count = 0
	c.gen++
}

// Close stops the cache's goroutines: lookups in progress are cancelled
// (their callers get errors) and Close waits for them to return. Afterwards,
// fresh cached answers may still be served, but any lookup that needs the
// network fails with an error wrapping [ErrClosed]. Close is idempotent and
// always returns nil.
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
// a whole is not a snapshot.
type Stats struct {
	Hits         uint64 // answers served fresh from the cache
	Misses       uint64 // lookups answered by waiting for the source: nothing cached, or an expired answer refreshed in time
	StaleServed  uint64 // expired answers served because a refresh failed or was late
	NegativeHits uint64 // cached "no such host" answers served
	Prefetches   uint64 // background refreshes started by hits near expiry
	Evictions    uint64 // entries dropped to hold MaxEntries
	Expired      uint64 // entries dropped by the sweeper, no longer servable
	Errors       uint64 // lookups at the source that failed transiently
	Lookups      uint64 // lookups at the source that completed, good or bad
	InFlight     int    // lookups at the source in progress now
	Entries      int    // cached answers now
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
		Errors:       c.errorCount.Load(),
		Lookups:      c.lookups.Load(),
	}
	for i := range c.hits {
		s.Hits += c.hits[i].n.Load()
	}
	c.mu.Lock()
	s.InFlight, s.Entries = len(c.flights), c.count
	c.mu.Unlock()
	return s
}
