//go:build !linux

package sockopt_test

import (
	"context"
	"net"
	"testing"

	"github.com/nettune/nettune/sockopt"
)

func supportsTypical() bool { return false }

func listenTCP(t testing.TB, mptcp bool, opts ...sockopt.Option) *net.TCPListener {
	t.Helper()
	lc := net.ListenConfig{Control: sockopt.ListenControl(opts...)}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}
