package netlab

import (
	"container/heap"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nettune/nettune/latency"
)

// maxInFlight and maxInFlightBytes bound the packets a link holds (queued
// or delayed), so that memory stays bounded whatever the profile and the
// load; a packet past either is dropped and counted as Overflowed.
const (
	maxInFlight      = 1 << 16
	maxInFlightBytes = 64 << 20
)

// maxPacket is the largest packet a device hands the relay.
const maxPacket = MaxMTU

// verdict is what the shaper decides for one packet.
type verdict uint8

const (
	pass verdict = iota
	dropBlackhole
	dropTooBig
	dropLoss
	dropQueue
)

// shaper holds the state of one direction's emulation that the reading
// goroutine alone touches: the queue in front of the rate limit and the
// loss generator. Times are durations since the link's epoch.
type shaper struct {
	rng         *rand.Rand
	linkFree    time.Duration // when the transmitter finishes its queue
	queue       []queued      // packets not yet fully transmitted, oldest first
	queuedBytes int
	lastRelease time.Duration // latest release time handed out
	hwBytes     int           // queue high-water marks
	hwPackets   int
	inBurst     bool // in the bad state of the Gilbert loss model
}

// lose draws whether the next packet is lost: independently with
// probability Loss, or from a two-state Gilbert model when LossBurst is
// set. The bad state loses every packet and is left with probability
// 1/LossBurst per packet, so bursts last LossBurst packets on average; the
// good state is left with the probability that makes the long-run rate
// Loss.
func (s *shaper) lose(p *Profile) bool {
	if p.Loss <= 0 {
		s.inBurst = false
		return false
	}
	if p.LossBurst == 0 || p.Loss >= 1 {
		return s.rng.Float64() < p.Loss
	}
	if s.inBurst {
		s.inBurst = s.rng.Float64() >= 1/p.LossBurst
	} else {
		s.inBurst = s.rng.Float64() < p.Loss/(p.LossBurst*(1-p.Loss))
	}
	return s.inBurst
}

type queued struct {
	finish time.Duration
	size   int
}

// admit decides the fate of a packet of size bytes arriving at now under
// p, and when it is to be delivered if it passes.
func (s *shaper) admit(p *Profile, now time.Duration, size int) (time.Duration, verdict) {
	if p.Blackhole {
		return 0, dropBlackhole
	}
	if size > p.mtu() {
		return 0, dropTooBig
	}
	if s.lose(p) {
		return 0, dropLoss
	}
	t := now
	if p.Rate > 0 {
		i := 0
		for i < len(s.queue) && s.queue[i].finish <= now {
			s.queuedBytes -= s.queue[i].size
			i++
		}
		s.queue = s.queue[i:]
		maxBytes, maxPackets := p.queueLimits()
		if (maxBytes > 0 && s.queuedBytes+size > maxBytes) || (maxPackets > 0 && len(s.queue)+1 > maxPackets) {
			return 0, dropQueue
		}
		start := max(now, s.linkFree)
		s.linkFree = start + time.Duration(float64(size)*8*float64(time.Second)/float64(p.Rate))
		s.queue = append(s.queue, queued{s.linkFree, size})
		s.queuedBytes += size
		s.hwBytes = max(s.hwBytes, s.queuedBytes)
		s.hwPackets = max(s.hwPackets, len(s.queue))
		t = s.linkFree
	}
	d := p.Delay
	if p.Jitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(2*p.Jitter)+1)) - p.Jitter
	}
	release := t + d
	if !p.Reorder && release < s.lastRelease {
		release = s.lastRelease
	}
	s.lastRelease = max(s.lastRelease, release)
	return release, pass
}

// packet is one packet on the link.
type packet struct {
	data    []byte
	arrival time.Duration // read off the sender
	release time.Duration // due at the receiver
	seq     uint64
}

type packetHeap []*packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if h[i].release != h[j].release {
		return h[i].release < h[j].release
	}
	return h[i].seq < h[j].seq
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

// Link is one direction of the path between two hosts: it carries the
// packets one host sends to the other and applies its [Profile] to them.
// A Link is safe for concurrent use.
type Link struct {
	name  string
	epoch time.Time
	prof  atomic.Pointer[Profile]
	// syncMTU gives the sending host's device the MTU its links now ask
	// for; nil in tests of the relay.
	syncMTU func() error

	setMu sync.Mutex // serializes SetProfile

	shaper shaper // the reading goroutine's alone

	mu     sync.Mutex // guards q, qBytes, seq, err
	q      packetHeap
	qBytes int // bytes in q
	seq    uint64
	err    error // first device error other than a close
	wake   chan struct{}

	sent, delivered, deliveredBytes      atomic.Uint64
	lost, overflowed, blackholed, tooBig atomic.Uint64
	writeErrors                          atomic.Uint64
	hwBytes, hwPackets                   atomic.Int64
	delay, late                          *latency.Histogram
	sleepLate                            atomic.Int64 // see noteSleepLate, ns
}

func newLink(name string, p Profile, seed, stream uint64) (*Link, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	delay, err := latency.New()
	if err != nil {
		return nil, err
	}
	late, err := latency.New()
	if err != nil {
		return nil, err
	}
	l := &Link{
		name:   name,
		epoch:  time.Now(),
		wake:   make(chan struct{}, 1),
		delay:  delay,
		late:   late,
		shaper: shaper{rng: rand.New(rand.NewPCG(seed, stream))},
	}
	l.prof.Store(&p)
	l.sleepLate.Store(int64(initialSleep))
	return l, nil
}

// String names the link by its ends, such as "a->b".
func (l *Link) String() string { return l.name }

// Profile returns the profile in force.
func (l *Link) Profile() Profile { return *l.prof.Load() }

// SetProfile validates p and puts it in force for the packets read from
// now on; packets already on the link keep the fate they were given. An MTU
// change is applied to the sending host's device too (which takes the
// smallest MTU of the links out of it); if that fails, the profile in
// force stays the old one.
func (l *Link) SetProfile(p Profile) error {
	if err := p.Validate(); err != nil {
		return err
	}
	l.setMu.Lock()
	defer l.setMu.Unlock()
	old := l.prof.Swap(&p)
	if old.mtu() != p.mtu() && l.syncMTU != nil {
		if err := l.syncMTU(); err != nil {
			l.prof.Store(old)
			return err
		}
	}
	return nil
}

// Stats is a snapshot of a link's counters since the lab started. Every
// packet read from the sender is counted once in Sent and, once its fate
// is known, once in Delivered or one of the drop counters; the rest are
// still on the link.
type Stats struct {
	Sent           uint64 // packets read from the sending host
	Delivered      uint64 // packets written to the receiving host
	DeliveredBytes uint64 // their bytes (IP headers included)

	Lost       uint64 // dropped by Loss
	Overflowed uint64 // dropped by a full queue (drop-tail), or past the relay's in-flight bound
	Blackholed uint64 // dropped by Blackhole
	TooBig     uint64 // dropped for exceeding MTU
	// WriteErrors counts packets the receiving host's device refused.
	WriteErrors uint64

	// QueueHighWaterBytes and QueueHighWaterPackets are the most the
	// rate limiter's queue ever held, the packet in transmission included.
	QueueHighWaterBytes   int
	QueueHighWaterPackets int

	// Delay is the one-way delay the link added to each delivered packet,
	// as measured: from the read off the sender's device to the write to
	// the receiver's (queueing and transmission included).
	Delay *latency.Snapshot
	// Late is how much later than its scheduled time each packet was
	// delivered: the emulation's error, which adds to Delay.
	Late *latency.Snapshot
}

// Stats returns the link's counters. It is safe to call while packets
// flow; the counters are then consistent each on its own.
func (l *Link) Stats() Stats {
	return Stats{
		Sent:                  l.sent.Load(),
		Delivered:             l.delivered.Load(),
		DeliveredBytes:        l.deliveredBytes.Load(),
		Lost:                  l.lost.Load(),
		Overflowed:            l.overflowed.Load(),
		Blackholed:            l.blackholed.Load(),
		TooBig:                l.tooBig.Load(),
		WriteErrors:           l.writeErrors.Load(),
		QueueHighWaterBytes:   int(l.hwBytes.Load()),
		QueueHighWaterPackets: int(l.hwPackets.Load()),
		Delay:                 l.delay.Snapshot(),
		Late:                  l.late.Snapshot(),
	}
}

func (l *Link) now() time.Duration { return time.Since(l.epoch) }

// input takes one packet read from the sender at now. It keeps data.
func (l *Link) input(data []byte, now time.Duration) {
	l.sent.Add(1)
	release, v := l.shaper.admit(l.prof.Load(), now, len(data))
	l.hwBytes.Store(int64(l.shaper.hwBytes))
	l.hwPackets.Store(int64(l.shaper.hwPackets))
	switch v {
	case dropBlackhole:
		l.blackholed.Add(1)
		return
	case dropTooBig:
		l.tooBig.Add(1)
		return
	case dropLoss:
		l.lost.Add(1)
		return
	case dropQueue:
		l.overflowed.Add(1)
		return
	}
	l.mu.Lock()
	if len(l.q) >= maxInFlight || l.qBytes+len(data) > maxInFlightBytes {
		l.mu.Unlock()
		l.overflowed.Add(1)
		return
	}
	l.seq++
	l.qBytes += len(data)
	p := &packet{data: data, arrival: now, release: release, seq: l.seq}
	heap.Push(&l.q, p)
	head := l.q[0] == p
	l.mu.Unlock()
	if head {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// readLoop reads packets from src until it fails, and hands each to the
// link route picks for it (nil: dropped, no host has its address). A
// close ends it quietly; another error is handed to fail.
func readLoop(src io.Reader, route func(pkt []byte) *Link, fail func(error)) {
	buf := make([]byte, maxPacket+1)
	for {
		n, err := src.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, io.EOF) {
				fail(err)
			}
			return
		}
		if l := route(buf[:n]); l != nil && n > 0 {
			l.input(append([]byte(nil), buf[:n]...), l.now())
		}
	}
}

func (l *Link) fail(err error) {
	if errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF) {
		return
	}
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
}

// Timing of deliveries. Go's timers are coarse when the process is idle
// (its poller sleeps in whole milliseconds, so a timer often fires about a
// millisecond late), so the deliverer sleeps on a timer only until
// coarseLead before a packet is due, then on a fineTimer (precise to tens
// of microseconds, its lateness tracked in sleepLate) in steps of at most
// fineStep, and spins the rest, yielding.
const (
	coarseLead   = 2 * time.Millisecond
	fineStep     = 500 * time.Microsecond
	spinMargin   = 20 * time.Microsecond
	minSpinLead  = 30 * time.Microsecond
	maxSpinLead  = time.Millisecond
	initialSleep = 150 * time.Microsecond // before any nanosleep was measured
)

// spinLead is how long before a packet is due the deliverer stops
// sleeping and spins: the recent worst lateness of nanosleep plus a margin.
func (l *Link) spinLead() time.Duration {
	return min(max(time.Duration(l.sleepLate.Load())+spinMargin, minSpinLead), maxSpinLead)
}

// noteSleepLate updates sleepLate, a maximum that decays: it jumps to a
// larger lateness at once and forgets it over some 8 sleeps.
func (l *Link) noteSleepLate(late time.Duration) {
	old := time.Duration(l.sleepLate.Load())
	if late < old {
		late = old - (old-late)/8
	}
	l.sleepLate.Store(int64(late))
}

// writeLoop delivers packets to dst when due, until done is closed.
func (l *Link) writeLoop(dst io.Writer, done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	fine := newFineTimer()
	defer fine.close()
	var batch []*packet
	for {
		l.mu.Lock()
		if len(l.q) == 0 {
			l.mu.Unlock()
			select {
			case <-l.wake:
				continue
			case <-done:
				return
			}
		}
		due := l.q[0].release
		l.mu.Unlock()
		now := l.now()
		rem := due - now
		if rem > coarseLead {
			timer.Reset(rem - coarseLead)
			select {
			case <-timer.C:
			case <-l.wake: // a new head, earlier than due
			case <-done:
				return
			}
			continue
		}
		if lead := l.spinLead(); rem > lead {
			d := min(rem-lead, fineStep)
			fine.sleep(d)
			l.noteSleepLate(l.now() - now - d)
			select {
			case <-done:
				return
			default:
			}
			continue
		}
		for now < due { // at most spinLead, yielding to the goroutines that wait for a P
			runtime.Gosched()
			now = l.now()
		}
		batch = batch[:0]
		l.mu.Lock()
		for len(l.q) > 0 && l.q[0].release <= now {
			p := heap.Pop(&l.q).(*packet)
			l.qBytes -= len(p.data)
			batch = append(batch, p)
		}
		l.mu.Unlock()
		for _, p := range batch {
			t := l.now()
			if _, err := dst.Write(p.data); err != nil {
				if errors.Is(err, os.ErrClosed) {
					return
				}
				l.writeErrors.Add(1)
				l.fail(err)
				continue
			}
			l.delivered.Add(1)
			l.deliveredBytes.Add(uint64(len(p.data)))
			l.delay.Record(t - p.arrival)
			l.late.Record(t - p.release)
		}
		clear(batch)
	}
}

// firstErr is the first device error the link met, if any.
func (l *Link) firstErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
