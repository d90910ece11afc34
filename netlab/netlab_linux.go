package netlab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// devName is the name of each host's device toward the other host.
const devName = "lab0"

type labSys struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex // guards err
	err  error      // the first error of a device read
}

type hostSys struct {
	mu  sync.RWMutex // guards ns
	ns  int          // fd of the host's network namespace; -1 once closed
	dev *os.File     // the host's TUN device
}

func newLab(c config) (_ *Lab, err error) {
	lab := &Lab{sys: labSys{done: make(chan struct{})}}
	v6 := ipv6Available()
	for i := range c.hosts {
		h := &Host{
			name:  string(rune('a' + i)),
			index: i,
			addr:  netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}),
			sys:   hostSys{ns: -1},
		}
		if v6 {
			h.addr6 = netip.AddrFrom16([16]byte{0x20, 0x01, 0, 0x02, 15: byte(i + 1)})
		}
		lab.hosts = append(lab.hosts, h)
	}
	defer func() {
		if err != nil { // no goroutine has started: release what exists
			lab.closeHosts()
		}
	}()
	lab.links = make([][]*Link, c.hosts)
	for i, from := range lab.hosts {
		lab.links[i] = make([]*Link, c.hosts)
		for j, to := range lab.hosts {
			if i == j {
				continue
			}
			lab.links[i][j], err = newLink(from.name+"->"+to.name, c.profile, c.seed, uint64(i*MaxHosts+j))
			if err != nil {
				return nil, err
			}
		}
	}
	for _, h := range lab.hosts {
		if h.sys.ns, err = newNetns(); err != nil {
			if errors.Is(err, ErrNoPrivilege) {
				return nil, err
			}
			return nil, fmt.Errorf("netlab: host %s: %w", h.name, err)
		}
		if err = h.run(func() error { return h.setUp(c.profile.mtu()) }); err != nil {
			return nil, fmt.Errorf("netlab: host %s: %w", h.name, err)
		}
		for _, link := range lab.links[h.index] {
			if link != nil {
				link.syncMTU = func() error { return lab.syncMTU(h) }
			}
		}
	}
	for _, from := range lab.hosts {
		lab.sys.wg.Add(1)
		go func() {
			defer lab.sys.wg.Done()
			readLoop(from.sys.dev, func(pkt []byte) *Link { return lab.route(from, pkt) }, lab.fail)
		}()
		for _, to := range lab.hosts {
			if link := lab.links[from.index][to.index]; link != nil {
				lab.sys.wg.Add(1)
				go func() { defer lab.sys.wg.Done(); link.writeLoop(to.sys.dev, lab.sys.done) }()
			}
		}
	}
	return lab, nil
}

// route returns the link a packet from h goes on, by its destination
// address, or nil for an address of no other host.
func (l *Lab) route(h *Host, pkt []byte) *Link {
	var i int
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4 && pkt[16] == 198 && pkt[17] == 18 && pkt[18] == 0:
		i = int(pkt[19]) - 1
	case len(pkt) >= 40 && pkt[0]>>4 == 6 && l.hosts[0].addr6.IsValid() &&
		string(pkt[24:39]) == string(l.hosts[0].addr6.AsSlice()[:15]):
		i = int(pkt[39]) - 1
	default:
		return nil
	}
	if i < 0 || i >= len(l.hosts) {
		return nil
	}
	return l.links[h.index][i]
}

// syncMTU gives h's device the smallest MTU of the links out of h, so that
// its TCP segments fit every path.
func (l *Lab) syncMTU(h *Host) error {
	mtu := MaxMTU
	for _, link := range l.links[h.index] {
		if link != nil {
			mtu = min(mtu, link.Profile().mtu())
		}
	}
	return h.run(func() error { return setMTU(mtu) })
}

func (l *Lab) fail(err error) {
	l.sys.mu.Lock()
	defer l.sys.mu.Unlock()
	if l.sys.err == nil {
		l.sys.err = err
	}
}

func (l *Lab) close() error {
	close(l.sys.done)
	l.closeHosts()
	l.sys.wg.Wait()
	errs := []error{l.sys.err}
	for _, row := range l.links {
		for _, link := range row {
			if link != nil {
				errs = append(errs, link.firstErr())
			}
		}
	}
	return errors.Join(errs...)
}

// closeHosts closes the devices, which ends the reading goroutines, and
// the lab's fds of the namespaces.
func (l *Lab) closeHosts() {
	for _, h := range l.hosts {
		if h.sys.dev != nil {
			h.sys.dev.Close()
		}
		h.sys.mu.Lock()
		if h.sys.ns >= 0 {
			unix.Close(h.sys.ns)
			h.sys.ns = -1
		}
		h.sys.mu.Unlock()
	}
}

func ipv6Available() bool {
	_, err := os.Stat("/proc/sys/net/ipv6")
	return err == nil
}

// newNetns creates a network namespace and returns an fd of it. The work
// happens on a locked thread that goes back to its namespace afterwards;
// if it cannot, the thread is discarded.
func newNetns() (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, &os.PathError{Op: "open", Path: "/proc/thread-self/ns/net", Err: err}}
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, unshareError(err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			err = &os.PathError{Op: "open", Path: "/proc/thread-self/ns/net", Err: err}
		}
		if serr := unix.Setns(orig, unix.CLONE_NEWNET); serr != nil {
			// The thread stays locked: it ends with this goroutine.
			if fd >= 0 {
				unix.Close(fd)
			}
			ch <- result{-1, fmt.Errorf("return to the process's namespace: %w", os.NewSyscallError("setns", serr))}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

// unshareError explains why unshare(CLONE_NEWNET) failed. Without
// CAP_SYS_ADMIN the way out would be an unprivileged user namespace, but
// unshare(CLONE_NEWUSER) refuses a multithreaded process (EINVAL), and
// every Go program has several threads before main runs; a child process
// could make one, but this process could not enter it (setns into a user
// namespace is refused to a multithreaded process too). It tries anyway,
// on a thread it then discards, and reports both errnos.
func unshareError(err error) error {
	if !errors.Is(err, unix.EPERM) {
		return os.NewSyscallError("unshare CLONE_NEWNET", err)
	}
	userErr := tryUserNamespace()
	return fmt.Errorf("%w (unshare CLONE_NEWNET: %w); an unprivileged user namespace is no way out "+
		"from a Go process: unshare CLONE_NEWUSER|CLONE_NEWNET: %v (the kernel refuses it to a multithreaded "+
		"process, and a Go process always is one); run as root, or give the binary the capabilities "+
		"(setcap cap_sys_admin,cap_net_admin+ep, with /dev/net/tun open to its user), or start it in namespaces of its own: "+
		"unshare --user --map-root-user --net <program> (needs /dev/net/tun open to all, mode 0666, and kernel.unprivileged_userns_clone=1 where that sysctl exists)",
		ErrNoPrivilege, err, userErr)
}

// tryUserNamespace attempts unshare(CLONE_NEWUSER|CLONE_NEWNET) on a
// thread that is never handed back to the scheduler: whatever it ends in,
// the thread exits with its goroutine.
func tryUserNamespace() error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		err := unix.Unshare(unix.CLONE_NEWUSER | unix.CLONE_NEWNET)
		if err != nil {
			err = os.NewSyscallError("unshare", err)
		}
		ch <- err
	}()
	if err := <-ch; err != nil {
		return err
	}
	return errors.New("succeeded, but the namespace lives on one thread only and no other thread may enter it")
}

// run calls fn in the host's namespace on a locked thread.
func (h *Host) run(fn func() error) error {
	return inNetns(h.enter, fn)
}

// enter moves the calling thread into the host's namespace.
func (h *Host) enter() error {
	h.sys.mu.RLock()
	defer h.sys.mu.RUnlock()
	if h.sys.ns < 0 {
		return fmt.Errorf("netlab: host %s: %w", h.name, ErrClosed)
	}
	if err := unix.Setns(h.sys.ns, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netlab: host %s: %w", h.name, os.NewSyscallError("setns", err))
	}
	return nil
}

type runResult struct {
	err      error
	panicked bool
	value    any
	stack    []byte
}

// inNetns calls fn on a goroutine locked to a thread that enter has moved
// into a namespace, and moves the thread back before unlocking it.
func inNetns(enter func() error, fn func() error) error {
	ch := make(chan runResult, 1)
	go func() {
		runtime.LockOSThread()
		var r runResult
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- runResult{err: &os.PathError{Op: "open", Path: "/proc/thread-self/ns/net", Err: err}}
			return
		}
		if err := enter(); err != nil {
			unix.Close(orig)
			runtime.UnlockOSThread()
			ch <- runResult{err: err}
			return
		}
		returned := false
		defer func() {
			if !returned {
				if v := recover(); v != nil {
					r = runResult{panicked: true, value: v, stack: debug.Stack()}
				} else {
					r = runResult{err: errors.New("netlab: the func run on a host called runtime.Goexit (t.FailNow or t.Fatal?); call those on the test's goroutine")}
				}
			}
			serr := unix.Setns(orig, unix.CLONE_NEWNET)
			unix.Close(orig)
			if serr != nil {
				// The thread stays locked: Go ends it with this goroutine.
				r.err = errors.Join(r.err, fmt.Errorf("netlab: return to the process's namespace: %w", os.NewSyscallError("setns", serr)))
			} else {
				runtime.UnlockOSThread()
			}
			ch <- r
		}()
		r.err = fn()
		returned = true
	}()
	r := <-ch
	if r.panicked {
		panic(&PanicError{Value: r.value, Stack: r.stack})
	}
	return r.err
}

// setUp runs in the host's namespace: it brings lo up, creates the TUN
// device with the host's addresses and brings it up. The kernel then adds
// the only routes the host has: to the lab's /24 and /64 via the device.
func (h *Host) setUp(mtu int) error {
	if err := setFlagsUp("lo"); err != nil {
		return err
	}
	if h.addr6.IsValid() {
		// No link-local address, no DAD, no router solicitations: the
		// device carries only the lab's own traffic.
		for k, v := range map[string]string{
			"net.ipv6.conf.default.addr_gen_mode":        "1",
			"net.ipv6.conf.default.accept_dad":           "0",
			"net.ipv6.conf.default.accept_ra":            "0",
			"net.ipv6.conf.default.router_solicitations": "0",
		} {
			if err := writeSysctl(k, v); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
			}
		}
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		err = &os.PathError{Op: "open", Path: "/dev/net/tun", Err: err}
		if errors.Is(err, unix.EACCES) {
			return fmt.Errorf("%w (in a user namespace of its own the process needs /dev/net/tun open to all, mode 0666, as most distributions ship it)", err)
		}
		return err
	}
	ifr, err := unix.NewIfreq(devName)
	if err != nil {
		unix.Close(fd)
		return err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("ioctl TUNSETIFF", err)
	}
	h.sys.dev = os.NewFile(uintptr(fd), "/dev/net/tun:"+h.name)
	if err := setMTU(mtu); err != nil {
		return err
	}
	if err := setAddr4(h.addr); err != nil {
		return err
	}
	if err := setFlagsUp(devName); err != nil {
		return err
	}
	if h.addr6.IsValid() {
		if err := setAddr6(h.addr6); err != nil {
			return err
		}
		return awaitAddr6(h.addr6)
	}
	return nil
}

// awaitAddr6 waits until a is usable. Even without duplicate address
// detection the kernel marks a new IPv6 address tentative until a work
// item runs, and bind fails meanwhile.
func awaitAddr6(a netip.Addr) error {
	const tentative = 0x40 // IFA_F_TENTATIVE
	want := fmt.Sprintf("%x", a.As16())
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile("/proc/thread-self/net/if_inet6")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 6 && f[0] == want {
				flags, err := strconv.ParseUint(f[4], 16, 32)
				if err == nil && flags&tentative == 0 {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("address %v still tentative or absent after 5s", a)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func withSocket(family int, fn func(fd int) error) error {
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	return fn(fd)
}

func setFlagsUp(dev string) error {
	return withSocket(unix.AF_INET, func(fd int) error {
		ifr, err := unix.NewIfreq(dev)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return os.NewSyscallError("ioctl SIOCGIFFLAGS "+dev, err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return os.NewSyscallError("ioctl SIOCSIFFLAGS "+dev, err)
		}
		return nil
	})
}

// setMTU sets the lab device's MTU in the current namespace.
func setMTU(mtu int) error {
	return withSocket(unix.AF_INET, func(fd int) error {
		ifr, err := unix.NewIfreq(devName)
		if err != nil {
			return err
		}
		ifr.SetUint32(uint32(mtu))
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
			return fmt.Errorf("set MTU %d: %w", mtu, os.NewSyscallError("ioctl SIOCSIFMTU", err))
		}
		return nil
	})
}

func setAddr4(a netip.Addr) error {
	return withSocket(unix.AF_INET, func(fd int) error {
		ifr, err := unix.NewIfreq(devName)
		if err != nil {
			return err
		}
		b := a.As4()
		if err := ifr.SetInet4Addr(b[:]); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFADDR, ifr); err != nil {
			return os.NewSyscallError("ioctl SIOCSIFADDR "+a.String(), err)
		}
		if err := ifr.SetInet4Addr([]byte{255, 255, 255, 0}); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFNETMASK, ifr); err != nil {
			return os.NewSyscallError("ioctl SIOCSIFNETMASK", err)
		}
		return nil
	})
}

// in6Ifreq is struct in6_ifreq of linux/ipv6.h.
type in6Ifreq struct {
	addr      [16]byte
	prefixLen uint32
	ifindex   int32
}

func setAddr6(a netip.Addr) error {
	return withSocket(unix.AF_INET6, func(fd int) error {
		ifr, err := unix.NewIfreq(devName)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
			return os.NewSyscallError("ioctl SIOCGIFINDEX", err)
		}
		req := in6Ifreq{addr: a.As16(), prefixLen: 64, ifindex: int32(ifr.Uint32())}
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCSIFADDR, uintptr(unsafe.Pointer(&req)))
		if errno != 0 {
			return os.NewSyscallError("ioctl SIOCSIFADDR "+a.String(), errno)
		}
		return nil
	})
}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

// readSysctl and writeSysctl act on the calling thread's namespace: a
// file under /proc/sys/net belongs to the namespace of the thread that
// opens it.
func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	return strings.TrimSpace(string(b)), err
}

func writeSysctl(key, value string) error {
	f, err := os.OpenFile(sysctlPath(key), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
