package sockopt

import (
	"fmt"
	"time"
)

// BufferAdvice is what BufferFor recommends for a path: the socket buffer
// size that lets one connection keep the path full.
type BufferAdvice struct {
	RTT  time.Duration
	Rate int64 // bits per second

	// BDP is the bandwidth-delay product, Rate × RTT, in bytes: the
	// data in flight that keeps the path busy.
	BDP int
	// Size is the value to ask for with ReceiveBuffer (on the receiver)
	// or SendBuffer (on the sender): the BDP with a quarter more for the
	// RTT's variation. Linux doubles the value it is given and keeps
	// about half of that for its own bookkeeping, so the window the
	// peer sees is near Size.
	Size int
	// Limit is the largest value Linux holds: it clamps SO_RCVBUF and
	// SO_SNDBUF at 2 × net.core.rmem_max (wmem_max) without an error.
	// 0 when the system's limits are unknown.
	Limit int
	// Clamped is set when 2 × Size exceeds Limit: the kernel will hold
	// less than asked and the window falls short of the BDP; raise
	// net.core.rmem_max / wmem_max, or leave the size unset.
	Clamped bool
	// AutotuneLimit is the most the kernel's autotuning grows a buffer
	// to on a socket without a set size: the smaller of net.ipv4.tcp_rmem[2]
	// and tcp_wmem[2]. 0 when the system's settings are unknown.
	AutotuneLimit int
	// Autotuned is set when autotuning alone reaches the BDP: 2 × Size
	// fits under AutotuneLimit (a buffer grown by autotuning is, like a set
	// one, about half window). Then leave the buffer sizes unset. When
	// it is not set and AutotuneLimit is known, autotuning stops short of
	// the link rate and Size is the way to reach it, up to Limit.
	Autotuned bool
}

// BufferFor returns the socket buffer size for a path with the given
// round-trip time and rate in bits per second, taking this host's
// rmem_max and wmem_max, and tcp_rmem and tcp_wmem, from sys (nil or zero
// fields: limits unknown).
//
// A fixed size turns the kernel's autotuning off for the socket: Linux
// then keeps the buffer at that size for the connection's life, where
// autotuning would grow it (up to the third field of net.ipv4.tcp_rmem
// and tcp_wmem) as the path needs and shrink it under memory pressure.
// Set a size only where autotuning's limit is below the BDP
// ([BufferAdvice.Autotuned] false), or to cap a connection on purpose.
func BufferFor(rtt time.Duration, rate int64, sys *System) BufferAdvice {
	a := BufferAdvice{RTT: rtt, Rate: rate}
	if rtt <= 0 || rate <= 0 {
		return a
	}
	bdp := float64(rate) / 8 * rtt.Seconds()
	a.BDP = int(bdp + 0.5)
	a.Size = int(bdp*1.25 + 0.5)
	if sys != nil && sys.RmemMax > 0 && sys.WmemMax > 0 {
		a.Limit = 2 * min(sys.RmemMax, sys.WmemMax)
		a.Clamped = 2*a.Size > a.Limit
	}
	if sys != nil && sys.TCPRmem[2] > 0 && sys.TCPWmem[2] > 0 {
		a.AutotuneLimit = min(sys.TCPRmem[2], sys.TCPWmem[2])
		a.Autotuned = 2*a.Size <= a.AutotuneLimit
	}
	return a
}

// String describes the advice in one line.
func (a BufferAdvice) String() string {
	if a.BDP == 0 {
		return "no bandwidth-delay product: the RTT or the rate is unknown"
	}
	s := fmt.Sprintf("BDP %d bytes (%v × %d bit/s)", a.BDP, a.RTT, a.Rate)
	if a.Autotuned {
		return s + fmt.Sprintf(": autotuning reaches it (it grows buffers up to %d bytes, the smaller of tcp_rmem[2] and tcp_wmem[2], above 2 × %d): leave the buffer sizes unset, since a set size turns autotuning off", a.AutotuneLimit, a.Size)
	}
	s += fmt.Sprintf(": ask for %d bytes (ReceiveBuffer on the receiver, SendBuffer on the sender)", a.Size)
	if a.AutotuneLimit > 0 {
		s += fmt.Sprintf("; autotuning stops at %d bytes (the smaller of tcp_rmem[2] and tcp_wmem[2]), below the 2 × %d the BDP needs, so only a set size reaches the link rate", a.AutotuneLimit, a.Size)
	}
	switch {
	case a.Limit == 0:
		s += "; this host's limit is unknown"
	case a.Clamped:
		s += fmt.Sprintf("; this host clamps it at %d bytes (2 × rmem_max/wmem_max): raise net.core.rmem_max and wmem_max", a.Limit)
	default:
		s += fmt.Sprintf("; within this host's limit of %d bytes (2 × rmem_max/wmem_max)", a.Limit)
	}
	return s + "; a set size turns autotuning off"
}
