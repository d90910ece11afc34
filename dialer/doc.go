// Package dialer dials TCP connections with socket options that are set
// correctly and stay set: a [Dialer] built from functional options whose
// [Dialer.DialContext] drops into http.Transport, gRPC's WithContextDialer
// and the dial hooks of database drivers.
//
//	d, err := dialer.New(
//		dialer.Timeout(5*time.Second),
//		dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 10 * time.Second, Count: 3}),
//		dialer.Sockopt(sockopt.UserTimeout(60*time.Second)),
//	)
//	if err != nil {
//		return err // an *OptionError: a bad value or combination, named
//	}
//	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
//
// # Socket options
//
// Every [Sockopt] is set in the socket's Control function, before
// connect, and a failure aborts the dial with a *net.OpError whose chain
// reaches the *sockopt.Error and the errno (errors.Is(err, unix.EPERM) for
// SO_MARK without CAP_NET_ADMIN). Go sets TCP_NODELAY and keepalive itself
// after connect; the Dialer sets those options again after Go did, so
// Sockopt(sockopt.NoDelay(false)) really leaves Nagle's algorithm on.
// [New] checks values and combinations without a system call, so a
// misconfiguration fails at start-up, not on the first request; its errors
// are all an [*OptionError] that names the option, as in
// "dialer.MultipathTCP(true): … (conflicts with
// dialer.Sockopt(TCP_USER_TIMEOUT=1m0s))".
//
// For a socket option this package does not list (IP_FREEBIND,
// TCP_SYNCNT, …), [Control] runs a function of your own on every socket,
// after the Dialer's options; its error fails the dial like theirs. Nothing
// validates or reads back what it sets, unlike the options of sockopt.
// [RunAttempt] runs every connection attempt through a function of your
// own, so that its socket is made where that function calls it: in another
// network namespace, for example.
//
// # Durations
//
// [Timeout] and [FallbackDelay] read as net.Dialer's fields do: 0 means
// the default; a negative FallbackDelay turns it off, and a negative
// Timeout is an error. [KeepAliveConfig] takes net.KeepAliveConfig with
// net's meaning, except that New refuses Enable false with a field set,
// which net would silently turn into keep-alive on with its defaults.
//
// # Multipath TCP
//
// A Multipath TCP socket refuses or silently ignores many TCP options
// (TCP_USER_TIMEOUT, TCP_QUICKACK, TCP_CONGESTION with an unknown name, …;
// sockopt.TCPOnly knows which). The rule: when a Sockopt is TCP-only
// and [MultipathTCP] was not given, the Dialer turns MPTCP off, so that the
// option really applies; with MultipathTCP(true) and a TCP-only option, New
// fails with an [*OptionError] naming the options. Other options are kept
// on an MPTCP socket. The Dialer never hands back a connection on which an
// option it was given silently failed.
//
// # Resolving and Happy Eyeballs
//
// A host name is looked up with the [AddrResolver] given by [Resolver]
// (any type with a LookupNetIP method: *net.Resolver, a DNS cache; one that
// also has AppendNetIP, as dnscache.Cache has, is asked through it and a
// cached answer costs the dial no allocation) or with Go's default
// resolver, and the Dialer dials the addresses itself as
// RFC 8305 says: IPv6 and IPv4 interleaved starting with the family of the
// first address, the next attempt started after the [FallbackDelay]
// (default 300ms) or as soon as the previous one failed, the first
// connection kept and the other attempts cancelled (a connection that
// completes too late is closed). When the dial has a deadline, each
// attempt gets an equal share of the time left, at least two seconds, as
// net.Dialer does. No attempt starts once the context is done or the
// deadline has passed. When no address could be connected to, the error is
// an [*Error] that holds every address exactly once: as the error of its
// attempt if a socket was made for it, or among the addresses not tried,
// with the reason (the context's error). Unlike net.Dialer, which races two serial
// lists (one per family), every address gets the fallback delay, so a
// black-holed address never holds up the next one for more than it.
//
// # Connect times
//
// With [RecordConnectTime], every successful dial reports one duration:
// the connect of the attempt whose connection is returned, from the
// connect system call to the established connection (one clock pair per
// attempt, measured inside the attempt). Name resolution, the fallback
// delay and the losing attempts are left out; a failed dial records
// nothing, so failures never pass for fast successes.
//
// # TCP Fast Open
//
// [FastOpen](true) sets TCP_FASTOPEN_CONNECT (Linux; the host needs bit 1
// of net.ipv4.tcp_fastopen, on by default). Fast Open changes what a
// successful dial means:
//
//   - Once the kernel holds a cookie for the server, connect returns at
//     once without sending anything: the SYN leaves with the first Write.
//     DialContext then "succeeds" before the server has answered, even when
//     nothing listens on the port any more; the error (connection refused,
//     timeout) arrives on the first Read or Write instead. Dial timeouts
//     and the connect time recorded no longer measure the handshake: put
//     deadlines on the first Write and Read.
//   - The data of the first Write travels in the SYN and may be delivered to
//     the server twice (a retransmitted or replayed SYN). Only idempotent
//     first writes are safe: a GET, a handshake hello, never a payment.
//   - Without a cookie (the first connection to a server, or after the
//     server rotated its key), the dial is an ordinary handshake that also
//     asks for a cookie; middleboxes that drop SYN data make the kernel fall
//     back, which costs a retransmit timeout.
//
// # Concurrency
//
// A Dialer is immutable once built and safe for concurrent use.
// [Dialer.NetDialer] returns a fresh *net.Dialer with the same
// configuration for code that needs one.
package dialer
