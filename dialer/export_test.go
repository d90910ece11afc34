package dialer

import (
	"context"
	"net"
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
		return hooked(ctx, network, address)
	}
	d.untracked = d.dial
	return d, nil
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
