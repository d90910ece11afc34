package pool

import (
	"fmt"
	"net"
)

// CheckInvariants reports the first accounting rule the pool breaks.
func (p *Pool[T]) CheckInvariants() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.open != len(p.idle)+p.inUse+p.dialing:
		return fmt.Errorf("open %d != idle %d + in use %d + dialing %d", p.open, len(p.idle), p.inUse, p.dialing)
	case p.open+p.closing > p.cfg.maxSize:
		return fmt.Errorf("open %d + closing %d > max %d", p.open, p.closing, p.cfg.maxSize)
	case p.inUse < 0 || p.dialing < 0 || p.closing < 0 || p.workers < 0:
		return fmt.Errorf("negative count: in use %d, dialing %d, closing %d, workers %d", p.inUse, p.dialing, p.closing, p.workers)
	case p.waiters.n > 0 && len(p.idle) > 0:
		return fmt.Errorf("%d waiters while %d idle", p.waiters.n, len(p.idle))
	case len(p.idle) > p.cfg.maxIdle:
		return fmt.Errorf("idle %d > MaxIdle %d", len(p.idle), p.cfg.maxIdle)
	}
	for _, r := range p.idle {
		if r.out {
			return fmt.Errorf("idle resource marked out")
		}
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
