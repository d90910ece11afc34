package pool

import "golang.org/x/sys/unix"

// peerFinished says whether the peer has sent its FIN or reset the
// connection, from the TCP state in TCP_INFO. It is false for sockets that
// are not TCP.
func peerFinished(fd int) bool {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return false
	}
	switch info.State {
	case unix.BPF_TCP_CLOSE_WAIT, unix.BPF_TCP_LAST_ACK, unix.BPF_TCP_CLOSING,
		unix.BPF_TCP_CLOSE, unix.BPF_TCP_TIME_WAIT:
		return true
	}
	return false
}
