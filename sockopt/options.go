package sockopt

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Limits the kernel enforces, checked by Validate without a system call.
const (
	maxKeepIdle   = 32767 * time.Second // MAX_TCP_KEEPIDLE
	maxKeepIntvl  = 32767 * time.Second // MAX_TCP_KEEPINTVL
	maxKeepCount  = 127                 // MAX_TCP_KEEPCNT
	maxBuffer     = math.MaxInt32 / 2   // the kernel doubles the value in an int
	minMSS        = 88                  // TCP_MIN_MSS
	maxMSS        = 32767               // MAX_TCP_WINDOW
	maxIfName     = 15                  // IFNAMSIZ-1
	maxCCName     = 15                  // TCP_CA_NAME_MAX-1
	maxDeferSecs  = math.MaxInt32
	maxBusyPoll   = math.MaxInt32 * time.Microsecond
	maxLingerSecs = math.MaxInt32
)

// Options shared by many types.
var (
	anyInfo       = info{roles: anyRole}
	connectedInfo = info{roles: Connected}
	goSetsInfo    = info{roles: Connected, afterConnect: true}
)

func fmtDur(d time.Duration) string { return d.String() }

// wholeSeconds validates a duration the kernel counts in seconds.
func wholeSeconds[T Option](o T, d, lo, hi time.Duration) error {
	switch {
	case d < lo:
		return invalid(o, "must be at least %v", lo)
	case d > hi:
		return invalid(o, "exceeds the maximum %v", hi)
	case d%time.Second != 0:
		return invalid(o, "must be a whole number of seconds (the kernel counts seconds)")
	}
	return nil
}

func intRange[T Option](o T, v, lo, hi int, unit string) error {
	if v < lo || v > hi {
		return invalid(o, "must be between %d and %d%s", lo, hi, unit)
	}
	return nil
}

// NoDelay sets TCP_NODELAY: true sends small writes at once instead of
// waiting for an ACK (Nagle's algorithm off). Go already sets it to true on
// every TCP connection it makes, accepted ones included, so a listening
// socket's value never reaches accepted conns: apply it to them after Accept.
type NoDelay bool

func (NoDelay) Name() string     { return "TCP_NODELAY" }
func (o NoDelay) String() string { return o.Name() + "=" + strconv.FormatBool(bool(o)) }
func (NoDelay) Validate() error  { return nil }
func (NoDelay) info() info       { return goSetsInfo }

// KeepAlive sets SO_KEEPALIVE: whether idle connections are probed. Go
// turns it on, with its own timing, on every connection it dials or
// accepts; apply it after Accept to change an accepted conn.
type KeepAlive bool

func (KeepAlive) Name() string     { return "SO_KEEPALIVE" }
func (o KeepAlive) String() string { return o.Name() + "=" + strconv.FormatBool(bool(o)) }
func (KeepAlive) Validate() error  { return nil }
func (KeepAlive) info() info       { return goSetsInfo }

// KeepAliveIdle sets TCP_KEEPIDLE: how long a connection stays idle before
// the first keepalive probe. The kernel counts whole seconds, from 1s to
// 32767s. Probes only go out while no data is unacknowledged: see
// [UserTimeout].
type KeepAliveIdle time.Duration

func (KeepAliveIdle) Name() string     { return "TCP_KEEPIDLE" }
func (o KeepAliveIdle) String() string { return o.Name() + "=" + fmtDur(time.Duration(o)) }
func (o KeepAliveIdle) Validate() error {
	return wholeSeconds(o, time.Duration(o), time.Second, maxKeepIdle)
}
func (KeepAliveIdle) info() info { return goSetsInfo }

// KeepAliveInterval sets TCP_KEEPINTVL: the time between keepalive probes,
// in whole seconds from 1s to 32767s.
type KeepAliveInterval time.Duration

func (KeepAliveInterval) Name() string     { return "TCP_KEEPINTVL" }
func (o KeepAliveInterval) String() string { return o.Name() + "=" + fmtDur(time.Duration(o)) }
func (o KeepAliveInterval) Validate() error {
	return wholeSeconds(o, time.Duration(o), time.Second, maxKeepIntvl)
}
func (KeepAliveInterval) info() info { return goSetsInfo }

// KeepAliveCount sets TCP_KEEPCNT: how many unanswered probes close the
// connection, from 1 to 127.
type KeepAliveCount int

func (KeepAliveCount) Name() string     { return "TCP_KEEPCNT" }
func (o KeepAliveCount) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o KeepAliveCount) Validate() error {
	return intRange(o, int(o), 1, maxKeepCount, "")
}
func (KeepAliveCount) info() info { return goSetsInfo }

// UserTimeout sets TCP_USER_TIMEOUT: how long transmitted data may stay
// unacknowledged before the connection is closed. It also bounds keepalive
// teardown; about idle + interval × count is a sane value. Zero is the
// system default. The kernel counts milliseconds.
//
// Multipath TCP sockets refuse it (ENOPROTOOPT).
type UserTimeout time.Duration

const maxUserTimeout = UserTimeout(time.Duration(math.MaxInt32) * time.Millisecond)

func (UserTimeout) Name() string     { return "TCP_USER_TIMEOUT" }
func (o UserTimeout) String() string { return o.Name() + "=" + fmtDur(time.Duration(o)) }
func (o UserTimeout) Validate() error {
	switch {
	case o < 0:
		return invalid(o, "must not be negative")
	case o > maxUserTimeout:
		return invalid(o, "exceeds the maximum %v", time.Duration(maxUserTimeout))
	case time.Duration(o)%time.Millisecond != 0:
		return invalid(o, "must be a whole number of milliseconds")
	}
	return nil
}
func (UserTimeout) info() info { return info{roles: anyRole, mptcp: mptcpRefused} }

func validBuffer[T Option](o T, v int) error {
	return intRange(o, v, 1, maxBuffer, " bytes")
}

// ReceiveBuffer sets SO_RCVBUF, in bytes. Linux doubles the value for its
// bookkeeping and clamps it at 2 × net.core.rmem_max without an error; a
// set size also turns receive autotuning off for the socket. Set it before
// listen or connect for it to shape the window scale. Read it back with
// [Verify] to see what was applied.
type ReceiveBuffer int

func (ReceiveBuffer) Name() string     { return "SO_RCVBUF" }
func (o ReceiveBuffer) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o ReceiveBuffer) Validate() error {
	return validBuffer(o, int(o))
}
func (ReceiveBuffer) info() info { return anyInfo }

// SendBuffer sets SO_SNDBUF, in bytes; doubled and clamped at
// 2 × net.core.wmem_max like [ReceiveBuffer].
type SendBuffer int

func (SendBuffer) Name() string     { return "SO_SNDBUF" }
func (o SendBuffer) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o SendBuffer) Validate() error {
	return validBuffer(o, int(o))
}
func (SendBuffer) info() info { return anyInfo }

// ReceiveBufferForce sets SO_RCVBUFFORCE: SO_RCVBUF without the rmem_max
// clamp. It needs CAP_NET_ADMIN (EPERM otherwise). It reads back as
// SO_RCVBUF.
type ReceiveBufferForce int

func (ReceiveBufferForce) Name() string     { return "SO_RCVBUFFORCE" }
func (o ReceiveBufferForce) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o ReceiveBufferForce) Validate() error {
	return validBuffer(o, int(o))
}
func (ReceiveBufferForce) info() info { return anyInfo }

// SendBufferForce sets SO_SNDBUFFORCE: SO_SNDBUF without the wmem_max
// clamp. It needs CAP_NET_ADMIN. It reads back as SO_SNDBUF.
type SendBufferForce int

func (SendBufferForce) Name() string     { return "SO_SNDBUFFORCE" }
func (o SendBufferForce) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o SendBufferForce) Validate() error {
	return validBuffer(o, int(o))
}
func (SendBufferForce) info() info { return anyInfo }

// ReuseAddr sets SO_REUSEADDR: bind to an address with connections still
// in TIME_WAIT. Go sets it on every listening socket on Unix. Set it before
// bind. On Windows it means more: another socket may bind the same port
// and take over its traffic, which is why Go does not set it there.
type ReuseAddr bool

func (ReuseAddr) Name() string     { return "SO_REUSEADDR" }
func (o ReuseAddr) String() string { return o.Name() + "=" + strconv.FormatBool(bool(o)) }
func (ReuseAddr) Validate() error  { return nil }
func (ReuseAddr) info() info       { return info{roles: Dialing | Listening} }

// ReusePort sets SO_REUSEPORT: several sockets of the same user bind the
// same address and port, and the kernel spreads new connections among the
// listeners by hash. Closing one listener resets the connections queued on
// it unless net.ipv4.tcp_migrate_req is 1. Set it before bind.
type ReusePort bool

func (ReusePort) Name() string     { return "SO_REUSEPORT" }
func (o ReusePort) String() string { return o.Name() + "=" + strconv.FormatBool(bool(o)) }
func (ReusePort) Validate() error  { return nil }
func (ReusePort) info() info       { return info{roles: Dialing | Listening} }

// FastOpen sets TCP_FASTOPEN on a listening socket: the length of the queue
// of connections accepted with data in their SYN (TCP Fast Open, server
// side). Zero turns it off. It takes effect only when bit 2 (value 2) of
// net.ipv4.tcp_fastopen is set. Set it before listen.
type FastOpen int

func (FastOpen) Name() string     { return "TCP_FASTOPEN" }
func (o FastOpen) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o FastOpen) Validate() error {
	return intRange(o, int(o), 0, math.MaxInt32, " connections")
}
func (FastOpen) info() info { return info{roles: Listening} }

// FastOpenConnect sets TCP_FASTOPEN_CONNECT on a dialing socket: connect
// returns at once and the first write goes out in the SYN when a cookie is
// cached. It takes effect only when bit 1 (value 1) of
// net.ipv4.tcp_fastopen is set. With a cached cookie a dial to a dead port
// succeeds and the error arrives on the first Read; SYN data may be
// replayed, so only idempotent first writes are safe.
type FastOpenConnect bool

func (FastOpenConnect) Name() string     { return "TCP_FASTOPEN_CONNECT" }
func (o FastOpenConnect) String() string { return o.Name() + "=" + strconv.FormatBool(bool(o)) }
func (FastOpenConnect) Validate() error  { return nil }
func (FastOpenConnect) info() info       { return info{roles: Dialing} }

// DeferAccept sets TCP_DEFER_ACCEPT on a listening socket: Accept returns a
// connection only once data has arrived, or the time has passed. The
// kernel counts whole seconds and rounds up to its SYN-ACK retransmit
// schedule (5s reads back as 7s). Zero turns it off. Protocols where the
// server speaks first stall behind it.
type DeferAccept time.Duration

func (DeferAccept) Name() string     { return "TCP_DEFER_ACCEPT" }
func (o DeferAccept) String() string { return o.Name() + "=" + fmtDur(time.Duration(o)) }
func (o DeferAccept) Validate() error {
	return wholeSeconds(o, time.Duration(o), 0, maxDeferSecs*time.Second)
}
func (DeferAccept) info() info { return info{roles: Listening} }

// Congestion sets TCP_CONGESTION: the congestion control algorithm, such
// as "cubic" or "bbr". Names not in
// net.ipv4.tcp_available_congestion_control fail with ENOENT; without
// CAP_NET_ADMIN only those in tcp_allowed_congestion_control may be picked
// (EPERM). A name is at most 15 bytes.
//
// A Multipath TCP dialing socket accepts unknown names without an error;
// this package reads the value back after setting it and reports the
// mismatch, so an Option is never reported set when it is not.
type Congestion string

func (Congestion) Name() string     { return "TCP_CONGESTION" }
func (o Congestion) String() string { return o.Name() + "=" + string(o) }
func (o Congestion) Validate() error {
	switch {
	case o == "":
		return invalid(o, "name must not be empty")
	case len(o) > maxCCName:
		return invalid(o, "name is longer than %d bytes (TCP_CA_NAME_MAX)", maxCCName)
	case strings.ContainsFunc(string(o), func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return invalid(o, "name contains a space, control or non-ASCII character")
	}
	return nil
}
func (Congestion) info() info { return anyInfo }

// NotSentLowat sets TCP_NOTSENT_LOWAT, in bytes: the socket reports
// writable only while less than this much written data is still unsent,
// keeping the send queue short for latency. Zero is the system default
// (net.ipv4.tcp_notsent_lowat).
//
// Multipath TCP accepts it without effect on a dialed connection that falls
// back to TCP and does not pass it to accepted connections.
type NotSentLowat int

func (NotSentLowat) Name() string     { return "TCP_NOTSENT_LOWAT" }
func (o NotSentLowat) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o NotSentLowat) Validate() error {
	return intRange(o, int(o), 0, math.MaxInt32, " bytes")
}
func (NotSentLowat) info() info {
	return info{roles: anyRole, mptcp: mptcpNoEffect | mptcpNotInherited}
}

// QuickAck sets TCP_QUICKACK: true acknowledges at once instead of delaying
// ACKs. The kernel clears it again on its own, so it is a hint for the
// next few segments, not a permanent mode. Multipath TCP sockets refuse it.
type QuickAck bool

func (QuickAck) Name() string     { return "TCP_QUICKACK" }
func (o QuickAck) String() string { return o.Name() + "=" + strconv.FormatBool(bool(o)) }
func (QuickAck) Validate() error  { return nil }
func (QuickAck) info() info       { return info{roles: Connected, mptcp: mptcpRefused, afterConnect: true} }

// MaxSegment sets TCP_MAXSEG, in bytes: the largest segment this side
// announces and sends, from 88 to 32767. Set it before connect or listen:
// on an established connection it has no effect (measured). The kernel
// subtracts room for TCP options (1000 reads back as 988 with timestamps),
// and accepted connections inherit the listener's value.
type MaxSegment int

func (MaxSegment) Name() string     { return "TCP_MAXSEG" }
func (o MaxSegment) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o MaxSegment) Validate() error {
	return intRange(o, int(o), minMSS, maxMSS, " bytes")
}
func (MaxSegment) info() info { return info{roles: Dialing | Listening} }

// WindowClamp sets TCP_WINDOW_CLAMP, in bytes: the largest receive window
// this side advertises. The kernel raises values below about 1 KiB to its
// minimum (half of SOCK_MIN_RCVBUF). Multipath TCP sockets refuse it.
type WindowClamp int

func (WindowClamp) Name() string     { return "TCP_WINDOW_CLAMP" }
func (o WindowClamp) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o WindowClamp) Validate() error {
	return intRange(o, int(o), 1, math.MaxInt32, " bytes")
}
func (WindowClamp) info() info { return info{roles: anyRole, mptcp: mptcpRefused} }

// Linger sets SO_LINGER: what Close does with unsent data. [LingerOff]
// turns lingering off (the default: Close returns at once and the kernel
// sends the data in the background); zero discards the data and resets the
// connection on Close; a positive value makes Close wait up to that long,
// in whole seconds, for the data to be sent.
//
// Because zero already means something (an abortive close), Linger does
// not follow the "negative means off" convention of durations elsewhere:
// LingerOff is the one value for off, and Validate refuses every other
// negative value, so that a setting has one value and one printed form
// (Parse("SO_LINGER=-1s") is an error naming LingerOff).
type Linger time.Duration

// LingerOff is the Linger value that turns lingering off. It prints, and
// parses, as SO_LINGER=off.
const LingerOff = Linger(-1)

func (Linger) Name() string { return "SO_LINGER" }

// String prints SO_LINGER=off for LingerOff, and the duration otherwise.
func (o Linger) String() string {
	if o == LingerOff {
		return o.Name() + "=off"
	}
	return o.Name() + "=" + fmtDur(time.Duration(o))
}

// Validate refuses negative values other than LingerOff, fractions of a
// second, and values beyond what the kernel's int holds in seconds.
func (o Linger) Validate() error {
	switch {
	case o == LingerOff:
		return nil
	case o < 0:
		return invalid(o, "must not be negative: use LingerOff (SO_LINGER=off) to turn lingering off, "+
			"or Linger(0) to reset the connection on Close")
	}
	return wholeSeconds(o, time.Duration(o), 0, maxLingerSecs*time.Second)
}
func (Linger) info() info { return anyInfo }

// TOS sets the type of service byte (DSCP and ECN) of outgoing packets,
// 0 to 255: IP_TOS on IPv4, IPV6_TCLASS on IPv6, and both on a dual-stack
// IPv6 socket, which may carry IPv4-mapped traffic. For TCP the kernel
// strips the two ECN bits (0x13 reads back as 0x10).
//
// Multipath TCP sockets refuse IPV6_TCLASS (EOPNOTSUPP).
type TOS int

func (TOS) Name() string     { return "IP_TOS" }
func (o TOS) String() string { return o.Name() + "=0x" + strconv.FormatInt(int64(o), 16) }
func (o TOS) Validate() error {
	return intRange(o, int(o), 0, 255, "")
}
func (TOS) info() info { return info{roles: anyRole, mptcp: mptcpRefusedV6} }

// Mark sets SO_MARK: the firewall mark of the socket's packets, for policy
// routing and filtering. It needs CAP_NET_ADMIN (since Linux 5.17,
// CAP_NET_RAW also does).
type Mark uint32

func (Mark) Name() string     { return "SO_MARK" }
func (o Mark) String() string { return o.Name() + "=" + strconv.FormatUint(uint64(o), 10) }
func (Mark) Validate() error  { return nil }
func (Mark) info() info       { return anyInfo }

// Priority sets SO_PRIORITY: the queueing priority of the socket's
// packets. Values above 6 need CAP_NET_ADMIN (recent kernels also take
// CAP_NET_RAW). Accepted connections do not
// inherit it from the listener (measured): apply it after Accept.
type Priority int

func (Priority) Name() string     { return "SO_PRIORITY" }
func (o Priority) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o Priority) Validate() error {
	return intRange(o, int(o), 0, math.MaxInt32, "")
}
func (Priority) info() info { return connectedInfo }

// BindToDevice sets SO_BINDTODEVICE: the socket sends and receives only
// through the named interface, such as "eth0". Set it before bind or
// connect. Kernels before 5.7 require CAP_NET_RAW.
type BindToDevice string

func (BindToDevice) Name() string     { return "SO_BINDTODEVICE" }
func (o BindToDevice) String() string { return o.Name() + "=" + string(o) }
func (o BindToDevice) Validate() error {
	switch {
	case o == "":
		return invalid(o, "interface name must not be empty")
	case len(o) > maxIfName:
		return invalid(o, "interface name is longer than %d bytes (IFNAMSIZ)", maxIfName)
	case o == "." || o == "..":
		return invalid(o, "is not an interface name")
	case strings.ContainsFunc(string(o), func(r rune) bool { return r <= ' ' || r == '/' || r == ':' || r >= 0x7f }):
		return invalid(o, "interface name contains '/', ':', a space or a control character")
	}
	return nil
}
func (BindToDevice) info() info { return info{roles: Dialing | Listening} }

// BusyPoll sets SO_BUSY_POLL: how long a blocking receive busy-polls the
// device queue before sleeping, trading CPU for latency. The kernel counts
// whole microseconds. Older kernels need CAP_NET_ADMIN to raise it above
// net.core.busy_poll (6.18, measured, does not). Zero turns it off.
//
// Connections accepted by a Multipath TCP listener that fall back to TCP do
// not inherit it.
type BusyPoll time.Duration

func (BusyPoll) Name() string     { return "SO_BUSY_POLL" }
func (o BusyPoll) String() string { return o.Name() + "=" + fmtDur(time.Duration(o)) }
func (o BusyPoll) Validate() error {
	switch d := time.Duration(o); {
	case d < 0:
		return invalid(o, "must not be negative")
	case d > maxBusyPoll:
		return invalid(o, "exceeds the maximum %v", maxBusyPoll)
	case d%time.Microsecond != 0:
		return invalid(o, "must be a whole number of microseconds")
	}
	return nil
}
func (BusyPoll) info() info { return info{roles: anyRole, mptcp: mptcpNotInherited} }

// IncomingCPU sets SO_INCOMING_CPU on a listening socket: with SO_REUSEPORT,
// the kernel prefers the listener whose CPU matches the CPU that received
// the connection. On connected sockets the kernel overwrites the value
// with every received packet.
type IncomingCPU int

func (IncomingCPU) Name() string     { return "SO_INCOMING_CPU" }
func (o IncomingCPU) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o IncomingCPU) Validate() error {
	return intRange(o, int(o), 0, math.MaxInt32, "")
}
func (IncomingCPU) info() info { return info{roles: Listening} }

// BindAddressNoPort sets IP_BIND_ADDRESS_NO_PORT on a dialing socket bound
// to a local address: the kernel picks the port at connect, not at bind,
// so many connections from one source address to different destinations
// can share ports.
type BindAddressNoPort bool

func (BindAddressNoPort) Name() string     { return "IP_BIND_ADDRESS_NO_PORT" }
func (o BindAddressNoPort) String() string { return o.Name() + "=" + strconv.FormatBool(bool(o)) }
func (BindAddressNoPort) Validate() error  { return nil }
func (BindAddressNoPort) info() info       { return info{roles: Dialing} }
