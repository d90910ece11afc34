package pool

import (
	"math"
	"runtime"
	"sync/atomic"

	"github.com/nettune/nettune/internal/pin"
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
// In front of the stack, each P has a private slot (a per-P cache, as
// sync.Pool has), when MaxIdle is MaxSize, so that no count of the idle
// resources is needed to bound them. push puts the resource in the
// releasing goroutine's P's slot and moves the one it displaces onto the
// stack; pop empties that slot first, so that a goroutine gets back what
// it released last. A goroutine that takes and gives back on one P then
// touches no cache line another core writes, where the stack's head would
// bounce between the cores on every operation (on 2 cores, 264 ns per Get
// and Release against 34 ns behind one mutex). When its own slot and the
// stack are empty, pop looks in every other P's slot before it reports
// nothing idle, so a resource in a slot is never stranded. A slot holds a
// pointer, swapped with compare-and-swap: a resource taken and put back
// between a load and the swap is idle again, so that swap is right to
// succeed (no ABA problem).
//
// pop and push are safe for concurrent use with each other and with
// themselves. takeAll, restore and len's callers hold the pool's mutex,
// and the slots are assigned and freed under it, which is what lets
// takeAll walk a chain and restore relink one.
type idleStack[T any] struct {
	// head is tag<<32 | (slot of the top resource + 1); the low half is 0
	// when the stack is empty.
	head  atomic.Uint64
	max   uint32                        // MaxIdle
	slots []atomic.Pointer[resource[T]] // by slot: the resource holding it, or nil
	local []localSlot[T]                // by P: a resource idle in front of the stack; nil: no per-P slots
	// hits counts the Gets served on the lock-free path, per P.
	hits *pin.Counter
}

// localSlot is a P's private idle resource, alone on its cache line.
type localSlot[T any] struct {
	r atomic.Pointer[resource[T]]
	_ [56]byte
}

// init sets the stack up for MaxSize size and MaxIdle maxIdle.
func (s *idleStack[T]) init(size, maxIdle int) {
	s.max = uint32(maxIdle)
	s.slots = make([]atomic.Pointer[resource[T]], size)
	s.hits = pin.NewCounter()
	if maxIdle >= size && !faultNoLocal {
		s.local = make([]localSlot[T], runtime.GOMAXPROCS(0))
	}
}

// mine returns the calling goroutine's P's slot, or nil (no per-P slots,
// or a P added since init). The goroutine may move to another P at once:
// the slot is only where it is likely to find what it put, and any slot
// is safe to use from any P.
func (s *idleStack[T]) mine() *localSlot[T] {
	if s.local == nil {
		return nil
	}
	if id := pin.Hint(); uint(id) < uint(len(s.local)) {
		return &s.local[id]
	}
	return nil
}

// takeLocal empties the first P's slot that holds a resource and returns
// that resource, or nil.
func (s *idleStack[T]) takeLocal() *resource[T] {
	for i := range s.local {
		if r := s.local[i].r.Swap(nil); r != nil {
			return r
		}
	}
	return nil
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

// pop takes the resource in the calling P's slot, else the most recently
// pushed one, else one in another P's slot, or returns nil if there is
// none. The caller then holds it alone.
func (s *idleStack[T]) pop() *resource[T] {
	if l := s.mine(); l != nil {
		if r := l.r.Load(); r != nil && l.r.CompareAndSwap(r, nil) {
			return r
		}
	}
	for {
		h := s.head.Load()
		top := uint32(h)
		if top == 0 {
			return s.takeLocal()
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

// push puts r, which the caller holds alone and which is not idle, in the
// calling P's slot, and the resource that was there on top of the stack;
// without per-P slots, r goes on top of the stack, unless MaxIdle
// resources are idle already: then push returns false and r stays the
// caller's. (With per-P slots MaxIdle is MaxSize, so push never fails.)
func (s *idleStack[T]) push(r *resource[T]) bool {
	if l := s.mine(); l != nil {
		// The newest goes in the slot, so that pop takes it first; the
		// one it displaces goes on top of the stack.
		if r = l.r.Swap(r); r == nil {
			return true
		}
	}
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

// len is the number of idle resources: those in the P's slots (each
// read at its own instant) and those in the stack at one instant.
func (s *idleStack[T]) len() int {
	n := 0
	for i := range s.local {
		if s.local[i].r.Load() != nil {
			n++
		}
	}
	return n + s.stackLen()
}

// stackLen is the number of resources in the stack at one instant.
func (s *idleStack[T]) stackLen() int {
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

// takeAll empties the P's slots and the stack and returns their
// resources, those of the slots first, then the stack's top first. The
// caller holds the pool's mutex, and holds the resources alone.
func (s *idleStack[T]) takeAll(buf []*resource[T]) []*resource[T] {
	for i := range s.local {
		if r := s.local[i].r.Swap(nil); r != nil {
			buf = append(buf, r)
		}
	}
	return s.takeStack(buf)
}

// takeStack empties the stack and returns its resources, top first, as
// takeAll does.
func (s *idleStack[T]) takeStack(buf []*resource[T]) []*resource[T] {
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

// restore puts rs (top first, taken with takeAll) back on the stack under
// whatever was pushed onto it since, so that it keeps the order of the
// releases (the P's slots stay as they are). If
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
			rs = append(s.takeStack(nil), rs...)
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
