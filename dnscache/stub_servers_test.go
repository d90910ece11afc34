package dnscache

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// The rotation counter passes 2^31 after as many queries; where int is 32
// bits (GOARCH=386, arm) it must not turn into a negative index.
func TestRotationKeepsWorkingWhenItsCounterPassesTwoToThe31(t *testing.T) {
	a, b := startServer(t), startServer(t)
	a.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
	b.SetAddrs("svc.test", time.Minute, addrs("127.0.0.2")...)
	p := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "nameserver " + a.Addr().String() + "\nnameserver " + b.Addr().String() + "\noptions rotate timeout:1 attempts:1\n"
	require.NoError(t, os.WriteFile(p, []byte(conf), 0o644))
	rc, err := readResolvConf(p)
	require.NoError(t, err)
	s := &stubSource{conf: rc}
	s.next.Store(math.MaxInt32 - 1)
	for range 4 {
		got, _, err := s.lookup(testCtx(t), "ip4", "svc.test.")
		require.NoError(t, err)
		assert.Equal(t, addrs("127.0.0.2"), got)
	}
	assert.Equal(t, 2, a.Queries("svc.test", dnsmessage.TypeA), "the queries alternate")
	assert.Equal(t, 2, b.Queries("svc.test", dnsmessage.TypeA), "the queries alternate")
}
