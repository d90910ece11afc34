//go:build unix

package pool

import (
	"errors"
	"fmt"
	"os"
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
	// One struct for everything the callback sets, so that it costs one
	// allocation rather than one per variable.
	var st struct {
		b     [1]byte
		n     int
		errno error
		fin   bool
	}
	err := rc.Read(func(fd uintptr) bool {
		for {
			st.n, _, st.errno = unix.Recvfrom(int(fd), st.b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if st.errno != unix.EINTR {
				break
			}
		}
		if st.n > 0 && isTLS {
			st.fin = peerFinished(int(fd))
		}
		return true
	})
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
