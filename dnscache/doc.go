// Package dnscache is a DNS cache to put in front of a dialer: answers kept
// for their real TTLs, hits served without locks or clock reads (and, through
// [Cache.AppendNetIP], without allocations), and a cache that keeps a service
// connecting while its DNS servers fail.
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
// others still get the answer.
//
// # Sources and TTLs
//
// By default the cache asks a [net.Resolver] ([System]) and keeps answers for
// a configured [TTL], since net does not report TTLs. With [ResolvConf] it
// sends its own queries to the nameservers of a resolv.conf file and keeps
// each answer for the smallest TTL along its CNAME chain. Either way TTLs are
// clamped by [MinTTL] and [MaxTTL].
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
// and a sweeper drops them. [MaxEntries] bounds the cache, evicting the least
// recently used entries. The tables are copy-on-write: a refresh swaps one
// entry, but adding or dropping a host copies its table, which suits a
// service's steady set of upstreams rather than millions of distinct names. The hit path reads a coarse clock the cache advances
// every 10 ms instead of calling time.Now; tests inject a [Clock].
// [Cache.Close] stops every goroutine the cache started.
//
// # Example
//
//	c, err := dnscache.New(dnscache.ResolvConf(""), dnscache.MaxStale(10*time.Minute))
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	addrs, err := c.LookupNetIP(ctx, "ip", "api.example.com")
package dnscache
