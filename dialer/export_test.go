package dialer

import (
	"context"
	"net"
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
	d.dial = dial(d.attempts.DialContext)
	return d, nil
}

var (
	AttemptDeadline = attemptDeadline
	Interleave      = interleave
)

const MinAttemptTime = minAttemptTime
