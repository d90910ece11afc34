//go:build unix

package pool_test

import (
	"testing"

	"github.com/nettune/nettune/pool"
)

// BenchmarkLivenessProbe is the cost of one liveness check on an idle
// loopback TCP connection: what a Get pays for a conn idle past the
// threshold.
func BenchmarkLivenessProbe(b *testing.B) {
	s := startServer(b, "127.0.0.1:0", nil)
	cp, err := pool.NewConnPool(nil, "tcp", s.addr())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cp.Shutdown(b.Context()) })
	warm(b, cp, 1)
	c, err := cp.Get(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := pool.ProbeConn(c); err != nil {
			b.Fatal(err)
		}
	}
}
