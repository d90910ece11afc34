package main

import (
	"fmt"
	"os"
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
	cc, qdisc := procSetting("net/ipv4/tcp_congestion_control"), procSetting("net/core/default_qdisc")
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

// procSetting reads a sysctl of this process's namespace, or says it is
// unknown.
func procSetting(name string) string {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
