package sockopt

import (
	"strconv"
	"time"
)

// NoDelay sets TCP_NODELAY: true sends small writes at once instead of
// waiting for an ACK (Nagle's algorithm off). Go already sets it to true on
// every TCP connection it makes.
type NoDelay bool

func (NoDelay) Name() string     { return "TCP_NODELAY" }
func (o NoDelay) String() string { return o.Name() + "=" + strconv.FormatBool(bool(o)) }
func (NoDelay) Validate() error  { return nil }
func (NoDelay) info() info       { return info{roles: anyRole} }

// UserTimeout sets TCP_USER_TIMEOUT: how long transmitted data may stay
// unacknowledged before the connection is closed. It also bounds keepalive
// teardown. Zero is the system default. The kernel counts milliseconds.
type UserTimeout time.Duration

const maxUserTimeout = UserTimeout(time.Duration(1<<31-1) * time.Millisecond)

func (UserTimeout) Name() string     { return "TCP_USER_TIMEOUT" }
func (o UserTimeout) String() string { return o.Name() + "=" + time.Duration(o).String() }
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
func (UserTimeout) info() info { return info{roles: anyRole, tcpOnly: true} }

// ReceiveBuffer sets SO_RCVBUF, in bytes. Linux doubles the value for its
// bookkeeping and clamps it at net.core.rmem_max without an error; a set
// size also turns receive autotuning off for the socket. Read it back with
// [Verify] to see what was applied.
type ReceiveBuffer int

func (ReceiveBuffer) Name() string     { return "SO_RCVBUF" }
func (o ReceiveBuffer) String() string { return o.Name() + "=" + strconv.Itoa(int(o)) }
func (o ReceiveBuffer) Validate() error {
	if o <= 0 || o > 1<<30 {
		return invalid(o, "must be between 1 and %d bytes", 1<<30)
	}
	return nil
}
func (ReceiveBuffer) info() info { return info{roles: anyRole} }
