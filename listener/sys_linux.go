package listener

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const canSetBacklog = true

// listenState is what relisten reads back from a listening socket.
type listenState struct {
	backlog     int  // sk_max_ack_backlog
	ipv6        bool // SO_DOMAIN is AF_INET6
	domainKnown bool // ipv6 was read from the socket
}

// relisten calls listen(2) again with backlog n (when n > 0) on the live
// socket, which changes its accept queue length, and reads back the length
// the kernel kept and the socket's address family. (sockopt.IsMPTCP reads
// its protocol.)
func relisten(rc syscall.RawConn, n int) (listenState, error) {
	var st listenState
	var err error
	cerr := rc.Control(func(fd uintptr) {
		if n > 0 {
			if e := unix.Listen(int(fd), n); e != nil {
				err = os.NewSyscallError("listen", e)
				return
			}
		}
		ti, e := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if e != nil {
			err = os.NewSyscallError("getsockopt TCP_INFO", e)
			return
		}
		// For a socket in LISTEN state, tcpi_sacked is sk_max_ack_backlog
		// and tcpi_unacked the current accept queue length.
		st.backlog = int(ti.Sacked)
		d, e := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		if e != nil {
			err = os.NewSyscallError("getsockopt SO_DOMAIN", e)
			return
		}
		st.ipv6, st.domainKnown = d == unix.AF_INET6, true
	})
	if cerr != nil {
		return st, fmt.Errorf("listener: %w", cerr)
	}
	return st, err
}

// queueLen returns the number of connections waiting in the accept queue.
func queueLen(rc syscall.RawConn) (int, error) {
	var n int
	var err error
	cerr := rc.Control(func(fd uintptr) {
		ti, e := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if e != nil {
			err = os.NewSyscallError("getsockopt TCP_INFO", e)
			return
		}
		n = int(ti.Unacked)
	})
	if cerr != nil {
		return 0, fmt.Errorf("listener: %w", cerr)
	}
	return n, err
}

// acceptQueued accepts, without waiting, every connection queued on the
// listening socket behind rc. It calls accept4 directly because Go's
// Accept cannot be made non-blocking without a deadline, and a past
// deadline stops it before it tries.
func acceptQueued(rc syscall.RawConn) ([]*net.TCPConn, error) {
	var fds []int
	var err error
	cerr := rc.Control(func(fd uintptr) {
		for {
			nfd, _, e := unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if e == nil {
				fds = append(fds, nfd)
				continue
			}
			if e == unix.ECONNABORTED || e == unix.EINTR {
				continue
			}
			if e != unix.EAGAIN {
				err = os.NewSyscallError("accept4", e)
			}
			return
		}
	})
	if cerr != nil && err == nil {
		err = fmt.Errorf("listener: %w", cerr)
	}
	conns := make([]*net.TCPConn, 0, len(fds))
	for _, nfd := range fds {
		f := os.NewFile(uintptr(nfd), "drained")
		c, e := net.FileConn(f) // dups the descriptor
		f.Close()
		if e != nil {
			if err == nil {
				err = fmt.Errorf("listener: %w", e)
			}
			continue
		}
		tc, ok := c.(*net.TCPConn)
		if !ok {
			c.Close()
			continue
		}
		conns = append(conns, tc)
	}
	return conns, err
}

// migrateRequests reads net.ipv4.tcp_migrate_req of the caller's network
// namespace.
func migrateRequests() (bool, error) {
	const path = "/proc/sys/net/ipv4/tcp_migrate_req"
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return false, fmt.Errorf("listener: %s: the kernel has no tcp_migrate_req (added in Linux 5.14): %w", path, errUnsupported)
		}
		return false, fmt.Errorf("listener: %w", err)
	}
	switch v := strings.TrimSpace(string(b)); v {
	case "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, fmt.Errorf("listener: %s: unexpected value %q", path, v)
	}
}
