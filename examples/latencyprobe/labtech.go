package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/internal/procnet"
	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/sockopt"
)

// oneSample is a series of one measured duration.
func oneSample(name, title string, d time.Duration) (*series, error) {
	h, err := latency.New()
	if err != nil {
		return nil, err
	}
	h.Record(d)
	return &series{name: name, title: title, snap: h.Snapshot(), stats: latency.ProbeResult{Samples: 1}}, nil
}

// dnsCache measures a dial by name with a lookup at the resolver's
// distance every time against a dnscache hit, then a resolver outage
// without and with serve-stale.
func (b *bench) dnsCache(ctx context.Context) (_ *comparison, err error) {
	srv, r, stop, err := b.startDNS()
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	port := port(b.plain.addr())

	srv.ResetCounters()
	lookup, err := b.p.measure(ctx, "dns_lookup", "DNS lookup on every dial", b.cfg.n, b.lookupThenDial(r.LookupNetIP, port))
	if err != nil {
		return nil, err
	}
	queriesDirect := srv.TotalQueries()

	var skew atomic.Int64 // the cache's clock runs this far ahead, to expire answers without waiting
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	const ttl, maxStale, staleWait = 30 * time.Second, time.Hour, 100 * time.Millisecond
	cache, err := dnscache.New(dnscache.System(r), dnscache.TTL(ttl), dnscache.MaxStale(maxStale),
		dnscache.StaleAnswerTimeout(staleWait), dnscache.Clock(now))
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, cache.Close()) }()
	srv.ResetCounters()
	hit, err := b.p.measure(ctx, "dns_cached", "DNS cache hit (dnscache)", b.cfg.n, b.lookupThenDial(cache.LookupNetIP, port))
	if err != nil {
		return nil, err
	}
	queriesCached := srv.TotalQueries()

	// The resolver goes down and the cached answer expires.
	srv.SetOutage(true)
	defer srv.SetOutage(false)
	skew.Store(int64(2 * ttl))
	const outageN, lookupTimeout = 3, time.Second
	lookupOnly := func(l func(ctx context.Context, network, host string) ([]netip.Addr, error)) func(context.Context) error {
		return func(ctx context.Context) error { _, err := l(ctx, "ip4", dnsName); return err }
	}
	failedDirect, worstDirect := countFailures(ctx, outageN, lookupTimeout, lookupOnly(r.LookupNetIP))
	failedStale, worstStale := countFailures(ctx, outageN, lookupTimeout, lookupOnly(cache.LookupNetIP))

	return &comparison{name: "dns",
		without: side{label: "lookup every dial", s: lookup}, with: side{label: "cache hit", s: hit},
		outage:   &outage{n: outageN, failedWithout: failedDirect, failedWith: failedStale, worstWithout: worstDirect, worstWith: worstStale},
		floorRTT: 1, how: fmt.Sprintf("dialer.Resolver(cache), cache from dnscache.New(dnscache.MaxStale(%v))", maxStale),
		note: fmt.Sprintf("each sample: resolve %s, then connect to the address (1 RTT) and close. The resolver is %s.",
			dnsName, b.resolverDistance()),
		detail: []string{
			fmt.Sprintf("DNS queries sent: %d without the cache, %d with it", queriesDirect, queriesCached),
			fmt.Sprintf("resolver outage, the answer expired: without the cache %d of %d lookups failed (each after up to %v); "+
				"with serve-stale %d of %d failed, the stale answer served within %v",
				failedDirect, outageN, roundMs(worstDirect), failedStale, outageN, roundMs(worstStale)),
		}}, nil
}

// roundMs rounds a duration to the millisecond, for a sentence.
func roundMs(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// deadPeer blackholes the path while two requests wait for their echo:
// one on a connection with keep-alive only, one with TCP_USER_TIMEOUT,
// and times how long each takes to learn the path is dead.
func (b *bench) deadPeer(ctx context.Context) (_ *comparison, err error) {
	const userTimeout = 2 * time.Second
	limit := 2 * userTimeout // the keep-alive-only side stops here
	ka := net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}
	dKA, err := dialer.New(dialer.Timeout(b.cfg.timeout), dialer.KeepAliveConfig(ka))
	if err != nil {
		return nil, err
	}
	dUT, err := dialer.New(dialer.Timeout(b.cfg.timeout), dialer.KeepAliveConfig(ka), dialer.Sockopt(sockopt.UserTimeout(userTimeout)))
	if err != nil {
		return nil, err
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			err = errors.Join(err, ignoreClosed(c.Close()))
		}
	}()
	for _, d := range []*dialer.Dialer{dKA, dUT} {
		c, err := b.path.client.dialFunc(d)(ctx, "tcp", b.plain.addr())
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
		if err := exchange(ctx, c, b.req, b.resp); err != nil {
			return nil, err
		}
	}
	task := b.p.progress.start("requests in flight while the path blackholes", 2)
	dead := b.path.profile
	dead.Blackhole = true
	if err := b.path.setProfile(dead); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	took := make([]time.Duration, 2)
	errs := make([]error, 2)
	for i, c := range conns {
		wg.Go(func() {
			start := time.Now()
			if err := c.SetDeadline(start.Add(limit)); err != nil {
				errs[i] = err
				return
			}
			if _, err := c.Write(b.req); err != nil {
				errs[i] = err
			} else {
				_, errs[i] = io.ReadFull(c, b.respFor(i))
			}
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	task.done(latency.ProbeResult{Samples: 2})
	if err := b.path.setProfile(b.path.profile); err != nil {
		return nil, err
	}
	var ne net.Error
	capped := errors.As(errs[0], &ne) && ne.Timeout()
	if errs[0] == nil || errs[1] == nil {
		return nil, errors.New("a request was answered through a blackholed path")
	}
	without, err := oneSample("deadpeer_keepalive", "keep-alive only", took[0])
	if err != nil {
		return nil, err
	}
	with, err := oneSample("deadpeer_user_timeout", "TCP_USER_TIMEOUT", took[1])
	if err != nil {
		return nil, err
	}
	c := &comparison{name: "deadpeer",
		without: side{label: "keep-alive only", s: without, capped: capped},
		with:    side{label: "user timeout " + userTimeout.String(), s: with},
		floor:   userTimeout,
		how:     fmt.Sprintf("dialer.Sockopt(sockopt.UserTimeout(%v)) (with dialer.KeepAliveConfig, about idle + interval × count)", userTimeout),
		note: fmt.Sprintf("one request each, written after the path blackholed; keep-alive %v idle, %v interval, %d probes: "+
			"probes never fire while data is unacknowledged, so without TCP_USER_TIMEOUT the kernel retransmits "+
			"for tcp_retries2 (15 by default, about 15 minutes). The keep-alive-only side is cut at %v.",
			ka.Idle, ka.Interval, ka.Count, limit)}
	c.detail = append(c.detail, fmt.Sprintf("keep-alive only: %v after %v; with TCP_USER_TIMEOUT: %v after %v",
		errText(errs[0], capped), roundMs(took[0]), errText(errs[1], false), roundMs(took[1])))
	return c, nil
}

func errText(err error, capped bool) string {
	if capped {
		return "still waiting (the cap)"
	}
	return err.Error()
}

// respFor gives each concurrent request a response buffer of its own.
func (b *bench) respFor(i int) []byte {
	if i == 0 {
		return b.resp
	}
	return make([]byte, len(b.resp))
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// transfer is how long each bulk download lasts, and how much of its start
// (slow start) is left out of the throughput.
const transfer, rampUp = 2 * time.Second, 600 * time.Millisecond

// buffers downloads with a small fixed receive buffer, with the kernel's
// autotuning, and with a buffer sized to the bandwidth-delay product.
func (b *bench) buffers(ctx context.Context) (_ *comparison, err error) {
	srv, err := b.bulkServer(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, srv.close()) }()
	rate, rtt := b.path.profile.Rate, b.path.rtt()
	const small = 64 << 10
	sys, sysErr := sockopt.ReadSystem()
	if sysErr != nil {
		sys = &sockopt.System{}
	}
	adv := sockopt.BufferFor(rtt, rate, sys)
	sides := []struct {
		name, label string
		opts        []dialer.Option
	}{
		{"buffers_small", fmt.Sprintf("SO_RCVBUF=%d", small), []dialer.Option{dialer.Sockopt(sockopt.ReceiveBuffer(small))}},
		{"buffers_autotuning", "autotuning", nil},
		{"buffers_bdp", fmt.Sprintf("SO_RCVBUF=%d (BDP)", adv.Size), []dialer.Option{dialer.Sockopt(sockopt.ReceiveBuffer(adv.Size))}},
	}
	var got []side
	for _, s := range sides {
		d, err := dialer.New(append([]dialer.Option{dialer.Timeout(b.cfg.timeout)}, s.opts...)...)
		if err != nil {
			return nil, err
		}
		sd, err := b.download(ctx, s.name, s.label, d, srv.addr())
		if err != nil {
			return nil, err
		}
		got = append(got, sd)
	}
	c := &comparison{name: "buffers",
		without: got[0], with: got[2], extra: []side{got[1]},
		floorBps: float64(rate),
		how:      fmt.Sprintf("nothing where autotuning reaches the BDP (tcp_rmem max); else dialer.Sockopt(sockopt.ReceiveBuffer(%d)) from sockopt.BufferFor(rtt, rate, sys)", adv.Size),
		note: fmt.Sprintf("each: one download for %v, throughput counted after the first %v (slow start); "+
			"the link's BDP is %d bytes (%v × %s). A fixed SO_RCVBUF caps the window near the size asked "+
			"(the kernel doubles it for bookkeeping), so throughput ≤ buffer/RTT = %s for the small one; a set size also turns autotuning off.",
			transfer, rampUp, adv.BDP, rtt, bitRate(float64(rate)), bitRate(float64(small)*8/rtt.Seconds()))}
	c.detail = append(c.detail, adv.String())
	return c, nil
}

// congestion downloads with cubic, then bbr, on the sender (the server)
// with the path's loss raised to 1% where it is lower.
func (b *bench) congestion(ctx context.Context) (_ *comparison, err error) {
	lossy := b.path.profile
	lossy.Loss = max(lossy.Loss, 0.01)
	if err := b.path.setProfile(lossy); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.path.setProfile(b.path.profile)) }()
	var got []side
	for _, name := range []string{"cubic", "bbr"} {
		srv, err := b.bulkServer(ctx, listener.ConnSockopt(sockopt.Congestion(name)))
		if err != nil {
			return nil, err
		}
		sd, err := b.download(ctx, "congestion_"+name, name, b.d, srv.addr())
		err = errors.Join(err, srv.close())
		if err != nil {
			return nil, err
		}
		got = append(got, sd)
	}
	return &comparison{name: "congestion",
		without: got[0], with: got[1], floorBps: float64(b.path.profile.Rate),
		how: "listener.ConnSockopt(sockopt.Congestion(\"bbr\")) on the sender, or sysctl net.ipv4.tcp_congestion_control=bbr",
		note: fmt.Sprintf("each: one download for %v on the path with %.2g%% random loss, the sender's congestion control set per connection; "+
			"cubic reads every loss as congestion and halves its window, bbr paces at the bottleneck rate it measures.",
			transfer, lossy.Loss*100)}, nil
}

// bulkServer starts a download server on the server host.
func (b *bench) bulkServer(ctx context.Context, opts ...listener.Option) (*server, error) {
	lc, err := listener.New(opts...)
	if err != nil {
		return nil, err
	}
	ln, err := b.path.server.listen(ctx, lc)
	if err != nil {
		return nil, err
	}
	return serve(ln, nil, bulkHandler(transfer+5*time.Second)), nil
}

// download reads from a bulk server for transfer and returns the
// throughput after rampUp.
func (b *bench) download(ctx context.Context, name, label string, d *dialer.Dialer, addr string) (side, error) {
	task := b.p.progress.start(label+" download", 1)
	c, err := b.path.client.dialFunc(d)(ctx, "tcp", addr)
	if err != nil {
		return side{}, err
	}
	defer c.Close()
	start := time.Now()
	if err := c.SetDeadline(start.Add(transfer + 10*time.Second)); err != nil {
		return side{}, err
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return side{}, err
	}
	buf := make([]byte, 256<<10)
	var total, atRamp int64
	var rampAt time.Time
	for {
		n, err := c.Read(buf)
		total += int64(n)
		now := time.Now()
		if rampAt.IsZero() && now.Sub(start) >= rampUp {
			atRamp, rampAt = total, now
		}
		if now.Sub(start) >= transfer {
			break
		}
		if err != nil {
			return side{}, fmt.Errorf("%s download: %w", label, err)
		}
		if ctx.Err() != nil {
			return side{}, ctx.Err()
		}
	}
	window := time.Since(rampAt)
	task.done(latency.ProbeResult{Samples: 1})
	s, err := oneSample(name, label, window)
	if err != nil {
		return side{}, err
	}
	return side{label: label, s: s, bps: float64(total-atRamp) * 8 / window.Seconds()}, nil
}

// bitRate prints bits per second.
func bitRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.3g Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.3g Mbit/s", bps/1e6)
	default:
		return fmt.Sprintf("%.3g kbit/s", bps/1e3)
	}
}

// tfoActive reads the TcpExt TCPFastOpenActive counter of h's namespace.
func tfoActive(h host) (int64, error) {
	var v uint64
	err := h.run(func() error {
		var err error
		// The thread's namespace: /proc/net is the main thread's.
		v, err = procnet.Counter("/proc/thread-self/net/netstat", "TcpExt", "TCPFastOpenActive")
		return err
	})
	return int64(v), err
}

// forwarder relays DNS datagrams from a host of the lab to the embedded
// DNS server on this process's loopback, so that queries cross the lab's
// link to that host.
type forwarder struct {
	pc net.PacketConn
	wg sync.WaitGroup
}

func startForwarder(h host, upstream netip.AddrPort) (*forwarder, error) {
	var pc net.PacketConn
	err := h.run(func() error {
		c, err := net.ListenPacket("udp", netip.AddrPortFrom(h.addr, 53).String())
		pc = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("DNS forwarder on %v: %w", h.addr, err)
	}
	f := &forwarder{pc: pc}
	f.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			query := bytes.Clone(buf[:n])
			f.wg.Go(func() {
				up, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(upstream))
				if err != nil {
					return
				}
				defer up.Close()
				if up.SetDeadline(time.Now().Add(2*time.Second)) != nil {
					return
				}
				if _, err := up.Write(query); err != nil {
					return
				}
				answer := make([]byte, 1500)
				n, err := up.Read(answer)
				if err != nil {
					return // the server is in an outage: the client times out, as it would
				}
				_, _ = pc.WriteTo(answer[:n], from)
			})
		}
	})
	return f, nil
}

func (f *forwarder) addr() string { return f.pc.LocalAddr().String() }

func (f *forwarder) close() error {
	err := f.pc.Close()
	f.wg.Wait()
	return err
}

// resolverDistance says how far the resolver is from the client.
func (b *bench) resolverDistance() string {
	if b.path.lab == nil {
		return "on loopback, as the server is"
	}
	return fmt.Sprintf("%v away (RTT; the server is %v away)", resolverProfile.RTT(), b.path.rtt())
}
