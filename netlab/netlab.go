package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
)

// ErrNoPrivilege is wrapped by the error [New] returns when the process
// may not create network namespaces; the error says what would make it
// work.
var ErrNoPrivilege = errors.New("netlab: creating a network namespace needs CAP_SYS_ADMIN")

// ErrClosed is wrapped by the errors of a host's methods once its lab is
// closed.
var ErrClosed = errors.New("lab closed")

// Option configures [New].
type Option interface {
	apply(*config) error
	String() string
}

type config struct {
	profile Profile
	seed    uint64
	hosts   int
}

// MaxHosts is the most hosts a lab may have.
const MaxHosts = 16

type hostsOption int

// Hosts sets how many hosts the lab has, from 2 (the default) to
// [MaxHosts]. Host i (from 0) has the addresses 198.18.0.i+1 and
// 2001:2::i+1 and is named "a", "b", "c"…; every pair of hosts is joined
// by a link of its own.
func Hosts(n int) Option { return hostsOption(n) }

func (o hostsOption) String() string { return fmt.Sprintf("netlab.Hosts(%d)", int(o)) }
func (o hostsOption) apply(c *config) error {
	if o < 2 || o > MaxHosts {
		return fmt.Errorf("netlab: Hosts(%d): want 2 to %d hosts", int(o), MaxHosts)
	}
	c.hosts = int(o)
	return nil
}

type pathOption Profile

// Path sets the profile of both directions of the link when the lab
// starts. Without it the link is perfect (the zero [Profile]).
func Path(p Profile) Option { return pathOption(p) }

func (o pathOption) String() string { return "netlab.Path(" + Profile(o).String() + ")" }
func (o pathOption) apply(c *config) error {
	if err := Profile(o).Validate(); err != nil {
		return err
	}
	c.profile = Profile(o)
	return nil
}

type seedOption uint64

// Seed seeds the generators that draw loss and jitter, so that a run can
// be repeated. Without it the seed is 0: every lab draws the same
// sequence. Each direction draws from its own generator.
func Seed(s uint64) Option { return seedOption(s) }

func (o seedOption) String() string        { return fmt.Sprintf("netlab.Seed(%d)", uint64(o)) }
func (o seedOption) apply(c *config) error { c.seed = uint64(o); return nil }

// Lab is a set of hosts, each a network namespace of its own, every two
// of them joined by an emulated link, one [Link] per direction: Link(A, B)
// carries the packets A sends to B. A packet to a lab address that no
// host has is dropped, as a router without a route would (without an
// ICMP error). A Lab is safe for concurrent use.
type Lab struct {
	hosts []*Host
	links [][]*Link // links[from][to]; nil on the diagonal

	closeOnce sync.Once
	closeErr  error
	sys       labSys // the platform's part: devices, goroutines, namespaces
}

// A returns the first host, at 198.18.0.1 (and 2001:2::1).
func (l *Lab) A() *Host { return l.hosts[0] }

// B returns the second host, at 198.18.0.2 (and 2001:2::2).
func (l *Lab) B() *Host { return l.hosts[1] }

// Host returns host i, counted from 0, or nil if the lab has no such host.
func (l *Lab) Host(i int) *Host {
	if i < 0 || i >= len(l.hosts) {
		return nil
	}
	return l.hosts[i]
}

// Hosts returns the lab's hosts in order.
func (l *Lab) Hosts() []*Host { return append([]*Host(nil), l.hosts...) }

// Link returns the direction of the link that carries the packets from
// sends to to, or nil if they are not two different hosts of this lab.
func (l *Lab) Link(from, to *Host) *Link {
	if from == nil || to == nil || from == to || l.Host(from.index) != from || l.Host(to.index) != to {
		return nil
	}
	return l.links[from.index][to.index]
}

// SetProfile puts p in force on every link, in both directions.
func (l *Lab) SetProfile(p Profile) error {
	if err := p.Validate(); err != nil {
		return err
	}
	for _, row := range l.links {
		for _, link := range row {
			if link != nil {
				if err := link.SetProfile(p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Close stops the relay, closes both hosts' devices and the lab's handles
// on their namespaces, and waits for every goroutine the lab started. A
// namespace then disappears with the last socket still open in it: close
// the listeners and connections made on the hosts too. Close returns the
// first error the relay met while running, if any; calling it again
// returns the same.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

// Host is one host of the lab: a network namespace with a loopback
// interface and one device toward the other hosts. Sockets made on a host
// live in its namespace for good, whichever goroutine uses them later, so
// net, net/http, crypto/tls and nettune's packages work unchanged on the
// conns and listeners it returns. A Host is safe for concurrent use.
type Host struct {
	name  string
	index int
	addr  netip.Addr
	addr6 netip.Addr
	sys   hostSys
}

// String returns the host's name: "a", "b", "c"…
func (h *Host) String() string { return h.name }

// Addr returns the host's IPv4 address in the lab.
func (h *Host) Addr() netip.Addr { return h.addr }

// Addr6 returns the host's IPv6 address in the lab, or the zero Addr where
// the kernel has no IPv6.
func (h *Host) Addr6() netip.Addr { return h.addr6 }

// Run calls fn on a goroutine locked to an OS thread that has entered the
// host's network namespace, and returns fn's error. Sockets fn creates
// belong to the host. Goroutines fn starts do not run in the namespace:
// create every socket on fn's own goroutine (net's dual-stack dial races
// and its DNS lookups start goroutines, so dial IP addresses, or give a
// resolver a Dial made of [Host.DialContext]; nettune's dialer takes Run
// for its racing attempts through its RunAttempt option). The calling
// goroutine and the process's other threads never change namespace; a
// thread that could not return to its namespace is discarded.
//
// If fn panics, Run panics with a [*PanicError] holding the value and
// fn's stack, after leaving the namespace. If fn calls runtime.Goexit
// (t.FailNow does), Run returns an error saying so.
func (h *Host) Run(fn func() error) error {
	if fn == nil {
		return fmt.Errorf("netlab: host %s: Run with a nil func", h.name)
	}
	return h.run(fn)
}

// PanicError is the value [Host.Run] panics with when its func panicked.
type PanicError struct {
	Value any    // what the func panicked with
	Stack []byte // the func's goroutine's stack at the panic
}

func (p *PanicError) Error() string {
	return fmt.Sprintf("netlab: panic in a func run on a host: %v\n\n%s", p.Value, p.Stack)
}

// Unwrap returns the panic value if it is an error.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// Listen announces on the host's network address, as [net.Listen] does.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := h.Run(func() (err error) {
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// ListenPacket announces on the host's network address, as
// [net.ListenPacket] does.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Run(func() (err error) {
		pc, err = net.ListenPacket(network, address)
		return err
	})
	return pc, err
}

// Dial connects from the host to address, as [net.Dial] does.
func (h *Host) Dial(network, address string) (net.Conn, error) {
	return h.DialContext(context.Background(), network, address)
}

// DialContext connects from the host to address, as
// [net.Dialer.DialContext] does; it fits http.Transport.DialContext and
// net.Resolver.Dial. Dial IP addresses (see [Host.Run]).
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Run(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Sysctl reads a sysctl of the host's network namespace, such as
// "net.ipv4.tcp_fastopen".
func (h *Host) Sysctl(key string) (string, error) {
	if err := checkSysctlKey(key); err != nil {
		return "", fmt.Errorf("netlab: host %s: %w", h.name, err)
	}
	var v string
	err := h.Run(func() (err error) {
		v, err = readSysctl(key)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("netlab: host %s: sysctl %s: %w", h.name, key, err)
	}
	return v, nil
}

// SetSysctl writes a sysctl of the host's network namespace, such as
// SetSysctl("net.ipv4.tcp_fastopen", "3"). Only keys under "net." are
// accepted; the few of those that are global to the machine
// (net.core.rmem_max…) are absent or read-only in a namespace, and
// writing them fails.
func (h *Host) SetSysctl(key, value string) error {
	if err := checkSysctlKey(key); err != nil {
		return fmt.Errorf("netlab: host %s: %w", h.name, err)
	}
	err := h.Run(func() error { return writeSysctl(key, value) })
	if err != nil {
		return fmt.Errorf("netlab: host %s: sysctl %s=%s: %w", h.name, key, value, err)
	}
	return nil
}

func checkSysctlKey(key string) error {
	if !strings.HasPrefix(key, "net.") || strings.ContainsAny(key, "/\x00") ||
		strings.Contains(key, "..") || strings.HasSuffix(key, ".") {
		return fmt.Errorf("sysctl key %q: want a dotted name under net., such as net.ipv4.tcp_fastopen", key)
	}
	return nil
}

// New starts a lab: two hosts (or as many as [Hosts] says) in fresh
// network namespaces, every two joined by a link whose directions all
// start with the [Path] profile. It needs
// Linux and CAP_SYS_ADMIN and CAP_NET_ADMIN (root, or a process started in
// a user namespace of its own, as by `unshare -Urn`); otherwise the error
// says what is missing and wraps the errno, or errors.ErrUnsupported off
// Linux. Call [Lab.Close] when done.
func New(opts ...Option) (*Lab, error) {
	c := config{hosts: 2}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("netlab: nil Option")
		}
		if err := o.apply(&c); err != nil {
			return nil, err
		}
	}
	return newLab(c)
}
