package dialer

import (
	"context"
	"net"
	"net/netip"
	"syscall"
)

// DialFunc dials one literal address.
type DialFunc = func(ctx context.Context, network, address string) (net.Conn, error)

// NewWithDial is New with every attempt going through dial, which gets the
// real dial function to call (or not).
func NewWithDial(dial func(real DialFunc) DialFunc, opts ...Option) (*Dialer, error) {
	d, err := New(opts...)
	if err != nil {
		return nil, err
	}
	hooked := dial(d.attempts.DialContext)
	d.dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		// The instrumented function stands in for the network: an attempt
		// that reached it counts as having made a socket.
		if st, ok := ctx.Value(attemptKey{}).(*attemptState); ok {
			st.socket = true
		}
		return hooked(ctx, network, unmapped(address))
	}
	d.untracked = d.dial
	return d, nil
}

// unmapped is address with an IPv4-mapped address (the form in which an
// attempt hands net an IPv4 address, see literal) written as IPv4, the
// form the tests compare with.
func unmapped(address string) string {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Is4In6() {
		return address
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}

// NewWithSocketHook is New with hook called for every socket an attempt
// makes (from Control, before the socket options are set and connect).
func NewWithSocketHook(hook func(network, address string, c syscall.RawConn), opts ...Option) (*Dialer, error) {
	d, err := New(opts...)
	if err != nil {
		return nil, err
	}
	d.onSocket = hook
	d.untracked = d.dial // every socket goes through control
	return d, nil
}

var (
	AttemptDeadline = attemptDeadline
	Interleave      = interleave
)

const MinAttemptTime = minAttemptTime

// NewWithHookBeforeNet is New with hook called by every attempt just
// before it hands its address to net (to net's dial, which then makes the
// socket, or fails first).
func NewWithHookBeforeNet(hook func(), opts ...Option) (*Dialer, error) {
	d, err := New(opts...)
	if err != nil {
		return nil, err
	}
	dial, untracked := d.dial, d.untracked
	d.dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		hook()
		return dial(ctx, network, address)
	}
	d.untracked = func(ctx context.Context, network, address string) (net.Conn, error) {
		hook()
		return untracked(ctx, network, address)
	}
	return d, nil
}
