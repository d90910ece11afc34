//go:build !linux

package listener

import (
	"fmt"
	"net"
	"syscall"
)

const canSetBacklog = false

type listenState struct {
	backlog     int
	ipv6        bool
	domainKnown bool // always false: Listen goes by the address
}

// relisten cannot read the backlog back here; Backlog options are refused
// by New, so n is always 0.
func relisten(rc syscall.RawConn, n int) (listenState, error) {
	if n > 0 {
		return listenState{}, fmt.Errorf("listener: setting the backlog: %w", errUnsupported)
	}
	return listenState{}, nil
}

func queueLen(syscall.RawConn) (int, error) {
	return 0, fmt.Errorf("listener: reading the accept queue length: %w", errUnsupported)
}

func acceptQueued(syscall.RawConn) ([]*net.TCPConn, error) {
	return nil, fmt.Errorf("listener: draining the accept queue: %w", errUnsupported)
}

func migrateRequests() (bool, error) {
	return false, fmt.Errorf("listener: tcp_migrate_req is a Linux sysctl: %w", errUnsupported)
}
