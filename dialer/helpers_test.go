package dialer_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// wait is how long a test waits for something that should happen at once:
// generous, since the machine is shared and loaded.
const wait = 30 * time.Second

// listen listens on addr with Multipath TCP off and closes the listener
// when the test ends. Connections complete in the kernel's backlog; tests
// that need the server side call accept.
func listen(t testing.TB, network, addr string) *net.TCPListener {
	t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), network, addr)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// listenBoth listens on 127.0.0.1 and [::1] on one port, the way a server
// reachable by a dual-stack name does.
func listenBoth(t testing.TB) (v4, v6 *net.TCPListener, port uint16) {
	t.Helper()
	for range 20 {
		v4 = listen(t, "tcp4", "127.0.0.1:0")
		port = uint16(v4.Addr().(*net.TCPAddr).Port)
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		ln, err := lc.Listen(context.Background(), "tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), port).String())
		if err == nil {
			t.Cleanup(func() { ln.Close() })
			return v4, ln.(*net.TCPListener), port
		}
		v4.Close()
	}
	t.Fatal("no port free on both 127.0.0.1 and [::1]")
	return nil, nil, 0
}

// unusedPort returns a port on which nothing listens on 127.0.0.1 or
// [::1], so that a dial there is refused at once.
func unusedPort(t testing.TB) uint16 {
	t.Helper()
	v4, v6, port := listenBoth(t)
	v4.Close()
	v6.Close()
	return port
}

// fakeResolver answers every name with its addresses, in order.
type fakeResolver struct {
	addrs []netip.Addr
	err   error

	mu       sync.Mutex // guards networks
	networks []string
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.networks = append(r.networks, network)
	r.mu.Unlock()
	if r.err != nil {
		return nil, &net.DNSError{Err: r.err.Error(), Name: host, UnwrapErr: r.err}
	}
	return append([]netip.Addr(nil), r.addrs...), nil
}

func resolverFor(addrs ...string) *fakeResolver {
	r := &fakeResolver{}
	for _, a := range addrs {
		r.addrs = append(r.addrs, netip.MustParseAddr(a))
	}
	return r
}

// recorder keeps what it is given.
type recorder struct {
	mu  sync.Mutex // guards got
	got []time.Duration
}

func (r *recorder) Record(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
}

func (r *recorder) recorded() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.got...)
}

var errRefused = errors.New("refused by the test")

// hostAddr is address with its host replaced by a name the fake resolver
// answers.
func hostAddr(port uint16) string {
	return net.JoinHostPort("dual.example", strconv.Itoa(int(port)))
}

func strconvItoa(p uint16) string { return strconv.Itoa(int(p)) }
