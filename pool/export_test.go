package pool

import (
	"fmt"
	"net"
)

// CheckInvariants reports the first accounting rule the pool breaks. The
// pool must be quiet: no Get, Release or dial in its lock-free steps (some
// rules hold only between operations).
func (p *Pool[T]) CheckInvariants() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.checkAlwaysLocked(); err != nil {
		return err
	}
	// Walk the idle stack.
	seen := make(map[*resource[T]]bool)
	idle := 0
	for top := uint32(p.idle.head.Load()); top != 0; {
		r := p.idle.slots[top-1].Load()
		switch {
		case r == nil:
			return fmt.Errorf("idle stack: slot %d is free", top-1)
		case r.slot != top-1:
			return fmt.Errorf("idle stack: slot %d holds the resource of slot %d", top-1, r.slot)
		case seen[r]:
			return fmt.Errorf("idle stack: slot %d twice (a cycle)", r.slot)
		case r.gen != p.gen.Load():
			return fmt.Errorf("idle stack: slot %d dialed before the last Reset", r.slot)
		}
		seen[r] = true
		idle++
		top = uint32(r.link.Load())
	}
	for top := uint32(p.idle.head.Load()); top != 0; idle-- {
		r := p.idle.slots[top-1].Load()
		if d := int(r.link.Load() >> 32); d != idle {
			return fmt.Errorf("idle stack: slot %d says depth %d, is at %d", r.slot, d, idle)
		}
		top = uint32(r.link.Load())
	}
	for i := range p.idle.local {
		r := p.idle.local[i].r.Load()
		switch {
		case r == nil:
			continue
		case p.idle.slots[r.slot].Load() != r:
			return fmt.Errorf("P %d's idle slot: its resource's slot %d is not its own", i, r.slot)
		case seen[r]:
			return fmt.Errorf("P %d's idle slot: slot %d is idle twice", i, r.slot)
		case r.gen != p.gen.Load():
			return fmt.Errorf("P %d's idle slot: slot %d dialed before the last Reset", i, r.slot)
		}
		seen[r] = true
	}
	idle, inUse := len(seen), 0
	for i := range p.nslots {
		if r := p.idle.slots[i].Load(); r != nil && !seen[r] {
			inUse++
		}
	}
	switch {
	case p.open != idle+inUse+p.dialing:
		return fmt.Errorf("open %d != idle %d + in use %d + dialing %d", p.open, idle, inUse, p.dialing)
	case p.waiters.n > 0 && idle > 0:
		return fmt.Errorf("%d waiters while %d idle", p.waiters.n, idle)
	case idle > p.cfg.maxIdle:
		return fmt.Errorf("idle %d > MaxIdle %d", idle, p.cfg.maxIdle)
	case p.closed.Load() && idle > 0:
		return fmt.Errorf("closed with %d idle", idle)
	case idle != p.idle.len():
		return fmt.Errorf("idle stack counts %d, holds %d", p.idle.len(), idle)
	}
	return nil
}

// CheckInvariantsNow reports the first accounting rule the pool breaks
// among those that hold at any time, even while other goroutines use it.
func (p *Pool[T]) CheckInvariantsNow() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checkAlwaysLocked()
}

func (p *Pool[T]) checkAlwaysLocked() error {
	live := 0
	for i := range p.nslots {
		if p.idle.slots[i].Load() != nil {
			live++
		}
	}
	free := make(map[uint32]bool)
	for _, i := range p.free {
		if i >= p.nslots || free[i] || p.idle.slots[i].Load() != nil {
			return fmt.Errorf("free slot %d: out of range, twice or in use", i)
		}
		free[i] = true
	}
	idle := p.idle.len()
	switch {
	case live+len(free) != int(p.nslots):
		return fmt.Errorf("%d slots in use + %d free != %d", live, len(free), p.nslots)
	case p.open != live+p.dialing:
		return fmt.Errorf("open %d != %d with a slot + dialing %d", p.open, live, p.dialing)
	case p.open+p.closing > p.cfg.maxSize:
		return fmt.Errorf("open %d + closing %d > max %d", p.open, p.closing, p.cfg.maxSize)
	case p.dialing < 0 || p.closing < 0 || p.workers < 0:
		return fmt.Errorf("negative count: dialing %d, closing %d, workers %d", p.dialing, p.closing, p.workers)
	case idle > p.cfg.maxIdle || idle > live:
		return fmt.Errorf("idle %d > MaxIdle %d or open resources %d", idle, p.cfg.maxIdle, live)
	case p.waiting.Load() != int64(p.waiters.n):
		return fmt.Errorf("%d waiters, %d published", p.waiters.n, p.waiting.Load())
	}
	return nil
}

// Probe runs the liveness check on c.
func Probe(c net.Conn) error { return newConnState(c, &clock{}).probe() }

// ProbeConn runs the liveness check on c as a Get does: on the state kept
// with the connection, whose RawConn was taken once, at the dial.
func ProbeConn(c *Conn) error { return c.h.r.conn.probe() }

// Underlying returns the generic pool under a ConnPool.
func (cp *ConnPool) Underlying() *Pool[net.Conn] { return cp.p }

// ReadsInFlight is how many Reads and Writes are running on c.
func ReadsInFlight(c *Conn) int32 { return c.h.r.conn.ops.Load() }
