//go:build unix

package pool

import (
	"crypto/tls"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// PendingBytes is how many bytes wait in c's socket receive queue, under
// any TLS layer (up to 4 KiB, by a non-blocking peek), or -1 when it
// cannot tell.
func PendingBytes(c net.Conn) int {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	_ = rc.Control(func(fd uintptr) {
		var buf [4096]byte
		if v, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT); err == nil {
			n = v
		} else if err == unix.EAGAIN {
			n = 0
		}
	})
	return n
}
