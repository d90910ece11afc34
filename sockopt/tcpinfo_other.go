//go:build !linux && !darwin

package sockopt

func readTCPInfo(uintptr) (TCPInfo, error) {
	return TCPInfo{}, unsupported(tcpInfoOption{}, "getsockopt")
}
