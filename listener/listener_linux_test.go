package listener_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/internal/netnstest"
	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/sockopt"
)

func withFD(t testing.TB, c syscall.Conn, f func(fd int)) {
	t.Helper()
	rc, err := c.SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(fd uintptr) { f(int(fd)) }))
}

func soProtocol(t testing.TB, c syscall.Conn) int {
	var p int
	withFD(t, c, func(fd int) {
		var err error
		p, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		require.NoError(t, err)
	})
	return p
}

func TestGoResetsNoDelayAndKeepaliveOnConnsAcceptedByAPlainListener(t *testing.T) {
	// The trap ConnSockopt exists for: set on the listening socket, both
	// options are inherited by the accepted socket and then overwritten
	// by Go's Accept (DESIGN fact 2).
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		cerr := rc.Control(func(fd uintptr) {
			err = errors.Join(
				unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 0),
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1),
				unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 300))
		})
		return errors.Join(cerr, err)
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, c, err := dialAccept(t, ln, nil)
	require.NoError(t, err)
	readBack(t, c.(*net.TCPConn), sockopt.NoDelay(true), sockopt.KeepAliveIdle(15*time.Second))
}

func mptcpEnabled(t *testing.T) {
	t.Helper()
	v, err := netnstest.Sysctl("net.mptcp.enabled")
	if err != nil || v != "1" {
		t.Skipf("Multipath TCP is not enabled here (net.mptcp.enabled=%q, %v)", v, err)
	}
}

func TestMultipathTCPIsTurnedOffWhenAnOptionNeedsPlainTCP(t *testing.T) {
	mptcpEnabled(t)
	mpDialer := &net.Dialer{}
	mpDialer.SetMultipathTCP(true)

	// Go's default for this module (go 1.25 in go.mod): an MPTCP listener.
	plain := listen(t)
	assert.Equal(t, unix.IPPROTO_MPTCP, soProtocol(t, plain.TCPListener()), "Go listens with MPTCP by default")
	assert.True(t, plain.MultipathTCP())
	_, c, err := dialAccept(t, plain, mpDialer)
	require.NoError(t, err)
	assert.Equal(t, unix.IPPROTO_MPTCP, soProtocol(t, c.(*net.TCPConn)), "an MPTCP client gets an MPTCP accepted socket")

	// A TCP-only per-conn option turns it off: even an MPTCP client's
	// connection is a plain TCP socket on which the option holds.
	l := listen(t, listener.ConnSockopt(sockopt.UserTimeout(3*time.Second)))
	assert.Equal(t, unix.IPPROTO_TCP, soProtocol(t, l.TCPListener()), "SO_PROTOCOL of the listening socket")
	assert.False(t, l.MultipathTCP())
	_, c, err = dialAccept(t, l, mpDialer)
	require.NoError(t, err)
	assert.Equal(t, unix.IPPROTO_TCP, soProtocol(t, c.(*net.TCPConn)), "SO_PROTOCOL of the accepted socket")
	readBack(t, c.(*net.TCPConn), sockopt.UserTimeout(3*time.Second))

	// Asked for explicitly, with options MPTCP accepts, it stays on.
	on := listen(t, listener.MultipathTCP(true), listener.ConnSockopt(sockopt.NoDelay(false)))
	assert.Equal(t, unix.IPPROTO_MPTCP, soProtocol(t, on.TCPListener()))
	_, c, err = dialAccept(t, on, mpDialer)
	require.NoError(t, err)
	assert.Equal(t, unix.IPPROTO_MPTCP, soProtocol(t, c.(*net.TCPConn)))
	readBack(t, c.(*net.TCPConn), sockopt.NoDelay(false))

	off := listen(t, listener.MultipathTCP(false))
	assert.Equal(t, unix.IPPROTO_TCP, soProtocol(t, off.TCPListener()))
}

func TestBacklogIsTruncatedBySomaxconnAndSaysSo(t *testing.T) {
	if !netnstest.Enter(t, map[string]string{"net.core.somaxconn": "64"}) {
		return
	}
	l := listen(t, listener.Backlog(1000))
	got, asked := l.Backlog()
	assert.Equal(t, 64, got, "the kernel truncates to somaxconn")
	assert.Equal(t, 1000, asked)

	cfg, err := listener.New(listener.Backlog(1000), listener.StrictBacklog(true))
	require.NoError(t, err)
	_, err = cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	assert.ErrorIs(t, err, listener.ErrBacklogTruncated)
	var op *net.OpError
	assert.ErrorAs(t, err, &op)

	strictOK := listen(t, listener.Backlog(64), listener.StrictBacklog(true))
	got, _ = strictOK.Backlog()
	assert.Equal(t, 64, got)
}

func TestBacklogReallyLimitsTheAcceptQueue(t *testing.T) {
	// With backlog 2 the kernel queues 3 connections (it refuses when the
	// queue holds more than the backlog) and drops the next SYN.
	l := listen(t, listener.Backlog(2), listener.MultipathTCP(false))
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		clients = append(clients, c)
	}
	waitFor(t, "3 queued connections", func() bool {
		n, err := l.QueueLen()
		require.NoError(t, err)
		return n == 3
	})
	d := net.Dialer{Timeout: 300 * time.Millisecond}
	c, err := d.Dial("tcp", l.Addr().String())
	if err == nil {
		c.Close()
	}
	assert.Error(t, err, "a fourth connection does not fit a backlog of 2")
	n, err := l.QueueLen()
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

// netstat reads a TcpExt counter from /proc/net/netstat of the namespace.
func netstat(t testing.TB, name string) int64 {
	t.Helper()
	v, err := netnstest.Netstat("TcpExt", name)
	require.NoError(t, err)
	return v
}

const tcpiOptSynData = 0x20 // TCPI_OPT_SYN_DATA: the SYN carried data that was accepted

func TestFastOpenAcceptsDataInTheSYN(t *testing.T) {
	if !netnstest.Enter(t, map[string]string{"net.ipv4.tcp_fastopen": "3"}) {
		return
	}
	l := listen(t, listener.FastOpen(true), listener.Backlog(16))
	readBack(t, l.TCPListener(), sockopt.FastOpen(16))
	d := &net.Dialer{Control: sockopt.Control(sockopt.FastOpenConnect(true))}

	exchange := func() (synData bool) {
		ch := make(chan accepted, 1)
		go func() {
			c, err := l.Accept()
			ch <- accepted{c, err}
		}()
		client, err := d.Dial("tcp", l.Addr().String())
		require.NoError(t, err)
		defer client.Close()
		_, err = client.Write([]byte("hello"))
		require.NoError(t, err)
		a := <-ch
		require.NoError(t, a.err)
		defer a.c.Close()
		buf := make([]byte, 5)
		_, err = io.ReadFull(a.c, buf)
		require.NoError(t, err)
		assert.Equal(t, "hello", string(buf))
		withFD(t, a.c.(*net.TCPConn), func(fd int) {
			ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
			require.NoError(t, err)
			synData = ti.Options&tcpiOptSynData != 0
		})
		return synData
	}
	before := netstat(t, "TCPFastOpenPassive")
	assert.False(t, exchange(), "the first connection only fetches a cookie")
	assert.True(t, exchange(), "with the cookie, the data rides in the SYN")
	assert.Equal(t, int64(1), netstat(t, "TCPFastOpenPassive")-before, "TcpExtTCPFastOpenPassive counts the accepted SYN data")
}

func isRoot() bool { return os.Geteuid() == 0 }

// lockedThread runs f on a goroutine locked to its own OS thread, which
// f may change (capabilities, a seccomp filter): the goroutine never
// unlocks it, so Go discards the thread when f returns and no other code
// ever runs on it.
func lockedThread(f func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f()
	}()
	return done
}

// dropNetAdmin removes CAP_NET_ADMIN and CAP_NET_RAW from the effective set
// of the calling (locked) thread and returns a function that puts them
// back; they stay in the permitted set. Capabilities are per thread on
// Linux, and Accept sets the options from the calling goroutine's thread.
func dropNetAdmin() (restore func() error, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, err
	}
	saved := data
	for _, c := range []int{unix.CAP_NET_ADMIN, unix.CAP_NET_RAW} {
		data[c/32].Effective &^= 1 << (c % 32)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return nil, err
	}
	return func() error {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		return unix.Capset(&hdr, &saved[0])
	}, nil
}

// seccompArch returns the AUDIT_ARCH value of this machine for a seccomp
// filter, or skips the test.
func seccompArch(t testing.TB) uint32 {
	t.Helper()
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	}
	t.Skipf("no seccomp architecture constant for %s in this test", runtime.GOARCH)
	return 0
}

// refuseSetsockopt installs a seccomp filter on the calling (locked)
// thread that fails setsockopt(fd, level, name, …) with EPERM: a kernel
// that refuses one socket option, on this thread only.
func refuseSetsockopt(arch uint32, level, name int) error {
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		allw = 9 // index of the allow instruction
	)
	// struct seccomp_data: nr at 0, arch at 4, args[i] at 16+8i (the low
	// 32 bits first on these little-endian machines).
	prog := []unix.SockFilter{
		{Code: ld, K: 4},
		{Code: jeq, K: arch, Jf: allw - 2},
		{Code: ld, K: 0},
		{Code: jeq, K: unix.SYS_SETSOCKOPT, Jf: allw - 4},
		{Code: ld, K: 16 + 8*1},
		{Code: jeq, K: uint32(level), Jf: allw - 6},
		{Code: ld, K: 16 + 8*2},
		{Code: jeq, K: uint32(name), Jf: allw - 8},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0)
	runtime.KeepAlive(prog)
	return err
}

// logLines is an io.Writer for a *log.Logger that passes every line on
// a channel, after calling onWrite (from the goroutine that logs).
type logLines struct {
	lines   chan string
	onWrite func()
}

func newLogLines() *logLines { return &logLines{lines: make(chan string, 16)} }

func (w *logLines) Write(p []byte) (int, error) {
	if w.onWrite != nil {
		w.onWrite()
	}
	select {
	case w.lines <- string(p):
	default:
	}
	return len(p), nil
}

func (w *logLines) logger() *log.Logger { return log.New(w, "", 0) }

func TestAPerConnectionOptionTheKernelRefusesFailsListen(t *testing.T) {
	// A per-connection option that cannot be set fails Listen, naming the
	// option, instead of closing every accepted connection forever. As
	// root the options that need a capability are tried on a thread
	// without CAP_NET_ADMIN and CAP_NET_RAW.
	for _, tc := range []struct {
		o     sockopt.Option
		errno error
		caps  bool // needs a thread without the network capabilities
	}{
		{sockopt.Congestion("nettune-none"), syscall.ENOENT, false},
		{sockopt.Priority(7), syscall.EPERM, true},
		{sockopt.Mark(1), syscall.EPERM, true},
		{sockopt.Congestion("cubic"), syscall.EPERM, true}, // not in tcp_allowed_congestion_control here
	} {
		t.Run(tc.o.String(), func(t *testing.T) {
			if o, ok := tc.o.(sockopt.Congestion); ok && o == "cubic" {
				allowed, err := netnstest.Sysctl("net.ipv4.tcp_allowed_congestion_control")
				require.NoError(t, err)
				if slices.Contains(strings.Fields(allowed), "cubic") {
					t.Skipf("cubic is allowed to unprivileged sockets here (%q)", allowed)
				}
			}
			opt := listener.ConnSockopt(tc.o)
			cfg, err := listener.New(opt, listener.ErrorLog(log.New(io.Discard, "", 0)))
			require.NoError(t, err, "New makes no system call")
			var l *listener.Listener
			var capErr error
			<-lockedThread(func() {
				if tc.caps && isRoot() {
					if _, capErr = dropNetAdmin(); capErr != nil {
						return
					}
				}
				l, err = cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
			})
			require.NoError(t, capErr, "dropping CAP_NET_ADMIN")
			if l != nil {
				l.Close()
			}
			require.Error(t, err, "Listen fails at once for %v", tc.o)
			assert.Nil(t, l)
			var op *net.OpError
			require.ErrorAs(t, err, &op)
			assert.Equal(t, "listen", op.Op)
			var oe *listener.OptionError
			if assert.ErrorAs(t, err, &oe) {
				assert.Equal(t, opt, oe.Option, "the error names the listener option")
			}
			var se *sockopt.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.o, se.Option)
			assert.ErrorIs(t, err, tc.errno)
		})
	}
}

func TestAnOptionThatFailsOnOneAcceptedConnClosesItAndAcceptReturnsTheNext(t *testing.T) {
	if !isRoot() {
		t.Skip("needs CAP_NET_ADMIN to set SO_PRIORITY 7 at Listen and then lose it")
	}
	// SO_PRIORITY above 6 needs CAP_NET_ADMIN. Listen tries it with the
	// capability; the accepting thread then drops it, so the option fails
	// on the first accepted conn, and gets it back when the failure is
	// logged: a transient failure.
	w := newLogLines()
	l := listen(t, listener.ConnSockopt(sockopt.Priority(7)), listener.ErrorLog(w.logger()))
	first, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer first.Close()
	second, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer second.Close()

	var got accepted
	var capErr error
	done := lockedThread(func() {
		var restore func() error
		if restore, capErr = dropNetAdmin(); capErr != nil {
			return
		}
		w.onWrite = func() {
			if err := restore(); err != nil {
				capErr = err
			}
		}
		got.c, got.err = l.Accept()
	})
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		l.Close()
		<-done
		t.Fatal("Accept did not return the second connection")
	}
	require.NoError(t, capErr, "dropping or restoring CAP_NET_ADMIN")
	require.NoError(t, got.err, "one failed connection is not an Accept error (net/http would sleep before accepting again)")
	defer got.c.Close()
	assert.Equal(t, second.LocalAddr().String(), got.c.RemoteAddr().String(), "Accept went on to the next connection")
	readBack(t, got.c.(*net.TCPConn), sockopt.Priority(7))

	select {
	case line := <-w.lines:
		assert.Contains(t, line, "SO_PRIORITY", "the log line names the option")
		assert.Contains(t, line, first.LocalAddr().String(), "and the client")
	default:
		t.Error("the closed connection was not logged")
	}
	require.NoError(t, first.SetReadDeadline(deadline()))
	_, rerr := first.Read(make([]byte, 1))
	assert.True(t, errors.Is(rerr, io.EOF) || errors.Is(rerr, syscall.ECONNRESET), "the first client sees its conn closed, got %v", rerr)
}

func TestAKeepAliveSettingTheKernelRefusesOnAnAcceptedConnIsNotIgnored(t *testing.T) {
	// Go sets keepalive on accepted conns and ignores the errors; the
	// Listener sets the KeepAliveConfig option itself. A seccomp filter on the
	// accepting thread makes setsockopt(TCP_KEEPIDLE) fail: the conn must
	// be closed and logged, never handed out without its keepalive.
	w := newLogLines()
	l := listen(t, listener.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 33 * time.Second, Interval: 5 * time.Second, Count: 4}),
		listener.ErrorLog(w.logger()))
	client, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer client.Close()

	arch := seccompArch(t)
	var got accepted
	var filterErr error
	done := lockedThread(func() {
		if filterErr = refuseSetsockopt(arch, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); filterErr != nil {
			return
		}
		got.c, got.err = l.Accept()
	})
	select {
	case line := <-w.lines:
		assert.Contains(t, line, "TCP_KEEPIDLE", "the log line names the option")
		l.Close() // Accept is waiting for the next connection
		<-done
		assert.Nil(t, got.c)
		assert.ErrorIs(t, got.err, net.ErrClosed)
	case <-done:
		require.NoError(t, filterErr, "installing the seccomp filter")
		if got.c != nil {
			defer got.c.Close()
			idle, gerr := sockopt.Get(got.c.(*net.TCPConn), sockopt.KeepAliveIdle(0))
			t.Fatalf("Accept handed out a conn whose TCP_KEEPIDLE the kernel refused (it reads %v, %v): the error was ignored", idle, gerr)
		}
		t.Fatalf("Accept returned %v instead of going on to the next connection", got.err)
	case <-time.After(20 * time.Second):
		l.Close()
		<-done
		t.Fatal("neither a log line nor a connection")
	}
	require.NoError(t, client.SetReadDeadline(deadline()))
	_, rerr := client.Read(make([]byte, 1))
	assert.True(t, errors.Is(rerr, io.EOF) || errors.Is(rerr, syscall.ECONNRESET), "the client sees its conn closed, got %v", rerr)
}

func TestKeepAliveReadsBackWithGosMeaningOfZeroAndNegativeFields(t *testing.T) {
	sys := func(name string) time.Duration {
		v, err := netnstest.Sysctl(name)
		require.NoError(t, err)
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		return time.Duration(n)
	}
	idle, intvl, probes := sys("net.ipv4.tcp_keepalive_time"), sys("net.ipv4.tcp_keepalive_intvl"), sys("net.ipv4.tcp_keepalive_probes")
	for _, tc := range []struct {
		name string
		cfg  net.KeepAliveConfig
		want []sockopt.Option
	}{
		{"set", net.KeepAliveConfig{Enable: true, Idle: 33 * time.Second, Interval: 5 * time.Second, Count: 4},
			[]sockopt.Option{sockopt.KeepAlive(true), sockopt.KeepAliveIdle(33 * time.Second), sockopt.KeepAliveInterval(5 * time.Second), sockopt.KeepAliveCount(4)}},
		{"zero fields take Go's defaults", net.KeepAliveConfig{Enable: true},
			[]sockopt.Option{sockopt.KeepAlive(true), sockopt.KeepAliveIdle(15 * time.Second), sockopt.KeepAliveInterval(15 * time.Second), sockopt.KeepAliveCount(9)}},
		{"negative fields keep the system's", net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1},
			[]sockopt.Option{sockopt.KeepAlive(true), sockopt.KeepAliveIdle(idle * time.Second), sockopt.KeepAliveInterval(intvl * time.Second), sockopt.KeepAliveCount(int(probes))}},
		{"off", net.KeepAliveConfig{Enable: false}, []sockopt.Option{sockopt.KeepAlive(false)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, listener.KeepAliveConfig(tc.cfg))
			for range 2 {
				_, c, err := dialAccept(t, l, nil)
				require.NoError(t, err)
				readBack(t, c.(*net.TCPConn), tc.want...)
				withFD(t, c.(*net.TCPConn), func(fd int) { // and with getsockopt itself
					on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
					require.NoError(t, err)
					assert.Equal(t, tc.cfg.Enable, on != 0, "SO_KEEPALIVE")
					if tc.cfg.Enable && tc.cfg.Idle > 0 {
						v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
						require.NoError(t, err)
						assert.Equal(t, int(tc.cfg.Idle/time.Second), v, "TCP_KEEPIDLE")
						v, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
						require.NoError(t, err)
						assert.Equal(t, int(tc.cfg.Interval/time.Second), v, "TCP_KEEPINTVL")
						v, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
						require.NoError(t, err)
						assert.Equal(t, tc.cfg.Count, v, "TCP_KEEPCNT")
					}
				})
			}
		})
	}
}

func TestHTTPServerServesTheNextClientWithoutAnAcceptErrorWhenOneConnFails(t *testing.T) {
	if !isRoot() {
		t.Skip("needs CAP_NET_ADMIN to set SO_PRIORITY 7 at Listen and then lose it")
	}
	// As in the test above, SO_PRIORITY 7 fails on the first conn only.
	// http.Server must not see an Accept error (it would log it and sleep
	// 5 ms to 1 s before accepting again), and must serve the next client.
	w, serverLog := newLogLines(), newLogLines()
	l := listen(t, listener.ConnSockopt(sockopt.Priority(7)), listener.ErrorLog(w.logger()))
	srv := &http.Server{
		Handler:  http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, "ok") }),
		ErrorLog: serverLog.logger(),
	}
	var capErr, serveErr error
	done := lockedThread(func() {
		var restore func() error
		if restore, capErr = dropNetAdmin(); capErr != nil {
			return
		}
		w.onWrite = func() { _ = restore() }
		serveErr = srv.Serve(l)
	})
	defer func() {
		srv.Close()
		<-done
		require.NoError(t, capErr)
		assert.ErrorIs(t, serveErr, http.ErrServerClosed)
	}()

	first, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer first.Close()
	require.NoError(t, first.SetReadDeadline(deadline()))
	_, rerr := first.Read(make([]byte, 1))
	assert.True(t, errors.Is(rerr, io.EOF) || errors.Is(rerr, syscall.ECONNRESET), "the first client sees its conn closed, got %v", rerr)

	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := client.Get("http://" + l.Addr().String())
	require.NoError(t, err, "the next client is served")
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, "ok", string(body))
	select {
	case line := <-serverLog.lines:
		t.Errorf("http.Server logged %q", line)
	default:
	}
	select {
	case line := <-w.lines:
		assert.Contains(t, line, "SO_PRIORITY", "the listener logged the closed conn")
	default:
		t.Error("the closed connection was not logged")
	}
}

func TestFastOpenTrueMakesTheQueueAsLongAsTheBacklogReadBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []listener.Option
	}{
		{"Go's backlog (somaxconn)", []listener.Option{listener.FastOpen(true)}},
		{"the Backlog option", []listener.Option{listener.Backlog(37), listener.FastOpen(true)}},
		{"FastOpenQueue(0)", []listener.Option{listener.Backlog(41), listener.FastOpenQueue(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, tc.opts...)
			got, asked := l.Backlog()
			require.Positive(t, got)
			if asked > 0 {
				assert.Equal(t, asked, got, "precondition: below somaxconn")
			}
			readBack(t, l.TCPListener(), sockopt.FastOpen(got))
		})
	}
	l := listen(t, listener.FastOpen(true), listener.FastOpen(false))
	readBack(t, l.TCPListener(), sockopt.FastOpen(0))
}

// setSyncnt sets TCP_SYNCNT to n on the socket behind rc.
func setSyncnt(rc syscall.RawConn, n int) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = os.NewSyscallError("setsockopt", unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_SYNCNT, n))
	}); err != nil {
		return err
	}
	return serr
}

func TestControlSetsAnOptionThePackageDoesNotListAfterItsOwn(t *testing.T) {
	var sawReuseAddr atomic.Int32
	freebind := func(network, address string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR)
			if err != nil {
				serr = err
				return
			}
			sawReuseAddr.Store(int32(v))
			serr = os.NewSyscallError("setsockopt", unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1))
		}); err != nil {
			return err
		}
		return serr
	}
	l := listen(t, listener.Sockopt(sockopt.ReuseAddr(false)), listener.Control(freebind))
	withFD(t, l.TCPListener(), func(fd int) {
		v, err := unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_FREEBIND)
		require.NoError(t, err)
		assert.Equal(t, 1, v, "IP_FREEBIND set by Control reads back on the listening socket")
	})
	assert.Equal(t, int32(0), sawReuseAddr.Load(), "Control ran after Sockopt(SO_REUSEADDR=false), which undid Go's 1")

	cfg, err := listener.New(listener.Control(freebind))
	require.NoError(t, err)
	g, err := cfg.ListenGroup(context.Background(), "tcp", "127.0.0.1:0", 2)
	require.NoError(t, err)
	defer g.Close()
	for _, gl := range g.Listeners() {
		withFD(t, gl.TCPListener(), func(fd int) {
			v, err := unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_FREEBIND)
			require.NoError(t, err)
			assert.Equal(t, 1, v, "every listener of a group runs Control")
		})
	}
}

func TestAControlErrorFailsListenWithTheErrorInTheChain(t *testing.T) {
	bad := func(network, address string, rc syscall.RawConn) error { return setSyncnt(rc, 1000) } // > 127: EINVAL
	cfg, err := listener.New(listener.Control(bad))
	require.NoError(t, err)
	l, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.Error(t, err)
	assert.Nil(t, l)
	assert.ErrorIs(t, err, unix.EINVAL)
	var op *net.OpError
	require.ErrorAs(t, err, &op)
	var oe *listener.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "listener.Control(func)", oe.Option.String())
}

func TestConnControlRunsOnEveryAcceptedConnAndItsErrorClosesTheConn(t *testing.T) {
	set := func(rc syscall.RawConn) error { return setSyncnt(rc, 4) }
	l := listen(t, listener.ConnSockopt(sockopt.NoDelay(false)), listener.ConnControl(set))
	_, c, err := dialAccept(t, l, nil)
	require.NoError(t, err)
	withFD(t, c.(*net.TCPConn), func(fd int) {
		v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_SYNCNT)
		require.NoError(t, err)
		assert.Equal(t, 4, v, "TCP_SYNCNT set by ConnControl reads back on the accepted conn")
	})
	readBack(t, c.(*net.TCPConn), sockopt.NoDelay(false))

	var logged strings.Builder
	var mu sync.Mutex
	bad := func(rc syscall.RawConn) error { return setSyncnt(rc, 1000) }
	cfg, err := listener.New(listener.ConnControl(bad), listener.ErrorLog(log.New(lockedWriter{&mu, &logged}, "", 0)))
	require.NoError(t, err)
	bl, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err, "Listen does not try ConnControl")
	defer bl.Close()
	client, err := net.Dial("tcp", bl.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	good, err := net.Dial("tcp", bl.Addr().String())
	require.NoError(t, err)
	defer good.Close()
	// The first conn is closed by Accept, which then waits for the next;
	// close the listener once the client sees its conn closed.
	done := make(chan error, 1)
	go func() {
		_, err := bl.Accept()
		done <- err
	}()
	require.NoError(t, client.SetReadDeadline(deadline()))
	_, err = client.Read(make([]byte, 1))
	assert.Error(t, err, "the conn whose ConnControl failed is closed")
	bl.Close()
	assert.Error(t, <-done)
	mu.Lock()
	assert.Contains(t, logged.String(), "listener.ConnControl(func)", "the log line names the option")
	assert.Contains(t, logged.String(), "invalid argument")
	mu.Unlock()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
