//go:build !linux

package sockopt

// Multipath TCP exists only on Linux.
func (s socket) checkMPTCP([]Option, mptcpQuirk) (int, error) { return 0, nil }
func (s socket) isMPTCP() (bool, error)                       { return false, nil }
