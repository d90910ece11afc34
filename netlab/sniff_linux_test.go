package netlab_test

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/netlab"
)

// sniffer records the source and destination of every IP packet on every
// interface of the namespace it was opened in.
type sniffer struct {
	fd   int
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex // guards seen
	seen [][2]netip.Addr
}

func openSniffer(t testing.TB) *sniffer {
	t.Helper()
	proto := int(uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8) // network byte order
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	require.NoError(t, err, "AF_PACKET socket")
	s := &sniffer{fd: fd, done: make(chan struct{})}
	s.wg.Add(1)
	go s.loop()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *sniffer) loop() {
	defer s.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		select {
		case <-s.done:
			return
		default:
		}
		pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 20); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		for {
			n, _, err := unix.Recvfrom(s.fd, buf, 0)
			if err != nil {
				break
			}
			if src, dst, ok := ipAddrs(buf[:n]); ok {
				s.mu.Lock()
				s.seen = append(s.seen, [2]netip.Addr{src, dst})
				s.mu.Unlock()
			}
		}
	}
}

// stop ends the capture and returns what it saw.
func (s *sniffer) stop() [][2]netip.Addr {
	select {
	case <-s.done:
	default:
		close(s.done)
		s.wg.Wait()
		unix.Close(s.fd)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

func ipAddrs(b []byte) (src, dst netip.Addr, ok bool) {
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		return netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), true
	case len(b) >= 40 && b[0]>>4 == 6:
		return netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), true
	}
	return src, dst, false
}

var (
	labNet  = netip.MustParsePrefix("198.18.0.0/15")
	labNet6 = netip.MustParsePrefix("2001:2::/48")
)

func inLab(a netip.Addr) bool { return labNet.Contains(a) || labNet6.Contains(a) }

// Traffic of every kind in the lab (TCP both ways, UDP, IPv6) while a
// capture runs on every interface of the process's namespace and of each
// host's: the process's namespace sees no packet from or to a lab address,
// and a host sees none but its loopback's and the lab's.
func TestNoPacketLeavesOrEntersTheLab(t *testing.T) {
	lab := newLab(t, netlab.Path(netlab.Profile{Delay: time.Millisecond}))
	outside := openSniffer(t)
	var inside []*sniffer
	for _, h := range []*netlab.Host{lab.A(), lab.B()} {
		require.NoError(t, h.Run(func() error {
			inside = append(inside, openSniffer(t))
			return nil
		}))
	}

	ln := listen(t, lab.B(), echo)
	for range 3 {
		roundTrip(t, dial(t, lab.A(), ln.Addr().String()), "over the lab")
	}
	if lab.B().Addr6().IsValid() {
		ln6, err := lab.B().Listen("tcp", netip.AddrPortFrom(lab.B().Addr6(), 0).String())
		require.NoError(t, err)
		serve(t, ln6, echo)
		roundTrip(t, dial(t, lab.A(), ln6.Addr().String()), "over IPv6")
	}
	udpFlood(t, lab, 50, 200)
	// The capture in the process's namespace works: it sees this.
	probe, err := net.Dial("udp", "127.0.0.1:9")
	require.NoError(t, err)
	_, err = probe.Write([]byte("probe"))
	require.NoError(t, err)
	probe.Close()
	seen := outside.stop() // reads what was queued before it returns
	sawProbe := false
	for _, p := range seen {
		sawProbe = sawProbe || p[1] == netip.MustParseAddr("127.0.0.1")
		assert.False(t, inLab(p[0]) || inLab(p[1]), "the process's namespace saw %v -> %v", p[0], p[1])
	}
	assert.True(t, sawProbe, "the capture in the process's namespace saw the loopback probe")
	for i, s := range inside {
		seen := s.stop()
		assert.NotEmpty(t, seen, "host %d's capture saw the lab's traffic", i)
		for _, p := range seen {
			ok := (inLab(p[0]) && inLab(p[1])) || (p[0].IsLoopback() && p[1].IsLoopback())
			assert.True(t, ok, "host %d saw %v -> %v", i, p[0], p[1])
		}
	}
}
