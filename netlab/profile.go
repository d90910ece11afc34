package netlab

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Profile is what one direction of a link does to the packets it carries.
// The zero Profile is a perfect link: no delay, no loss, no rate limit, an
// MTU of 1500 bytes.
//
// A packet read from the sending host goes through these steps, in order:
// dropped if Blackhole is set; dropped if larger than MTU; dropped with
// probability Loss; queued behind the packets still being transmitted at
// Rate (dropped if the queue is full: drop-tail); transmitted; then
// delivered Delay (± Jitter) after its transmission ends.
//
// A Profile is a plain value.
type Profile struct {
	// Delay is the one-way propagation delay added to every packet. A
	// path's round-trip time is the sum of both directions' Delay. It must
	// lie in [0, MaxDelay].
	Delay time.Duration
	// Jitter varies each packet's delay uniformly in
	// [Delay-Jitter, Delay+Jitter]. It must not be negative nor exceed
	// Delay. Without Reorder a packet never overtakes one sent before it:
	// a packet whose draw would do so is delivered right after it instead.
	Jitter time.Duration
	// Reorder lets Jitter reorder packets, as parallel paths do.
	Reorder bool
	// Loss is the probability, in [0, 1], that a packet is dropped. Draws
	// come from a PCG generator seeded by [Seed], so a lab fed the same
	// packets in the same order drops the same ones.
	Loss float64
	// LossBurst makes losses come in bursts: the mean number of
	// consecutive packets lost together (a Gilbert model whose bad state
	// drops every packet), with Loss still the long-run rate. 0 means
	// independent losses; otherwise it must be at least 1, and
	// Loss/(1-Loss) must not exceed it.
	LossBurst float64
	// Rate is the link's bandwidth in bits per second; 0 means unlimited.
	// A packet of n bytes occupies the link for n*8/Rate seconds; packets
	// wait their turn in a drop-tail queue.
	Rate int64
	// QueueBytes and QueuePackets bound the queue in front of a
	// rate-limited link, counting the packet being transmitted. A packet
	// that would exceed either bound is dropped. When both are 0 the queue
	// holds 50 ms at Rate, and at least 2×MTU. Without Rate they must be 0.
	QueueBytes   int
	QueuePackets int
	// MTU is the largest IP packet the link carries, in bytes, from 1280
	// (the IPv6 minimum) to 65535; 0 means 1500. The sending host's device
	// takes this MTU, so its TCP segments to fit; a larger packet is
	// dropped (counted in [Stats].TooBig) without an ICMP error.
	MTU int
	// Blackhole drops every packet, as a dead path or a firewall that
	// silently discards does. Packets already on the link are delivered.
	Blackhole bool
}

// Defaults and bounds of a Profile.
const (
	DefaultMTU = 1500
	MinMTU     = 1280
	MaxMTU     = 65535
	// MaxDelay bounds Delay: far beyond any real path (a geostationary
	// satellite hop is 0.3 s), and a link holds every packet in memory
	// for that long.
	MaxDelay = time.Minute
	// defaultQueueTime is how much of the Rate the default queue holds.
	defaultQueueTime = 50 * time.Millisecond
)

// Validate reports the first field of p that is out of range, naming it
// and its value.
func (p Profile) Validate() error {
	switch {
	case p.Delay < 0:
		return p.invalid("Delay %v is negative", p.Delay)
	case p.Delay > MaxDelay:
		return p.invalid("Delay %v exceeds MaxDelay %v", p.Delay, MaxDelay)
	case p.Jitter < 0:
		return p.invalid("Jitter %v is negative", p.Jitter)
	case p.Jitter > p.Delay:
		return p.invalid("Jitter %v exceeds Delay %v (a delay cannot go below 0)", p.Jitter, p.Delay)
	case math.IsNaN(p.Loss) || p.Loss < 0 || p.Loss > 1:
		return p.invalid("Loss %v outside [0, 1]", p.Loss)
	case math.IsNaN(p.LossBurst) || p.LossBurst < 0 || (p.LossBurst > 0 && p.LossBurst < 1):
		return p.invalid("LossBurst %v: want 0 (independent losses) or a mean burst of at least 1 packet", p.LossBurst)
	case p.LossBurst > 0 && p.Loss < 1 && p.Loss/(1-p.Loss) > p.LossBurst:
		return p.invalid("Loss %v cannot be reached with bursts of %v packets (at most %v)", p.Loss, p.LossBurst, p.LossBurst/(1+p.LossBurst))
	case p.Rate < 0:
		return p.invalid("Rate %d bit/s is negative", p.Rate)
	case p.QueueBytes < 0:
		return p.invalid("QueueBytes %d is negative", p.QueueBytes)
	case p.QueuePackets < 0:
		return p.invalid("QueuePackets %d is negative", p.QueuePackets)
	case p.Rate == 0 && (p.QueueBytes != 0 || p.QueuePackets != 0):
		return p.invalid("QueueBytes %d / QueuePackets %d set without a Rate (only a rate-limited link queues)", p.QueueBytes, p.QueuePackets)
	case p.MTU != 0 && (p.MTU < MinMTU || p.MTU > MaxMTU):
		return p.invalid("MTU %d outside [%d, %d]", p.MTU, MinMTU, MaxMTU)
	case p.QueueBytes != 0 && p.QueueBytes < p.mtu():
		return p.invalid("QueueBytes %d is below the MTU %d: no full-size packet would fit", p.QueueBytes, p.mtu())
	}
	return nil
}

func (p Profile) invalid(format string, args ...any) error {
	return fmt.Errorf("netlab: profile: "+format, args...)
}

// mtu is p.MTU with 0 meaning DefaultMTU.
func (p Profile) mtu() int {
	if p.MTU == 0 {
		return DefaultMTU
	}
	return p.MTU
}

// queueLimits returns the queue bounds in force: the default when neither
// is set; 0 means no bound of that kind.
func (p Profile) queueLimits() (bytes, packets int) {
	if p.Rate == 0 {
		return 0, 0
	}
	if p.QueueBytes == 0 && p.QueuePackets == 0 {
		b := int(float64(p.Rate) / 8 * defaultQueueTime.Seconds())
		return max(b, 2*p.mtu()), 0
	}
	return p.QueueBytes, p.QueuePackets
}

// RTT is the round-trip time of a symmetric path with p in both
// directions, before queueing and transmission: 2×Delay.
func (p Profile) RTT() time.Duration { return 2 * p.Delay }

// String prints the fields that differ from the zero Profile, such as
// "delay=30ms loss=0.01 rate=10Mbit/s".
func (p Profile) String() string {
	var parts []string
	if p.Delay != 0 {
		parts = append(parts, "delay="+p.Delay.String())
	}
	if p.Jitter != 0 {
		parts = append(parts, "jitter="+p.Jitter.String())
	}
	if p.Reorder {
		parts = append(parts, "reorder")
	}
	if p.Loss != 0 {
		parts = append(parts, "loss="+strconv.FormatFloat(p.Loss, 'g', -1, 64))
	}
	if p.LossBurst != 0 {
		parts = append(parts, "burst="+strconv.FormatFloat(p.LossBurst, 'g', -1, 64))
	}
	if p.Rate != 0 {
		parts = append(parts, "rate="+formatRate(p.Rate))
	}
	if p.QueueBytes != 0 {
		parts = append(parts, "queue="+strconv.Itoa(p.QueueBytes)+"B")
	}
	if p.QueuePackets != 0 {
		parts = append(parts, "queue="+strconv.Itoa(p.QueuePackets)+"pkt")
	}
	if p.MTU != 0 {
		parts = append(parts, "mtu="+strconv.Itoa(p.MTU))
	}
	if p.Blackhole {
		parts = append(parts, "blackhole")
	}
	if len(parts) == 0 {
		return "perfect"
	}
	return strings.Join(parts, " ")
}

func formatRate(bps int64) string {
	switch {
	case bps%1_000_000_000 == 0:
		return strconv.FormatInt(bps/1_000_000_000, 10) + "Gbit/s"
	case bps%1_000_000 == 0:
		return strconv.FormatInt(bps/1_000_000, 10) + "Mbit/s"
	case bps%1_000 == 0:
		return strconv.FormatInt(bps/1_000, 10) + "kbit/s"
	}
	return strconv.FormatInt(bps, 10) + "bit/s"
}

// Presets: typical paths, per direction. Their figures are round values in
// the middle of what is published for such paths; a path's RTT is twice
// the Delay. Light in fiber covers about 200 km per millisecond, so
// distance alone sets a floor: 1,000 km cost at least 10 ms of RTT.
//
//	preset            RTT     jitter  loss    rate       source of the figures
//	LAN               0.2 ms  -       0       1 Gbit/s   switched Ethernet in one building
//	SameRegion        1 ms    0.05ms  0       1 Gbit/s   between zones of one cloud region (cloud providers quote "single-digit ms", measured ~0.5-2 ms)
//	CrossContinent    60 ms   1 ms    0.01%   100 Mbit/s US east-west coast between cloud regions (public inter-region ping tables: 60-75 ms)
//	Intercontinental  150 ms  2 ms    0.1%    50 Mbit/s  US-Europe ~80-100 ms, US/Europe-Asia 150-250 ms (public inter-region ping tables)
//	LossyMobile       60 ms   10 ms   1%      10 Mbit/s  a 4G/LTE phone: crowd-sourced reports put median LTE latency at 40-70 ms
//
// The rate limits the relay in this process can sustain depend on the
// machine; above a few hundred Mbit/s the emulated rate is likely not met
// (see the package documentation).

// LAN is a path inside one building: 0.1 ms each way, 1 Gbit/s.
func LAN() Profile { return Profile{Delay: 100 * time.Microsecond, Rate: 1_000_000_000} }

// SameRegion is a path between two zones of one cloud region: 0.5 ms each
// way with 50 µs of jitter, 1 Gbit/s.
func SameRegion() Profile {
	return Profile{Delay: 500 * time.Microsecond, Jitter: 50 * time.Microsecond, Rate: 1_000_000_000}
}

// CrossContinent is a path across a continent: 30 ms each way with 1 ms of
// jitter, 0.01% loss, 100 Mbit/s.
func CrossContinent() Profile {
	return Profile{Delay: 30 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.0001, Rate: 100_000_000}
}

// Intercontinental is a path between continents: 75 ms each way with 2 ms
// of jitter, 0.1% loss, 50 Mbit/s.
func Intercontinental() Profile {
	return Profile{Delay: 75 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.001, Rate: 50_000_000}
}

// LossyMobile is a phone on a 4G network: 30 ms each way with 10 ms of
// jitter, 1% loss, 10 Mbit/s.
func LossyMobile() Profile {
	return Profile{Delay: 30 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.01, Rate: 10_000_000}
}
