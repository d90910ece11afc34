package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/netlab"
)

// presets are the paths -preset names, from netlab's own presets (their
// figures and sources are in netlab's doc).
var presets = []struct {
	name    string
	profile func() netlab.Profile
}{
	{"lan", netlab.LAN},
	{"same-region", netlab.SameRegion},
	{"cross-continent", netlab.CrossContinent},
	{"intercontinental", netlab.Intercontinental},
	{"lossy-mobile", netlab.LossyMobile},
}

// defaultPreset is the path a run gets without -preset: netlab's
// CrossContinent, a path across a continent (30 ms each way, 60 ms RTT,
// 1 ms jitter, 0.01% loss, 100 Mbit/s): the distance between two cloud
// regions such as us-east and us-west, where the round trips the
// techniques save are worth tens of milliseconds each.
const defaultPreset = "cross-continent"

func presetNames() string {
	var names []string
	for _, p := range presets {
		names = append(names, p.name)
	}
	return strings.Join(names, ", ")
}

func presetProfile(name string) (netlab.Profile, bool) {
	for _, p := range presets {
		if p.name == name {
			return p.profile(), true
		}
	}
	return netlab.Profile{}, false
}

// resolverProfile is the path to the resolver host: 10 ms each way, a
// resolver in the client's own region (a cloud provider's resolver, or a
// nearby anycast public resolver), nearer than the server.
var resolverProfile = netlab.Profile{Delay: 10 * time.Millisecond}

// parseBandwidth reads a rate in bit/s: a number with an optional k, M or
// G suffix (powers of 1000), such as 50M; 0 means unlimited.
func parseBandwidth(s string) (int64, error) {
	mult := 1.0
	num := strings.TrimSuffix(strings.TrimSuffix(s, "bit/s"), "bps")
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'k', 'K':
			mult, num = 1e3, num[:n-1]
		case 'M':
			mult, num = 1e6, num[:n-1]
		case 'G':
			mult, num = 1e9, num[:n-1]
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errors.New("not a number with an optional k, M or G")
	}
	if v < 0 || v*mult > 1e12 || v != v {
		return 0, errors.New("out of range (0 to 1T)")
	}
	return int64(v * mult), nil
}

// host is where code runs: a lab host, or this process's own namespace
// (loopback).
type host struct {
	lab  *netlab.Host // nil: this process's namespace
	addr netip.Addr
}

// run calls fn on the host: every socket fn creates on its own goroutine
// belongs to the host.
func (h host) run(fn func() error) error {
	if h.lab == nil {
		return fn()
	}
	return h.lab.Run(fn)
}

// listen listens on the host's address, port 0, with lc.
func (h host) listen(ctx context.Context, lc *listener.Config) (net.Listener, error) {
	var ln net.Listener
	err := h.run(func() error {
		l, err := lc.Listen(ctx, "tcp", netip.AddrPortFrom(h.addr, 0).String())
		if err == nil {
			ln = l
		}
		return err
	})
	return ln, err
}

// dialFunc returns d's DialContext, run on the host. Dial IP addresses:
// a name would be looked up on goroutines outside the host.
func (h host) dialFunc(d *dialer.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		var c net.Conn
		err := h.run(func() error {
			conn, err := d.DialContext(ctx, network, address)
			c = conn
			return err
		})
		return c, err
	}
}

// path is where the techniques run: a lab with an emulated path, or
// loopback.
type path struct {
	lab     *netlab.Lab    // nil on loopback
	profile netlab.Profile // client–server, each direction (zero on loopback)
	why     string         // on loopback: why the lab is not used
	labErr  error          // on loopback: netlab's error, if that is why
	client  host
	server  host
	resolv  host // the DNS resolver's host (the client on loopback)
}

// rtt is the path's configured round-trip time (0 on loopback).
func (p *path) rtt() time.Duration { return p.profile.RTT() }

func (p *path) describe() string {
	if p.lab == nil {
		return "loopback (127.0.0.1): no delay, loss or rate limit"
	}
	return fmt.Sprintf("emulated by netlab: %s each way (RTT %v); resolver at %v RTT", p.profile, p.rtt(), resolverProfile.RTT())
}

// openPath starts the lab with the path the flags ask for, or, when
// netlab cannot run here (not root, not Linux) and -preset/-rtt… were not
// given, falls back to loopback and says why in p.why.
func openPath(cfg *config, newLab func(...netlab.Option) (*netlab.Lab, error)) (*path, error) {
	lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loopback := &path{client: host{addr: lo}, server: host{addr: lo}, resolv: host{addr: lo}}
	if cfg.loopback {
		loopback.why = "-loopback"
		return loopback, nil
	}
	lab, err := newLab(netlab.Hosts(3), netlab.Path(cfg.profile), netlab.Seed(1))
	if err != nil {
		if cfg.pathGiven {
			return nil, fmt.Errorf("the path flags need netlab: %w", err)
		}
		loopback.why, loopback.labErr = err.Error(), err
		return loopback, nil
	}
	a, b, c := lab.Host(0), lab.Host(1), lab.Host(2)
	p := &path{lab: lab, profile: cfg.profile,
		client: host{lab: a, addr: a.Addr()}, server: host{lab: b, addr: b.Addr()}, resolv: host{lab: c, addr: c.Addr()}}
	setup := []error{lab.Link(a, c).SetProfile(resolverProfile), lab.Link(c, a).SetProfile(resolverProfile)}
	for _, h := range []*netlab.Host{a, b} {
		// Both sides of TCP Fast Open: 1 the client's, 2 the server's.
		setup = append(setup, h.SetSysctl("net.ipv4.tcp_fastopen", "3"))
	}
	if err := errors.Join(setup...); err != nil {
		return nil, errors.Join(fmt.Errorf("set up the lab: %w", err), lab.Close())
	}
	return p, nil
}

// setProfile puts pr on the client–server link, both ways; restore the
// path with setProfile(p.profile).
func (p *path) setProfile(pr netlab.Profile) error {
	a, b := p.client.lab, p.server.lab
	return errors.Join(p.lab.Link(a, b).SetProfile(pr), p.lab.Link(b, a).SetProfile(pr))
}

// emulation is what the relay did on the client–server link, both ways,
// over the run: how late it delivered packets (its error, added to the
// path's delay) and what it dropped.
type emulation struct {
	delivered, lost, overflowed uint64
	lateP50, lateP99            time.Duration
}

func (p *path) emulation() *emulation {
	if p.lab == nil {
		return nil
	}
	e := &emulation{}
	a, b := p.client.lab, p.server.lab
	for _, l := range []*netlab.Link{p.lab.Link(a, b), p.lab.Link(b, a)} {
		st := l.Stats()
		e.delivered += st.Delivered
		e.lost += st.Lost
		e.overflowed += st.Overflowed
		if st.Late != nil {
			e.lateP50 = max(e.lateP50, st.Late.Quantile(0.5))
			e.lateP99 = max(e.lateP99, st.Late.Quantile(0.99))
		}
	}
	return e
}

// late reports whether the relay ran late enough to distort the figures:
// by more than a tenth of the RTT at p99.
func (e *emulation) late(rtt time.Duration) bool { return e.lateP99 > max(rtt/10, time.Millisecond) }

func (p *path) close() error {
	if p.lab == nil {
		return nil
	}
	return p.lab.Close()
}

// techniqueNames are the techniques in the order they run and print.
var techniqueNames = []string{"pool", "tls", "tfo", "nagle", "dns", "deadpeer", "buffers", "congestion", "eyeballs", "backlog", "http2"}

func parseTechniques(s string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(techniqueNames, name) {
			return nil, fmt.Errorf("unknown technique %q", name)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}
