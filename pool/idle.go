package pool

import (
	"math"
	"sync/atomic"
)

// maxSlots is the largest MaxSize: an idle stack names a resource by its
// slot number plus one in 32 bits (0: none).
const maxSlots = math.MaxUint32 - 1

// idleStack is the idle set: a lock-free LIFO stack (Treiber's), so that
// Get and Release take and put back a resource without the pool's mutex.
//
// A resource pushed again after it was popped would let a pop that read
// the old head succeed on a stale link (the ABA problem), so the head is
// not a pointer but a word packing a tag, bumped by every change, with
// the slot of the top resource: a pop or push whose head has changed in
// any way since it read it fails its compare-and-swap and retries. Each
// resource keeps its own link word: the slot below it and its depth (how
// many resources are idle from it down), which gives the count and the
// MaxIdle bound exactly, with no counter of its own.
//
// pop and push are safe for concurrent use with each other and with
// themselves. takeAll, restore and len's callers hold the pool's mutex,
// and the slots are assigned and freed under it, which is what lets
// takeAll walk a chain and restore relink one.
type idleStack[T any] struct {
	// head is tag<<32 | (slot of the top resource + 1); the low half is 0
	// when the stack is empty.
	head atomic.Uint64
	// hits counts the Gets served on the lock-free path; it shares head's
	// cache line, which such a Get has just written.
	hits  atomic.Uint64
	max   uint32                        // MaxIdle
	slots []atomic.Pointer[resource[T]] // by slot: the resource holding it, or nil
}

// link is a resource's link word: its depth in the stack << 32 | (the slot
// of the resource below it + 1), or 0 at the bottom.
func link(depth, below uint32) uint64 { return uint64(depth)<<32 | uint64(below) }

// bump returns head h with its tag bumped and top as its top (slot + 1).
func bump(h uint64, top uint32) uint64 {
	if faultNoTag {
		return h>>32<<32 | uint64(top)
	}
	return (h>>32+1)<<32 | uint64(top)
}

// pop takes the most recently pushed resource, or returns nil if there is
// none. The caller then holds it alone.
func (s *idleStack[T]) pop() *resource[T] {
	for {
		h := s.head.Load()
		top := uint32(h)
		if top == 0 {
			return nil
		}
		r := s.slots[top-1].Load()
		if r == nil {
			s.moved(h) // retired since h was read, so the head has moved on
			continue
		}
		// r.link may be stale if r was popped and pushed again since h
		// was read; the head's tag has then changed, and the CAS fails.
		next := uint32(r.link.Load())
		if faultYield {
			yield()
		}
		if s.head.CompareAndSwap(h, bump(h, next)) {
			return r
		}
	}
}

// push puts r, which the caller holds alone and which is not in the stack,
// on top, unless MaxIdle resources are idle already: then it returns
// false and r stays the caller's.
func (s *idleStack[T]) push(r *resource[T]) bool {
	for {
		h := s.head.Load()
		top := uint32(h)
		var depth uint32
		if top != 0 {
			t := s.slots[top-1].Load()
			if t == nil {
				s.moved(h)
				continue
			}
			depth = uint32(t.link.Load() >> 32)
			// t's link is its own while it is the top; checking that the
			// head has not changed proves depth was read from the top.
			if s.head.Load() != h {
				continue
			}
		}
		if depth >= s.max {
			return false
		}
		if l := link(depth+1, top); r.link.Load() != l {
			r.link.Store(l) // a locked instruction: skipped when r goes back where it was
		}
		if faultYield {
			yield()
		}
		if s.head.CompareAndSwap(h, bump(h, r.slot+1)) {
			return true
		}
	}
}

// errCorrupt is the panic of a broken stack. Only a bug in this file can
// break it; looping or growing a buffer for ever would hide that.
const errCorrupt = "pool: idle stack corrupted: a free slot or a cycle in it"

// moved panics unless the head has moved on from h, which names a free
// slot as its top.
func (s *idleStack[T]) moved(h uint64) {
	if s.head.Load() == h {
		panic(errCorrupt)
	}
}

// len is the number of resources in the stack at one instant.
func (s *idleStack[T]) len() int {
	for {
		h := s.head.Load()
		top := uint32(h)
		if top == 0 {
			return 0
		}
		t := s.slots[top-1].Load()
		if t == nil {
			s.moved(h)
			continue
		}
		depth := t.link.Load() >> 32
		if s.head.Load() == h {
			return int(depth)
		}
	}
}

// takeAll empties the stack and returns its resources, top first. The
// caller holds the pool's mutex, and holds the resources alone.
func (s *idleStack[T]) takeAll(buf []*resource[T]) []*resource[T] {
	for {
		h := s.head.Load()
		if uint32(h) == 0 {
			return buf
		}
		if s.head.CompareAndSwap(h, bump(h, 0)) {
			n := len(buf)
			for top := uint32(h); top != 0; {
				r := s.slots[top-1].Load()
				if r == nil || len(buf)-n == len(s.slots) {
					panic(errCorrupt)
				}
				buf = append(buf, r)
				top = uint32(r.link.Load())
			}
			return buf
		}
	}
}

// restore puts rs (top first, taken with takeAll) back under whatever was
// pushed since, so that the stack keeps the order of the releases. If
// that makes more than MaxIdle, the oldest are returned to be closed. The
// caller holds the pool's mutex.
func (s *idleStack[T]) restore(rs []*resource[T]) (excess []*resource[T]) {
	if len(rs) == 0 {
		return nil
	}
	for {
		h := s.head.Load()
		if uint32(h) != 0 {
			// Take the newer ones out too, and put them on top.
			rs = append(s.takeAll(nil), rs...)
			continue
		}
		if len(rs) > int(s.max) {
			excess = append(excess, rs[s.max:]...)
			rs = rs[:s.max]
		}
		var below uint32
		for i := len(rs) - 1; i >= 0; i-- {
			rs[i].link.Store(link(uint32(len(rs)-i), below))
			below = rs[i].slot + 1
		}
		if s.head.CompareAndSwap(h, bump(h, below)) {
			return excess
		}
	}
}
