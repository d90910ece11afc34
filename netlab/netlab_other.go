//go:build !linux

package netlab

import (
	"errors"
	"fmt"
	"runtime"
)

type labSys struct{}

type hostSys struct{}

func newLab(config) (*Lab, error) {
	return nil, fmt.Errorf("netlab: network namespaces and TUN devices need Linux, not %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

func (l *Lab) close() error { return nil }

func (h *Host) run(func() error) error {
	return fmt.Errorf("netlab: host %s: network namespaces need Linux, not %s: %w", h.name, runtime.GOOS, errors.ErrUnsupported)
}

func readSysctl(string) (string, error) { return "", errors.ErrUnsupported }

func writeSysctl(string, string) error { return errors.ErrUnsupported }
