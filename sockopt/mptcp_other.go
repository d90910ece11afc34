//go:build !linux

package sockopt

// Multipath TCP exists only on Linux.
func (s socket) checkMPTCP([]Option, mptcpQuirk) error { return nil }
func (s socket) isMPTCP() (bool, error)                { return false, nil }
