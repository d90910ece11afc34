//go:build !linux

package netnstest

import (
	"errors"
	"testing"
)

func runChild(t *testing.T) {
	t.Helper()
	t.Skip("netnstest: network namespaces need Linux")
}

func setUp(map[string]string) error {
	return errors.New("netnstest: network namespaces need Linux")
}
