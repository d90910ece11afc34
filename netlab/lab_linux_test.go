package netlab_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/nettune/nettune/internal/servetest"
	"github.com/nettune/nettune/netlab"
	"github.com/nettune/nettune/sockopt"
)

// newLab starts a lab closed at the end of the test, or skips the test
// with the reason where labs cannot run.
func newLab(t testing.TB, opts ...netlab.Option) *netlab.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netlab: network namespaces need root (CAP_SYS_ADMIN); not root")
	}
	lab, err := netlab.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, lab.Close(), "Close") })
	return lab
}

// serve runs handle on each conn ln accepts until the test ends or stop.
func serve(t testing.TB, ln net.Listener, handle func(net.Conn)) (stop func()) {
	return servetest.Serve(t, ln, handle)
}

func echo(c net.Conn) { io.Copy(c, c) }

func listen(t testing.TB, h *netlab.Host, handle func(net.Conn)) net.Listener {
	ln, _ := listenStop(t, h, handle)
	return ln
}

func listenStop(t testing.TB, h *netlab.Host, handle func(net.Conn)) (net.Listener, func()) {
	t.Helper()
	ln, err := h.Listen("tcp", netip.AddrPortFrom(h.Addr(), 0).String())
	require.NoError(t, err)
	return ln, serve(t, ln, handle)
}

func dial(t testing.TB, h *netlab.Host, addr string) *net.TCPConn {
	t.Helper()
	c, err := h.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func roundTrip(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	_, err := io.WriteString(c, msg)
	require.NoError(t, err)
	buf := make([]byte, len(msg))
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, msg, string(buf))
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestHostsTalkThroughTheLinkAndRouteNowhereElse(t *testing.T) {
	lab := newLab(t)
	a, b := lab.A(), lab.B()
	assert.Equal(t, netip.MustParseAddr("198.18.0.1"), a.Addr())
	assert.Equal(t, netip.MustParseAddr("198.18.0.2"), b.Addr())
	ln := listen(t, b, echo)
	roundTrip(t, dial(t, a, ln.Addr().String()), "over IPv4")
	if b.Addr6().IsValid() {
		ln6, err := b.Listen("tcp", netip.AddrPortFrom(b.Addr6(), 0).String())
		require.NoError(t, err)
		serve(t, ln6, echo)
		roundTrip(t, dial(t, a, ln6.Addr().String()), "over IPv6")
	}
	assert.Equal(t, "a->b", lab.Link(a, b).String())
	assert.Equal(t, "b->a", lab.Link(b, a).String())
	assert.Nil(t, lab.Link(a, a), "no link from a host to itself")
	assert.Nil(t, lab.Link(a, &netlab.Host{}), "no link to a host of another lab")
	assert.NotZero(t, lab.Link(a, b).Stats().Delivered)
	assert.NotZero(t, lab.Link(b, a).Stats().Delivered)

	labNet := netip.MustParsePrefix("198.18.0.0/15")
	labNet6 := netip.MustParsePrefix("2001:2::/48")
	for _, h := range []*netlab.Host{a, b} {
		require.NoError(t, h.Run(func() error {
			ifaces, err := net.Interfaces()
			if err != nil {
				return err
			}
			for _, ifi := range ifaces {
				assert.Contains(t, []string{"lo", "lab0"}, ifi.Name, "host %s has only lo and the lab's device", h)
				addrs, err := ifi.Addrs()
				if err != nil {
					return err
				}
				for _, ad := range addrs {
					p := netip.MustParsePrefix(ad.String())
					if ifi.Name == "lab0" {
						assert.True(t, labNet.Contains(p.Addr()) || labNet6.Contains(p.Addr()), "host %s: %v is a lab address", h, p)
					} else {
						assert.True(t, p.Addr().IsLoopback(), "host %s: %v on lo", h, p)
					}
				}
			}
			return nil
		}))
		for _, r := range routes(t, h) {
			assert.True(t, r.dev == "lo" || (r.dev == "lab0" && (labNet.Overlaps(r.dst) || labNet6.Overlaps(r.dst) ||
				r.dst.Addr().IsMulticast() || r.dst.Addr().IsLinkLocalUnicast())),
				"host %s has a route to %v via %s", h, r.dst, r.dev)
		}
		// Nothing beyond the lab is reachable.
		for _, outside := range []string{"198.19.0.1:80", "127.0.0.2:1"} {
			_, err := h.DialContext(context.Background(), "tcp", outside)
			assert.Error(t, err, "host %s dialing %s", h, outside)
		}
	}
	_, err := net.InterfaceByName("lab0")
	assert.Error(t, err, "the process's own namespace has no lab device")
}

type route struct {
	dst netip.Prefix
	dev string
}

// routes reads the host's IPv4 and IPv6 routing tables.
func routes(t testing.TB, h *netlab.Host) []route {
	var out []route
	require.NoError(t, h.Run(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/route")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
			f := strings.Fields(line)
			var d, m [4]byte
			for i := range 4 {
				d[i] = hexByte(f[1][6-2*i:])
				m[i] = hexByte(f[7][6-2*i:])
			}
			bits := 0
			for _, x := range m {
				bits += popcount(x)
			}
			out = append(out, route{netip.PrefixFrom(netip.AddrFrom4(d), bits), f[0]})
		}
		b, err = os.ReadFile("/proc/thread-self/net/ipv6_route")
		if err != nil {
			return nil // no IPv6
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(line)
			var d [16]byte
			for i := range 16 {
				d[i] = hexByte(f[0][2*i:])
			}
			bits := int(hexByte(f[1]))
			out = append(out, route{netip.PrefixFrom(netip.AddrFrom16(d), bits), f[9]})
		}
		return nil
	}))
	require.NotEmpty(t, out)
	return out
}

func hexByte(s string) byte {
	v := func(c byte) byte {
		if c >= 'a' {
			return c - 'a' + 10
		}
		if c >= 'A' {
			return c - 'A' + 10
		}
		return c - '0'
	}
	return v(s[0])<<4 | v(s[1])
}

func popcount(x byte) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func TestTheKernelSeesAtLeastTheConfiguredRTT(t *testing.T) {
	const oneWay = 10 * time.Millisecond
	lab := newLab(t, netlab.Path(netlab.Profile{Delay: oneWay}))
	ln := listen(t, lab.B(), echo)
	c := dial(t, lab.A(), ln.Addr().String())
	for range 5 {
		roundTrip(t, c, "ping")
	}
	ti, err := sockopt.ReadTCPInfo(c)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, ti.MinRTT, 2*oneWay, "TCP_INFO min RTT")
	assert.GreaterOrEqual(t, ti.RTT, 2*oneWay, "TCP_INFO smoothed RTT")
	st := lab.Link(lab.A(), lab.B()).Stats()
	assert.GreaterOrEqual(t, st.Delay.Min(), oneWay, "every packet was held at least the delay")
	t.Logf("TCP_INFO rtt %v min %v; link a->b added p50 %v p99 %v, late p50 %v p99 %v",
		ti.RTT, ti.MinRTT, st.Delay.Quantile(0.5), st.Delay.Quantile(0.99), st.Late.Quantile(0.5), st.Late.Quantile(0.99))

	// A profile changed at run time holds from the next packet on.
	require.NoError(t, lab.SetProfile(netlab.Profile{Delay: 3 * oneWay}))
	start := time.Now()
	roundTrip(t, c, "slower")
	assert.GreaterOrEqual(t, time.Since(start), 6*oneWay)
}

func TestABulkTransferNeverExceedsTheRate(t *testing.T) {
	const (
		rate  = 8_000_000 // bit/s: 1 MB/s
		queue = 32 << 10
		total = 768 << 10
	)
	lab := newLab(t, netlab.Path(netlab.Profile{Delay: 2 * time.Millisecond, Rate: rate, QueueBytes: queue}))
	type result struct {
		n          int64
		first, end time.Time
		err        error
	}
	done := make(chan result, 1)
	ln := listen(t, lab.B(), func(c net.Conn) {
		var r result
		buf := make([]byte, 64<<10)
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		for {
			n, err := c.Read(buf)
			if n > 0 && r.n == 0 {
				r.first = time.Now()
			}
			r.n += int64(n)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					r.err = err
				}
				break
			}
		}
		r.end = time.Now()
		done <- r
	})
	c := dial(t, lab.A(), ln.Addr().String())
	_, err := c.Write(make([]byte, total))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("no end of transfer in 60 s")
	}
	require.NoError(t, r.err)
	require.Equal(t, int64(total), r.n)
	elapsed := r.end.Sub(r.first)
	// Deliveries are spaced by their transmission time; a late wake-up
	// can bunch at most a queue's worth, and the first read may hold a
	// few packets.
	allowed := float64(rate)/8*elapsed.Seconds() + queue + 4*1500
	assert.LessOrEqual(t, float64(r.n), allowed, "%d bytes in %v at %d bit/s", r.n, elapsed, rate)
	st := lab.Link(lab.A(), lab.B()).Stats()
	t.Logf("%d bytes in %v: %.2f Mbit/s of %d; queue high water %d B / %d pkts; overflowed %d",
		r.n, elapsed, float64(r.n)*8/elapsed.Seconds()/1e6, rate/1_000_000, st.QueueHighWaterBytes, st.QueueHighWaterPackets, st.Overflowed)
	assert.LessOrEqual(t, st.QueueHighWaterBytes, queue)
}

// udpFlood sends n datagrams of size bytes from a to b and returns the
// link's stats once every datagram's fate is known.
func udpFlood(t *testing.T, lab *netlab.Lab, n, size int) netlab.Stats {
	a, b := lab.A(), lab.B()
	pc, err := b.ListenPacket("udp", netip.AddrPortFrom(b.Addr(), 0).String())
	require.NoError(t, err)
	defer pc.Close()
	c, err := a.Dial("udp", pc.LocalAddr().String())
	require.NoError(t, err)
	defer c.Close()
	before := lab.Link(a, b).Stats()
	msg := make([]byte, size)
	for i := range n {
		if _, err := c.Write(msg); err != nil && !errors.Is(err, syscall.ENOBUFS) {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
	// The device's own queue may drop a few before the relay reads them:
	// wait until the link has read what it will and settled every one.
	var st netlab.Stats
	settled := func() bool {
		st = lab.Link(a, b).Stats()
		dropped := st.Lost + st.Overflowed + st.Blackholed + st.TooBig
		return st.Sent > before.Sent && st.Sent == st.Delivered+dropped
	}
	waitFor(t, "every datagram settled", settled)
	// Settled twice in a row 100 ms apart: no more in the device. The flood
	// is finite, so this ends; the deadline is for a relay that never does.
	deadline := time.Now().Add(30 * time.Second)
	for {
		prev := st.Sent
		time.Sleep(100 * time.Millisecond)
		if settled() && st.Sent == prev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the link was still reading datagrams 30 s after the flood: %+v", st)
		}
	}
	return st
}

func TestLossCountersFollowTheRateWithinBinomialBounds(t *testing.T) {
	const p = 0.1
	lab := newLab(t, netlab.Path(netlab.Profile{Loss: p}), netlab.Seed(42))
	st := udpFlood(t, lab, 3000, 100)
	n := float64(st.Sent)
	mean, sd := n*p, math.Sqrt(n*p*(1-p))
	assert.InDelta(t, mean, float64(st.Lost), 5*sd, "%d of %d lost at p=%v", st.Lost, st.Sent, p)
	assert.Equal(t, st.Sent, st.Delivered+st.Lost)
	t.Logf("%d of %d lost (expected %.0f ± %.0f)", st.Lost, st.Sent, mean, sd)
}

func TestAFullQueueDropsOnTheLab(t *testing.T) {
	lab := newLab(t, netlab.Path(netlab.Profile{Rate: 1_000_000, QueuePackets: 10}))
	st := udpFlood(t, lab, 200, 1000)
	assert.Positive(t, st.Overflowed, "a burst of 200 into a queue of 10 at 1 Mbit/s")
	assert.Equal(t, 10, st.QueueHighWaterPackets)
	assert.Equal(t, st.Sent, st.Delivered+st.Overflowed)
}

func TestABlackholeFailsAConnWithUnackedDataAfterTheUserTimeoutAndNotBefore(t *testing.T) {
	const userTimeout = time.Second
	lab := newLab(t, netlab.Path(netlab.Profile{Delay: time.Millisecond}))
	ln := listen(t, lab.B(), echo)
	c := dial(t, lab.A(), ln.Addr().String())
	require.NoError(t, sockopt.Apply(c, sockopt.UserTimeout(userTimeout)))
	roundTrip(t, c, "before")
	require.NoError(t, lab.SetProfile(netlab.Profile{Blackhole: true}))
	start := time.Now()
	_, err := io.WriteString(c, "into the void")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(60*time.Second)))
	_, err = c.Read(make([]byte, 10))
	elapsed := time.Since(start)
	require.ErrorIs(t, err, syscall.ETIMEDOUT, "after %v", elapsed)
	assert.GreaterOrEqual(t, elapsed, userTimeout, "not before the user timeout")
	assert.Positive(t, lab.Link(lab.A(), lab.B()).Stats().Blackholed)
	t.Logf("ETIMEDOUT after %v (TCP_USER_TIMEOUT %v)", elapsed, userTimeout)
}

func TestSysctlsArePerHost(t *testing.T) {
	lab := newLab(t)
	a, b := lab.A(), lab.B()
	own, err := os.ReadFile("/proc/sys/net/ipv4/tcp_fastopen")
	require.NoError(t, err)
	before, err := b.Sysctl("net.ipv4.tcp_fastopen")
	require.NoError(t, err)
	require.NoError(t, a.SetSysctl("net.ipv4.tcp_fastopen", "3"))
	got, err := a.Sysctl("net.ipv4.tcp_fastopen")
	require.NoError(t, err)
	assert.Equal(t, "3", got)
	got, err = b.Sysctl("net.ipv4.tcp_fastopen")
	require.NoError(t, err)
	assert.Equal(t, before, got, "b keeps its own")
	now, err := os.ReadFile("/proc/sys/net/ipv4/tcp_fastopen")
	require.NoError(t, err)
	assert.Equal(t, string(own), string(now), "the process's namespace keeps its own")

	for _, key := range []string{"kernel.hostname", "net/ipv4/tcp_fastopen", "net.ipv4..x", "net.", "net.ipv4.no_such_sysctl"} {
		assert.Error(t, a.SetSysctl(key, "1"), key)
	}
	err = a.SetSysctl("net.ipv4.no_such_sysctl", "1")
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorContains(t, err, "netlab: host a: sysctl net.ipv4.no_such_sysctl=1")
}

func TestAnMTUChangeReachesTheSendingHostsDevice(t *testing.T) {
	lab := newLab(t)
	mtu := func(h *netlab.Host) int {
		var m int
		require.NoError(t, h.Run(func() error {
			ifi, err := net.InterfaceByName("lab0")
			if err == nil {
				m = ifi.MTU
			}
			return err
		}))
		return m
	}
	assert.Equal(t, netlab.DefaultMTU, mtu(lab.A()))
	require.NoError(t, lab.Link(lab.A(), lab.B()).SetProfile(netlab.Profile{MTU: 1280}))
	assert.Equal(t, 1280, mtu(lab.A()))
	assert.Equal(t, netlab.DefaultMTU, mtu(lab.B()), "the other direction keeps its MTU")
	ln := listen(t, lab.B(), echo)
	roundTrip(t, dial(t, lab.A(), ln.Addr().String()), strings.Repeat("x", 5000))
	assert.Zero(t, lab.Link(lab.A(), lab.B()).Stats().TooBig, "TCP segments to the device's MTU")
}

// netnsOf returns the namespace a /proc/…/ns/net link names, such as
// "net:[4026532890]".
func netnsOf(path string) string {
	s, _ := os.Readlink(path)
	return s
}

// referencesTo lists the tasks and fds of this process that hold one of
// the namespaces.
func referencesTo(nss map[string]bool) []string {
	var refs []string
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, p := range append(tasks, fds...) {
		if nss[netnsOf(p)] {
			refs = append(refs, p)
		}
	}
	named, _ := filepath.Glob("/run/netns/*")
	for _, p := range named {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			for ns := range nss {
				if strings.Contains(ns, "["+itoa(st.Ino)+"]") {
					refs = append(refs, p)
				}
			}
		}
	}
	return refs
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// labFDs lists the process's fds of TUN devices and network namespaces.
func labFDs(t testing.TB) []string {
	fds, err := filepath.Glob("/proc/self/fd/*")
	require.NoError(t, err)
	var out []string
	for _, f := range fds {
		if l, _ := os.Readlink(f); l == "/dev/net/tun" || strings.HasPrefix(l, "net:[") {
			out = append(out, f+" -> "+l)
		}
	}
	return out
}

func TestCloseLeavesNoNamespaceFdOrGoroutineEvenAfterAPanicOnAHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netlab: network namespaces need root (CAP_SYS_ADMIN); not root")
	}
	ownNS := netnsOf("/proc/thread-self/ns/net")
	goleak.VerifyNone(t)
	require.Empty(t, labFDs(t), "fds of TUN devices or namespaces before the lab")

	lab, err := netlab.New(netlab.Path(netlab.Profile{Delay: time.Millisecond}))
	require.NoError(t, err)
	nss := map[string]bool{}
	for _, h := range []*netlab.Host{lab.A(), lab.B()} {
		require.NoError(t, h.Run(func() error {
			nss[netnsOf("/proc/thread-self/ns/net")] = true
			return nil
		}))
	}
	require.Len(t, nss, 2, "two namespaces")
	require.NotContains(t, nss, ownNS)

	ln, stop := listenStop(t, lab.B(), echo)
	c := dial(t, lab.A(), ln.Addr().String())
	roundTrip(t, c, "hello")

	// A panic on a host comes back as a *PanicError, outside the namespace.
	func() {
		defer func() {
			v := recover()
			var pe *netlab.PanicError
			if assert.ErrorAs(t, v.(error), &pe) {
				assert.Equal(t, "boom", pe.Value)
				assert.Contains(t, string(pe.Stack), "lab_linux_test.go")
			}
		}()
		lab.A().Run(func() error { panic("boom") })
		t.Error("Run returned after a panic")
	}()
	err = lab.B().Run(func() error { runtime.Goexit(); return nil })
	assert.ErrorContains(t, err, "Goexit")
	// No thread of the process stayed in a lab namespace.
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	for _, p := range tasks {
		assert.NotContains(t, nss, netnsOf(p), p)
	}

	c.Close()
	stop()
	require.NoError(t, lab.Close())
	assert.NoError(t, lab.Close(), "a second Close")
	_, err = lab.A().Dial("tcp", ln.Addr().String())
	assert.ErrorIs(t, err, netlab.ErrClosed)

	waitFor(t, "no reference to a lab namespace", func() bool { return len(referencesTo(nss)) == 0 })
	assert.Empty(t, referencesTo(nss))
	assert.Equal(t, ownNS, netnsOf("/proc/thread-self/ns/net"))
	assert.Empty(t, labFDs(t), "fds of TUN devices or namespaces")
	goleak.VerifyNone(t)
}

func TestNewFailsClearlyWithoutPrivilege(t *testing.T) {
	if os.Getenv("NETLAB_UNPRIVILEGED_CHILD") == "1" {
		_, err := netlab.New()
		require.Error(t, err)
		assert.ErrorIs(t, err, netlab.ErrNoPrivilege)
		assert.ErrorIs(t, err, syscall.EPERM)
		t.Log(err)
		return
	}
	if os.Geteuid() != 0 {
		_, err := netlab.New()
		if err == nil {
			t.Skip("not root, yet namespaces work here (a user namespace of its own?)")
		}
		assert.ErrorIs(t, err, netlab.ErrNoPrivilege)
		t.Log(err)
		return
	}
	// As root: run this test again as nobody, from a copy of the test
	// binary that nobody may execute.
	dir, err := os.MkdirTemp("", "netlab")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "netlab.test")
	self, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, self, 0o755))
	cmd := execAsNobody(bin, "-test.run=^TestNewFailsClearlyWithoutPrivilege$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "NETLAB_UNPRIVILEGED_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "--- PASS")
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "netlab:") {
			t.Log(strings.TrimSpace(sc.Text()))
		}
	}
}

// execAsNobody prepares bin to run as user and group 65534, without
// supplementary groups.
func execAsNobody(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: false}}
	return cmd
}

// A third host at its own distance, as a resolver far from the client
// would be: each pair of hosts has a link of its own, with its own profile
// and counters.
func TestEachPairOfHostsHasALinkOfItsOwn(t *testing.T) {
	const near, far = 5 * time.Millisecond, 30 * time.Millisecond
	lab := newLab(t, netlab.Hosts(3), netlab.Path(netlab.Profile{Delay: near}))
	a, b, c := lab.A(), lab.B(), lab.Host(2)
	require.NotNil(t, c)
	assert.Nil(t, lab.Host(3))
	assert.Len(t, lab.Hosts(), 3)
	assert.Equal(t, "c", c.String())
	assert.Equal(t, netip.MustParseAddr("198.18.0.3"), c.Addr())
	require.NoError(t, lab.Link(a, c).SetProfile(netlab.Profile{Delay: far}))
	require.NoError(t, lab.Link(c, a).SetProfile(netlab.Profile{Delay: far}))

	rttTo := func(from, to *netlab.Host) time.Duration {
		ln := listen(t, to, echo)
		conn := dial(t, from, ln.Addr().String())
		for range 3 {
			roundTrip(t, conn, "ping")
		}
		ti, err := sockopt.ReadTCPInfo(conn)
		require.NoError(t, err)
		return ti.MinRTT
	}
	assert.GreaterOrEqual(t, rttTo(a, b), 2*near)
	assert.GreaterOrEqual(t, rttTo(a, c), 2*far)
	assert.GreaterOrEqual(t, rttTo(b, c), 2*near)
	if c.Addr6().IsValid() {
		ln := listen6(t, c)
		roundTrip(t, dial(t, a, ln.Addr().String()), "over IPv6 to c")
	}
	for _, pair := range [][2]*netlab.Host{{a, b}, {b, a}, {a, c}, {c, a}, {b, c}, {c, b}} {
		st := lab.Link(pair[0], pair[1]).Stats()
		assert.Positive(t, st.Delivered, "%v", lab.Link(pair[0], pair[1]))
		floor := near
		if pair[0] == c && pair[1] == a || pair[0] == a && pair[1] == c {
			floor = far
		}
		assert.GreaterOrEqual(t, st.Delay.Min(), floor, "%v", lab.Link(pair[0], pair[1]))
	}
	_, err := netlab.New(netlab.Hosts(1))
	assert.ErrorContains(t, err, "Hosts(1)")
	_, err = netlab.New(netlab.Hosts(netlab.MaxHosts + 1))
	assert.Error(t, err)
}

func listen6(t testing.TB, h *netlab.Host) net.Listener {
	t.Helper()
	ln, err := h.Listen("tcp", netip.AddrPortFrom(h.Addr6(), 0).String())
	require.NoError(t, err)
	serve(t, ln, echo)
	return ln
}

// Each host's device takes the smallest MTU of the links out of it.
func TestAHostsDeviceTakesTheSmallestMTUOfItsLinks(t *testing.T) {
	lab := newLab(t, netlab.Hosts(3))
	a, b, c := lab.A(), lab.B(), lab.Host(2)
	mtu := func(h *netlab.Host) int {
		var m int
		require.NoError(t, h.Run(func() error {
			ifi, err := net.InterfaceByName("lab0")
			if err == nil {
				m = ifi.MTU
			}
			return err
		}))
		return m
	}
	require.NoError(t, lab.Link(a, c).SetProfile(netlab.Profile{MTU: 1400}))
	assert.Equal(t, 1400, mtu(a))
	require.NoError(t, lab.Link(a, b).SetProfile(netlab.Profile{MTU: 1300}))
	assert.Equal(t, 1300, mtu(a))
	require.NoError(t, lab.Link(a, b).SetProfile(netlab.Profile{MTU: 9000}))
	assert.Equal(t, 1400, mtu(a), "back to the smallest of the others")
	assert.Equal(t, netlab.DefaultMTU, mtu(c))
}

// Close does not wait for a func still running on a host; that func keeps
// its namespace until it returns, and Run afterwards says the lab is closed.
func TestCloseDoesNotWaitForAFuncRunningOnAHost(t *testing.T) {
	lab := newLab(t)
	release := make(chan struct{})
	entered := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- lab.A().Run(func() error {
			entered <- netnsOf("/proc/thread-self/ns/net")
			<-release
			return nil
		})
	}()
	ns := <-entered
	require.NoError(t, lab.Close())
	close(release)
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	err := lab.A().Run(func() error { return nil })
	assert.ErrorIs(t, err, netlab.ErrClosed)
	waitFor(t, "no thread left in the host's namespace", func() bool {
		return len(referencesTo(map[string]bool{ns: true})) == 0
	})
}
