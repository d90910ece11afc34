// Package dnscache is a DNS cache to put in front of a dialer: answers kept
// for their real TTLs, hits served without locks (and, through
// [Cache.AppendNetIP], without allocations), memory and lookups in flight
// bounded whatever the zones and callers do, and a cache that keeps a
// service connecting while its DNS servers fail.
//
// # Lookups
//
// [Cache.LookupNetIP] has the signature of [net.Resolver.LookupNetIP], so a
// [*Cache] drops in wherever a resolver with that method is accepted (the
// nettune dialer takes one); [Cache.LookupHost] is the string form. Both
// return copies. [Cache.AppendNetIP] appends into a caller's buffer and is the
// allocation-free hot path. Addresses come rotated, starting at a different
// one from call to call, so that connections spread over all of a service's
// addresses.
//
// Concurrent lookups of the same host and network share one query per record
// type, per cache: there is no process-wide state, so two caches with
// different upstreams never see each other's answers. The query runs detached
// from the callers' contexts: a caller that gives up stops waiting, the
// others still get the answer. At most [MaxLookups] queries run at once; a
// caller that needs another waits, bounded by its context.
//
// # Names
//
// Names are case-insensitive (RFC 4343): "WEB.Example.Test" and
// "web.example.test" are one entry and one query, sent as the first caller
// spelt it. With [Static], and with [ResolvConf] and no search list,
// "web.example.test." and "web.example.test" are one entry too; with a
// search list, or with [System] (whose search list the cache cannot see),
// the final dot keeps its meaning (an absolute name, never searched) and
// they are two. An "ip4" or "ip6" lookup is answered, without a query, by
// the IPv4 or IPv6 part of a fresh "ip" answer for the name when that part
// is not empty and was not cut at [MaxAnswerAddrs]. Errors name the host as
// the caller gave it.
//
// # Sources and TTLs
//
// By default the cache asks a [net.Resolver] ([System]) and keeps answers for
// a configured [TTL], since net does not report TTLs. With [ResolvConf] it
// sends its own queries to the nameservers of a resolv.conf file and keeps
// each answer for the smallest TTL along its CNAME chain. With [Static] it
// answers from a map, for [TTL], without a DNS server: to try the cache, and
// in tests. Either way TTLs are clamped by [MinTTL] and [MaxTTL].
//
// A refused option, or a file an option names that cannot be read, makes
// [New] return an [*OptionError] naming the option.
//
// # Failures
//
// "No such host" (NXDOMAIN, or no record of the asked type) is cached for
// [NegativeTTL] or the SOA's negative TTL (RFC 2308), and returned as a
// [*net.DNSError] with IsNotFound set. Timeouts, SERVFAIL and REFUSED are
// transient: never cached, never mistaken for NXDOMAIN, and they never
// replace a good answer. When refreshing an expired answer fails, or takes
// longer than [StaleAnswerTimeout], the expired answer is served for up to
// [MaxStale] past its expiry (RFC 8767), and retried at most every
// [MinRefresh].
//
// # Prefetch, bounds and time
//
// A hit in the last 10–20% of an entry's TTL refreshes it in the background
// ([Prefetch]), so a name in use never expires; names nobody looks up age out
// and a sweeper drops them. An answer with a TTL of 0 is used only for the
// lookup that fetched it, never cached, not even for serve-stale.
//
// [MaxAnswerAddrs] bounds the addresses kept from one answer (64 by
// default: the first ones, as the source ordered them), [MaxEntries] the
// number of entries and [MaxBytes] their heap (16 MiB by default; each
// entry counts 320 bytes plus its name plus 32 bytes per address, more than
// it holds, so at most 2,622 bytes with the defaults), evicting about the
// least recently used entries, one per insert over a bound (the CLOCK
// algorithm). Hits probe a hash table without a lock; adding, refreshing,
// evicting or dropping a host costs the same (O(1) amortised) whether the
// cache holds ten names or millions.
//
// Every hit reads the monotonic clock (20–40 ns) and no wall clock, so an
// answer is never served as fresh past its TTL, even right after the process
// was stopped or throttled (a clock kept by a background goroutine would lag
// by the length of the stall). Tests inject a [Clock] (and a [Static]
// source). [Cache.Close] stops every goroutine the cache started.
//
// # Example
//
// A [Static] source needs no DNS server; a program would give
// ResolvConf("") or [System] instead:
//
//	c, err := dnscache.New(
//		dnscache.Static(map[string][]netip.Addr{"api.test": {netip.MustParseAddr("127.0.0.1")}}),
//		dnscache.MaxStale(10*time.Minute),
//	)
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	addrs, err := c.LookupNetIP(ctx, "ip", "api.test") // [127.0.0.1]
package dnscache
