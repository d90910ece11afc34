package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nettune/nettune/sockopt"
)

// targetAdvice is the "what to change" list for the path to a -target,
// from the kernel's view of a live connection (TCP_INFO) and this host's
// settings.
func targetAdvice(ti *sockopt.TCPInfo, sys *sockopt.System) []string {
	var out []string
	if ti != nil && ti.RTT > 0 {
		rate := int64(ti.DeliveryRate) * 8
		adv := sockopt.BufferFor(ti.RTT, rate, sys)
		line := fmt.Sprintf("buffers: smoothed RTT %v, delivery rate %s: %s", ti.RTT, bitRate(float64(rate)), adv)
		if ti.DeliveryRateAppLimited {
			line += ". The rate was app-limited (the requests, not the path, set it): give the path's real rate to sockopt.BufferFor"
		}
		out = append(out, line)
	}
	// A pair that detects a dead peer both when idle and with data in
	// flight: TCP_USER_TIMEOUT about idle + interval × count.
	idle, interval, count := 15*time.Second, 5*time.Second, 3
	out = append(out, fmt.Sprintf("dead peers: dialer.KeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: %v, Interval: %v, Count: %d}) "+
		"with dialer.Sockopt(sockopt.UserTimeout(%v)): keep-alive finds an idle dead peer, the user timeout one that "+
		"stops acknowledging data (keep-alive probes never fire while data is unacknowledged)",
		idle, interval, count, idle+time.Duration(count)*interval))
	if sys != nil {
		switch {
		case sys.FastOpen&1 == 0:
			out = append(out, fmt.Sprintf("TCP Fast Open: off for clients on this host (net.ipv4.tcp_fastopen=%d): sysctl -w net.ipv4.tcp_fastopen=%d, then dialer.FastOpen(true) saves a round trip per new connection to a server that accepts it", sys.FastOpen, sys.FastOpen|1))
		default:
			out = append(out, fmt.Sprintf("TCP Fast Open: on for clients on this host (net.ipv4.tcp_fastopen=%d): dialer.FastOpen(true) saves a round trip per new connection where the server has listener.FastOpen(true) and tcp_fastopen bit 2", sys.FastOpen))
		}
	}
	cc, qdisc := "unknown", "unknown"
	if sys != nil {
		cc, qdisc = orUnknown(sys.DefaultCongestion), orUnknown(sys.DefaultQdisc)
	}
	line := fmt.Sprintf("congestion control: this host's default is %s (net.ipv4.tcp_congestion_control), its default qdisc %s (net.core.default_qdisc)", cc, qdisc)
	if cc != "bbr" && sys != nil {
		for _, name := range sys.AvailableCongestion {
			if name == "bbr" {
				line += "; bbr is available: sockopt.Congestion(\"bbr\") on the sending side holds its rate under random loss"
			}
		}
	}
	return append(out, line)
}

// orUnknown is s, or "unknown" when s is empty (a setting ReadSystem
// could not read).
func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// hostSettings are the lines, in the preflight's style, that show the
// settings of this host that decide what the recommended options do:
// limits and defaults of the buffers, the listen queues and their
// overflow counters, the congestion control and qdisc. A setting
// ReadSystem could not read prints as "?".
func hostSettings(sys *sockopt.System) []string {
	n := func(name string, v int) string {
		if slices.Contains(sys.Missing, name) {
			return "?"
		}
		return strconv.Itoa(v)
	}
	three := func(name string, v [3]int) string {
		if slices.Contains(sys.Missing, name) {
			return "?"
		}
		return fmt.Sprintf("[%d %d %d]", v[0], v[1], v[2])
	}
	counter := func(name string, v uint64) string {
		if slices.Contains(sys.Missing, name) {
			return "?"
		}
		return strconv.FormatUint(v, 10)
	}
	return []string{
		fmt.Sprintf("this host: net.ipv4.tcp_fastopen=%s, net.core.rmem_max=%s, wmem_max=%s, somaxconn=%s, congestion controls allowed: %s",
			n("net.ipv4.tcp_fastopen", sys.FastOpen), n("net.core.rmem_max", sys.RmemMax), n("net.core.wmem_max", sys.WmemMax),
			n("net.core.somaxconn", sys.Somaxconn), strings.Join(sys.AllowedCongestion, " ")),
		fmt.Sprintf("buffers: net.ipv4.tcp_rmem=%s, tcp_wmem=%s (min default max), net.core.rmem_default=%s, wmem_default=%s",
			three("net.ipv4.tcp_rmem", sys.TCPRmem), three("net.ipv4.tcp_wmem", sys.TCPWmem),
			n("net.core.rmem_default", sys.RmemDefault), n("net.core.wmem_default", sys.WmemDefault)),
		fmt.Sprintf("listen queues: net.ipv4.tcp_max_syn_backlog=%s; since boot ListenOverflows=%s (accept queue full), ListenDrops=%s",
			n("net.ipv4.tcp_max_syn_backlog", sys.TCPMaxSynBacklog),
			counter("TcpExt.ListenOverflows", sys.ListenOverflows), counter("TcpExt.ListenDrops", sys.ListenDrops)),
		fmt.Sprintf("congestion control: net.ipv4.tcp_congestion_control=%s, net.core.default_qdisc=%s",
			orUnknown(sys.DefaultCongestion), orUnknown(sys.DefaultQdisc)),
	}
}
