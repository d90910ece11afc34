//go:build !linux

package sockopt

// hasProcSys says whether ReadSystem can read this host's settings.
const hasProcSys = false
