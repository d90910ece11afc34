// Package sockopt sets socket options correctly and proves it: typed,
// validated options; Control functions for net.Dialer and net.ListenConfig
// that return every setsockopt error; [Apply] for existing connections;
// [Get] and [Verify] to read back what the kernel actually applied and say
// why it differs; [ReadTCPInfo] for TCP_INFO in Go types; and
// [ReadSystem] with [System.ExplainFor] to predict, from sysctls and
// capabilities, what the host will clamp, refuse or ignore on a dialing,
// listening or accepted socket, Multipath TCP or not.
//
// # Options
//
// Each option is a small comparable type named after what it does, whose
// value is a Go value: [NoDelay](true), [UserTimeout](5*time.Second),
// [ReceiveBuffer](1<<20), [Congestion]("bbr"). Every option prints itself
// as the kernel's name and the value ("TCP_USER_TIMEOUT=5s") and validates
// its value without a system call ([Option.Validate], [Validate]); a bad
// value is an [*Error] naming the option, the value and the limit.
//
// For an option without a type here (IP_FREEBIND, TCP_SYNCNT,
// IPV6_V6ONLY, …), [RawInt] and [Raw] take the level, the number and the
// value as the kernel does, and keep the rest: validation of the shape,
// errors naming the option, read-back, printing and [Parse]
// ("RAW(level=0,name=15)=1").
//
// # Sockets
//
// [Apply], [Get], [Verify], [ReadTCPInfo] and [IsMPTCP] take the conn or
// listener as it comes: a syscall.Conn (*net.TCPConn, *net.TCPListener,
// *net.UDPConn, *os.File), a syscall.RawConn (inside a Control function),
// or a conn that wraps one and hands it out with a NetConn() net.Conn
// method, as *tls.Conn does; a net.Conn from Dial or Accept needs no type
// assertion. Anything else is an error naming its type.
//
// # Setting options
//
//	d := net.Dialer{Control: sockopt.DialControl(
//		sockopt.UserTimeout(10*time.Second),
//		sockopt.Congestion("bbr"),
//	)}
//	conn, err := d.Dial("tcp", addr)
//	// err wraps *sockopt.Error and the errno: errors.Is(err, unix.EPERM)
//
// [Control], [DialControl] and [ListenControl] build the Control function;
// [Apply] sets options on a conn that exists; [Get] reads one back as its
// own type (sockopt.Get(conn, sockopt.KeepAliveIdle(0)) is a
// KeepAliveIdle). The first failure stops and
// is returned; net wraps it in a *net.OpError whose chain still reaches the
// [*Error] and the errno. Errors carry a Hint where one helps: the missing
// capability for EPERM, the available and allowed algorithms for an
// unknown congestion control, how to turn Multipath TCP off.
//
// # Linux traps handled
//
//   - Go sets TCP_NODELAY and keepalive itself on every connection it
//     dials or accepts, undoing a value set earlier, and the kernel resets
//     TCP_QUICKACK during the handshake. [AfterConnect] names these
//     options; the Control functions refuse them; apply them with [Apply]
//     after Dial or Accept.
//   - Go listeners are Multipath TCP by default (go 1.24 and later in
//     go.mod). MPTCP refuses TCP_USER_TIMEOUT, TCP_QUICKACK,
//     TCP_WINDOW_CLAMP and IPV6_TCLASS, does not pass TCP_NOTSENT_LOWAT or
//     SO_BUSY_POLL to accepted connections, and accepts unknown
//     TCP_CONGESTION names without error. [TCPOnly] names these options.
//     When a set holds one, Control reads SO_PROTOCOL and fails with
//     [ErrMPTCP] on an MPTCP socket; Go then retries the dial or listen
//     with plain TCP, where the option is set for real. TCP_CONGESTION is
//     always read back after it is set.
//   - SO_RCVBUF and SO_SNDBUF read back doubled, clamped at twice
//     net.core.rmem_max/wmem_max without an error; TCP_DEFER_ACCEPT is
//     rounded to the SYN-ACK retransmit schedule (5s reads back as 7s);
//     TCP strips the ECN bits of IP_TOS; TCP_MAXSEG loses the room for TCP
//     options. [Verify] explains each of these.
//   - On a dual-stack IPv6 socket, [TOS] sets both IPV6_TCLASS and IP_TOS,
//     since IPv4-mapped traffic follows IP_TOS.
//   - Accepted sockets do not inherit SO_PRIORITY from the listener.
//   - Keepalive probes do not go out while sent data is unacknowledged:
//     [System.Explain] suggests the [UserTimeout] that bounds that case.
//
// # Roles
//
// A [Role] says where an option means something: [Dialing] (before
// connect), [Listening] (before listen) or [Accepted]. [Check] names an
// option used in the wrong role, such as [FastOpen] on a dialing socket.
//
// # Platforms
//
// Linux has every option. darwin and FreeBSD have the portable subset
// (TCP_NODELAY, keepalive and its timers, buffers, SO_REUSEADDR,
// SO_REUSEPORT, TCP_FASTOPEN as an on/off switch, TCP_MAXSEG, SO_LINGER,
// IP_TOS/IPV6_TCLASS), with TCP_NOTSENT_LOWAT on darwin and
// TCP_CONGESTION on FreeBSD; Windows has TCP_NODELAY, keepalive and its
// timers, buffers, SO_REUSEADDR and SO_LINGER. [Raw] options work on all
// four. Everything else returns an
// [*Error] wrapping [errors.ErrUnsupported] that names the option. The API
// is the same everywhere.
//
// # Concurrency
//
// Options, [Report], [System] and [TCPInfo] are plain values, safe to share.
// The functions returned by the Control constructors keep their own copy of
// the options and may be called from many goroutines at once.
package sockopt
