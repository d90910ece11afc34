//go:build unix

package pool

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

const livenessSupported = true

// peek looks at the socket without blocking and without consuming
// anything: MSG_PEEK|MSG_DONTWAIT for one byte.
//   - nothing to read (EAGAIN): alive;
//   - end of stream: the peer closed or half-closed it: dead;
//   - an error (ECONNRESET, …): dead;
//   - bytes waiting: on a plain connection, nobody asked for them, so the
//     protocol on it is out of step: unusable. Under TLS they are a record
//     the peer sent unprompted (a TLS 1.3 session ticket, a key update,
//     or an alert): not death by itself, so the connection stays, unless
//     the kernel says the peer has also finished its side (Linux: the
//     TCP state is CLOSE_WAIT or later).
func peek(rc syscall.RawConn, isTLS bool) error {
	pk := peekers.Get().(*peeker)
	defer peekers.Put(pk)
	pk.isTLS = isTLS
	err := rc.Read(pk.fn)
	st := pk.peekResult
	pk.peekResult = peekResult{}
	switch {
	case err != nil:
		return fmt.Errorf("pool: liveness: %w", err)
	case errors.Is(st.errno, unix.EAGAIN) || errors.Is(st.errno, unix.EWOULDBLOCK):
		return nil
	case st.errno != nil:
		return fmt.Errorf("pool: liveness: %w", os.NewSyscallError("recvfrom", st.errno))
	case st.n == 0:
		return ErrPeerClosed
	case !isTLS:
		return ErrUnexpectedData
	case st.fin:
		return fmt.Errorf("%w (after a pending TLS record)", ErrPeerClosed)
	}
	return nil
}

// peeker is peek's callback and what it found, reused through peekers so
// that a peek (on every checkout with LivenessCheck(EveryCheckout)) does not allocate
// them each time.
type peeker struct {
	peekResult
	isTLS bool
	fn    func(fd uintptr) bool // do, bound once
}

type peekResult struct {
	n     int
	errno error
	fin   bool
}

var peekers = sync.Pool{New: func() any {
	pk := new(peeker)
	pk.fn = pk.do
	return pk
}}

func (pk *peeker) do(fd uintptr) bool {
	var b [1]byte
	for {
		pk.n, _, pk.errno = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if pk.errno != unix.EINTR {
			break
		}
	}
	if pk.n > 0 && pk.isTLS {
		pk.fin = peerFinished(int(fd))
	}
	return true
}
