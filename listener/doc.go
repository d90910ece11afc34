// Package listener makes TCP listeners whose socket options are set,
// checked and read back, on the listening socket and on every connection
// it accepts.
//
// A [Config] is built once with [New] from functional options and then
// listens any number of times:
//
//	cfg, err := listener.New(
//		listener.Backlog(4096),
//		listener.ConnSockopt(sockopt.UserTimeout(30*time.Second)),
//		listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Minute}),
//	)
//	if err != nil {
//		return err // an *OptionError naming the bad option
//	}
//	ln, err := cfg.Listen(ctx, "tcp", "127.0.0.1:8080")
//	if err != nil {
//		return err // a *net.OpError; errors.Is(err, syscall.EADDRINUSE) works
//	}
//	http.Serve(ln, handler) // every accepted conn has its options set
//
// # Options on accepted connections
//
// Go's Accept sets TCP_NODELAY to 1 and keepalive to 15 s on every
// connection it returns, overwriting whatever the connection inherited
// from the listening socket. Options meant for connections therefore go in
// [ConnSockopt]: [Listener.Accept] sets them after Go's defaults, on every
// connection. [Sockopt] refuses options that Go would overwrite. The
// [KeepAliveConfig] option is set the same way, so that its errors are not
// ignored as Go's Accept ignores them. [KeepAliveConfig] takes
// net.KeepAliveConfig with net's meaning, except that New refuses Enable
// false with a field set, which net would silently turn into keep-alive on
// with its defaults.
//
// For what this package does not list, [Control] runs a function of your
// own on the listening socket after the Config's socket options, and
// [ConnControl] one on every accepted connection after the per-connection
// options. Nothing validates or reads back what they set.
//
// [Config.Listen] sets the per-connection options once on a new socket of
// the listener's family and protocol, so an option the kernel refuses (an
// unknown congestion control, a missing privilege) fails Listen with an
// error naming it. If an option still fails on an accepted connection,
// Accept closes that connection, logs a [ConnOptionError] to the
// [ErrorLog] and goes on to the next connection: it never hands out a
// connection with an option missing, and never returns that error, which
// would make net/http and gRPC sleep before accepting again.
//
// # Backlog
//
// Go listens with net.core.somaxconn (read once per process) and has no
// backlog setting. [Backlog] calls listen(2) again on the live socket, which
// changes the queue length, and reads the result back from the kernel
// (TCP_INFO of a listening socket holds it): [Listener.Backlog] reports
// what was asked and what the kernel kept, which is at most somaxconn;
// [StrictBacklog] turns a truncation into an error wrapping
// [ErrBacklogTruncated].
//
// # TCP Fast Open
//
// [FastOpen](true) accepts data in the SYN with a Fast Open queue as long
// as the listen backlog (on Linux, the number [Listener.Backlog] reports);
// [FastOpenQueue](n) chooses the length. The host needs bit 2 of
// net.ipv4.tcp_fastopen. A SYN's data may be a replay: serve only
// idempotent first requests from it.
//
// # Errors
//
// Every error of [New], and of Listen for an option, is an *[OptionError]
// that names the option as the call that made it, such as
// "listener.MultipathTCP(true): … (conflicts with
// listener.ConnSockopt(TCP_USER_TIMEOUT=1s))". A bad argument of Listen
// or ListenGroup (a network other than TCP, a group of 0) is a
// *net.OpError, as net returns for a bad network.
//
// # Multipath TCP
//
// An application whose go.mod says go 1.24 or later listens with Multipath
// TCP by default on Linux. Several TCP options fail on such a socket, or
// are not passed on to the connections it accepts. A Config holding any
// option for which [sockopt.TCPOnly] is true turns Multipath TCP off,
// unless [MultipathTCP](true) was given, in which case [New] fails.
// [Listener.MultipathTCP] reports the protocol of the socket as the kernel
// has it (SO_PROTOCOL).
//
// # Reuse-port groups
//
// [Config.ListenGroup] opens n listeners on one address with SO_REUSEPORT,
// one per accept loop. Closing one of them resets the connections queued on
// it unless net.ipv4.tcp_migrate_req is 1: [MigrateRequests] reads the
// sysctl and [Listener.Drain] retires a listener without losing its queue.
// See [Group].
//
// # Concurrency
//
// A Config is immutable and safe for concurrent use. A [Listener] and a
// [Group] are safe for concurrent use, like net.Listener.
package listener
