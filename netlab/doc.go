// Package netlab emulates a network path on one machine: two hosts, each a
// network namespace of its own, joined by a link that adds delay and
// jitter, drops packets at random, limits bandwidth behind a drop-tail
// queue, and can blackhole. Code runs "on" a host with ordinary net,
// net/http, crypto/tls and nettune's dialer and listener, so a test can
// check a service's timeouts, retries and buffer sizes against a path with
// a 100 ms RTT and 1% loss, not only loopback.
//
// It needs no netem qdisc: the kernel only carries packets between each
// namespace and a TUN device; a relay in the calling process reads them
// from one host's device, applies the link's [Profile] and writes them to
// the other's.
//
//	lab, err := netlab.New(netlab.Path(netlab.Profile{Delay: 50 * time.Millisecond, Loss: 0.01}))
//	if err != nil {
//		t.Skip(err) // not Linux, or not root
//	}
//	defer lab.Close()
//	ln, _ := lab.B().Listen("tcp", "198.18.0.2:0") // a server on B
//	go http.Serve(ln, handler)
//	client := &http.Client{Transport: &http.Transport{DialContext: lab.A().DialContext}}
//	resp, err := client.Get("http://" + ln.Addr().String()) // 100 ms RTT, 1% loss
//
// # Hosts
//
// [New] creates hosts [Lab.A] at 198.18.0.1 and [Lab.B] at 198.18.0.2,
// with 2001:2::1 and 2001:2::2 where the kernel has IPv6: addresses from
// the benchmarking ranges 198.18.0.0/15 (RFC 2544) and 2001:2::/48
// (RFC 5180). [Hosts] asks for more (up to [MaxHosts]; host i is
// 198.18.0.i+1), such as a resolver at its own distance from a client;
// every two hosts are joined by a link of their own. Each host has a
// loopback interface and one device, lab0, and routes only to the lab's
// /24 and /64: nothing in the lab reaches the machine's own network, and
// the machine has no route into the lab.
//
// [Host.Run] calls a func on a goroutine locked to an OS thread that has
// entered the host's namespace; [Host.Listen], [Host.ListenPacket],
// [Host.Dial] and [Host.DialContext] are shorthands. A socket stays in the
// namespace it was created in, so the conns and listeners they return work
// from any goroutine. The process's own namespace never changes. Sysctls
// of a host's namespace (net.ipv4.tcp_fastopen, net.core.somaxconn,
// net.ipv4.tcp_congestion_control…) are set with [Host.SetSysctl].
//
// # Links
//
// Each direction is a [Link] ([Lab.Link]) with its own [Profile], changed
// at run time with [Link.SetProfile] or [Lab.SetProfile], and its own
// [Stats]: packets passed and dropped by cause, the queue's high-water
// mark, and histograms of the delay each packet was actually given and of
// how late the relay delivered it. [LAN], [SameRegion], [CrossContinent],
// [Intercontinental] and [LossyMobile] are typical paths; [Profile] lists
// their figures and where they come from. Loss and jitter are drawn from
// a generator seeded with [Seed].
//
// # Accuracy
//
// A Go timer fires up to a millisecond late in an idle process (the
// runtime's poller sleeps in whole milliseconds), so each direction's
// deliverer sleeps on a timer only until 2 ms before a packet is due, then
// on a timerfd read through the poller, which wakes within tens of
// microseconds without holding a P, and spins the last stretch (the
// recent lateness of those wake-ups), yielding to other goroutines. While
// packets are on the link a direction may use a good part of a core. A
// delivery is never early; how late it was is in [Stats].Late, and the
// delay each packet was given in [Stats].Delay. Tests should assert lower
// bounds only (a lab RTT is at least the configured one): when every core
// is busy, deliveries are late by as long as the scheduler keeps the
// relay waiting, milliseconds at times. BenchmarkDelayAccuracy,
// BenchmarkBulk and BenchmarkRelayPerPacket measure it on a given
// machine.
//
// # Privileges and lifecycle
//
// Creating a namespace needs CAP_SYS_ADMIN (and CAP_NET_ADMIN to set up
// its devices): root, or a process started in namespaces of its own
// (unshare --user --map-root-user --net) where /dev/net/tun is open to
// all (mode 0666, as most distributions ship it). A Go process cannot make an
// unprivileged user namespace for itself, since the kernel refuses it to
// a multithreaded process; the error of [New] then wraps
// [ErrNoPrivilege] and says what would work. Off Linux, New returns an
// error wrapping errors.ErrUnsupported.
//
// The namespaces are held only by file descriptors of this process, never
// named under /run/netns, so they disappear when [Lab.Close] closes them,
// or when the process exits, whatever way it ends; sockets still open on
// a host keep its namespace alive until they are closed.
package netlab
