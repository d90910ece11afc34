// Package pool is a resource pool: [Pool] holds any resource made by a dial
// function (connections, clients, buffers), [ConnPool] holds [net.Conn]s
// and checks, cheaply, that the ones it hands out are alive, and
// [NewConnPoolOf] pools a protocol client over each connection with the
// same check.
//
// # Pool
//
// [New] takes a dial function, a close function and [Option]s:
// [MaxSize], [MinIdle] (kept warm in the background), [MaxIdle],
// [MaxIdleTime], [MaxLifetime] (with [LifetimeJitter]),
// [MaxConcurrentDials], [DialTimeout], [DialBackoff] and [HealthCheck].
// [Pool.Get] returns a [Resource] to [Resource.Release] or, if it broke, to
// [Resource.Discard]:
//
//	p, err := pool.New(dial, closeFn, pool.MaxSize(16))
//	if err != nil { … }
//	defer p.Close()
//	r, err := p.Get(ctx)
//	if err != nil { … }
//	defer r.Release()
//	use(r.Value())
//
// The hot path takes no lock: idle resources sit in a slot per processor
// (P) in front of a lock-free stack, so a Get that finds one idle (with no
// Get waiting) and a Release that puts one back (with none waiting) cost a
// few atomic instructions, on a cache line no other core writes when a
// goroutine gives back on the P where it took, however many goroutines
// share the pool; only waiting, dialing and closing take the pool's mutex.
// (The per-P slots are used when MaxIdle is MaxSize, the default.) No allocation, and no clock read unless a time limit
// is set; when one is, resources are timestamped with a coarse clock that
// the pool's background goroutine advances, since reading the system clock
// costs more than the rest of a Get and Release together.
//
// # Waiting, dialing and failures
//
// A Get that finds no idle resource queues, first come first served, and
// the pool dials for it when it has room. A released or newly dialed
// resource is handed straight to the longest waiter, and the releasing
// goroutine yields its processor so the waiter runs at once instead of
// holding the resource asleep (jackc/puddle#46). The waiter, not the
// releaser, runs the [HealthCheck] when one is due, so a hand-off adds no
// work under the lock. A dial does not use the
// context of the Get that caused it: when that caller gives up, the dial
// goes on and its resource serves the next waiter or the idle set.
//
// A failed dial fails the longest waiter and pauses dialing with
// exponential backoff ([DialBackoff]). While paused, Gets wait for
// resources in use, and fail at once with a [*BackoffError] when nothing
// can serve them. When the pause ends, a single probe dial goes out; its
// success resumes dialing, so the pool recovers as soon as the server is
// back.
//
// [Stats] counts Gets, hits, waits and the total wait time. With
// [RecordWaitTime] each successful Get also reports its wait to a
// recorder, such as a latency histogram: 0 for a Get served from the idle
// set (no clock read), the time in the queue for one that waited, and
// nothing for one that failed.
//
// # Misuse
//
// Releasing or discarding the same checkout twice panics with a message
// saying so, including through a stale copy of a Resource whose resource
// has since been checked out again: every checkout has its own sequence
// number. Using a [*Conn] after its Close returns an error wrapping
// [net.ErrClosed] instead.
//
// # Options and errors
//
// An [Option] is accepted by every constructor; a [ConnOption] only by the
// pools of connections ([LivenessCheck] is one), so giving the liveness
// check to [New] does not compile. A bad option makes the constructor
// return an [*OptionError] that prints the option as it was written:
// "pool.MaxSize(0): must be at least 1". Durations follow net.Dialer's
// KeepAlive: 0 means the default, a negative value turns the limit off.
// The two check thresholds ([LivenessCheck], [HealthCheck]) say how long a
// resource may go unproven; [EveryCheckout] checks it on every checkout.
//
// # Closing and resetting
//
// [Pool.Close] closes the pool now, as io.Closer: it fails waiters with
// [ErrClosed], stops the background goroutine and dials in flight, closes
// idle resources, and closes resources in use when they are released.
// [Pool.Shutdown] does the same and then waits, as long as its context
// allows, for resources in use to come back and for every close function
// to return, as [net/http.Server.Shutdown] does. Both are idempotent.
// [Pool.Reset] retires everything dialed before it.
//
// # Connections and liveness
//
// [NewConnPool] pools connections to one address, dialed by any function
// of the shape of [net.Dialer.DialContext] ([tls.Dialer.DialContext], a
// nettune dialer's DialContext). [ConnPool.Get] returns a [*Conn]; its
// Close returns the connection to the pool, unless [Conn.MarkUnusable]
// was called or a Read or Write failed, in which case the connection is
// closed. A [*Conn] is a [syscall.Conn], for socket options and TCP_INFO.
//
// # Per-connection state
//
// A [*Conn] is new at every checkout, so that a stale one cannot touch a
// connection someone else holds; state kept on it is lost at Close. For
// state that must live as long as the connection, such as a bufio.Reader
// or a protocol client, [NewConnPoolOf] calls a wrap function once per
// connection and pools what it returns, as a [Pool] of that type whose
// [Resource.Value] is the client; the liveness check still peeks at the
// socket under it:
//
//	type client struct {
//		conn net.Conn
//		r    *bufio.Reader
//	}
//	p, err := pool.NewConnPoolOf(d.DialContext, "tcp", addr,
//		func(ctx context.Context, c net.Conn) (*client, error) {
//			return &client{conn: c, r: bufio.NewReader(c)}, nil
//		}, pool.MaxSize(8))
//	…
//	r, err := p.Get(ctx)
//	…
//	reply, err := r.Value().roundTrip(req)
//	r.Release() // closes the conn instead if a Read or Write on it failed
//
// Before handing out a connection that has been quiet for at least the
// [LivenessCheck] threshold (1s by default), the pool peeks at its socket
// with a non-blocking MSG_PEEK (about half a microsecond). Quiet is the
// time since the peer last proved alive: the dial, the last passed check,
// or the last Read through the [*Conn] that returned data; a Close proves
// nothing, since the server may have closed the connection while it was
// held. This holds on every path to a Get: the idle set, a hand-off from a
// Close or a dial to a waiting Get, TryGet. The peek runs in the Get that
// receives the connection, not under the pool's lock, so a connection in
// steady use is handed over with no system call and no extra locking. The
// verdicts:
//
//   - nothing to read: alive;
//   - end of stream (the peer closed or half-closed) or an error such as
//     ECONNRESET: dead, so the connection is closed and the Get goes on
//     (a Get that was waiting keeps its place in the queue);
//   - bytes waiting on a plain connection: nobody asked for them, so the
//     protocol on it is out of step: closed ([ErrUnexpectedData]);
//   - bytes waiting under TLS ([*tls.Conn]; the peek is on the socket under
//     it): these are a record the server sent unprompted, usually a TLS 1.3
//     session ticket, possibly a close_notify alert, and they cannot be
//     told apart without decrypting. They are not death: the connection is
//     kept, unless the kernel reports that the peer has also finished its
//     side (on Linux, from the TCP state in TCP_INFO). A close_notify from
//     a server that keeps its socket open is found on the next Read.
//
// A connection straight from its dial that fails the check (only possible
// with a threshold of [EveryCheckout]) fails the Get with the check's error, since a
// server that drops every new connection would otherwise keep it dialing.
//
// # What the liveness check promises
//
// With LivenessCheck(EveryCheckout) no connection is handed out whose death (end of
// stream, reset, or unrequested bytes on a plain connection) had reached
// the client's socket when the Get received it. With a threshold d > 0
// the same holds for every connection quiet for d or more (measured on a
// coarse clock that can lag by one tick, d/8 within 1ms to 1s); one that
// proved alive less than d ago is handed out unchecked, which is what
// keeps a busy pool fast. The check is a point in time: a server can
// still close a connection just after it passed, so a request must still
// handle a failed Read or Write.
//
// Unread replies: a [*Conn] closed with a Write after its last Read (such
// as a request whose reply was never read) is peeked at on its next
// checkout whatever the threshold, and a plain connection with bytes
// waiting then is closed. This costs nothing to code that reads every
// reply. It cannot catch a reply still in flight at that moment, nor a
// reply read only in part (found only once the connection has been quiet
// for the threshold), nor anything under TLS: read every reply before
// Close, or call [Conn.MarkUnusable].
//
// The check is available on unix platforms; elsewhere it is off by
// default and asking for it is an error wrapping [errors.ErrUnsupported].
//
// # Concurrency
//
// [Pool], [ConnPool] and [*Conn] are safe for concurrent use. A [Resource]
// is a value owned by the caller that got it.
package pool
