package dnscache

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

// slot holds the current entry of one (host, network); a refresh swaps the
// entry in place. host, hash and net never change once the slot is in a
// table.
type slot struct {
	e    atomic.Pointer[entry]
	used atomic.Bool // set by a hit, cleared by the eviction hand (CLOCK)
	host string
	hash uint64
	net  int

	// prev and next link the eviction ring; guarded by Cache.mu.
	prev, next *slot
}

// deleted marks a slot of a table whose entry was removed, so that a probe
// for a name inserted after it goes on (a tombstone).
var deleted = &slot{}

// table is an open-addressing hash table (linear probing) of the slots of
// one network. Readers load it with one atomic read and probe it without a
// lock; writers (under Cache.mu) store into it in place, so that adding a
// host costs O(1), and replace it whole only to grow it or to clear its
// tombstones, at most once per len(slots)/4 changes: O(1) amortised too.
// It is never more than three quarters full, counting tombstones, so a
// probe always ends at an empty cell.
//
// A cell holds the slot's hash beside the pointer, so that a probe compares
// hashes in the table's own memory and follows a pointer only on a match:
// in a large table the slots a probe passes are rarely in the CPU cache.
// A writer stores the hash before the pointer and a reader loads the
// pointer before the hash, so a reader that sees a slot sees its hash or a
// later one; a later one can only make it miss a slot being stored at that
// moment, which sends that lookup the slow way (the slot itself is always
// checked).
type table struct {
	slots []cell
	mask  uint64
}

type cell struct {
	s    atomic.Pointer[slot]
	hash atomic.Uint64
}

// index is one network's table and what its writers count.
type index struct {
	t    atomic.Pointer[table]
	live int // slots in t; guarded by Cache.mu
	used int // cells of t not empty: live slots and tombstones; guarded by Cache.mu
}

// minTableSize is the number of cells of an empty table.
const minTableSize = 8

func newTable(cells int) *table {
	return &table{slots: make([]cell, cells), mask: uint64(cells - 1)}
}

// hashName is the hash of host in the tables of c.
func (c *Cache) hashName(host string) uint64 { return maphash.String(c.seed, host) }

// find returns the slot of host (whose hash is h), or nil. It takes no
// lock and does not allocate.
//
// A lookup probes 1.5 to 2.3 cells on average in the scale benchmark's
// tables (linear probing, at most three quarters full): each compares the
// cell's hash, in the table's memory, before it follows the pointer; then
// the name decides (the slot's own hash would only repeat the cell's).
func (t *table) find(h uint64, host string) *slot {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		c := &t.slots[i]
		s := c.s.Load()
		if s == nil {
			return nil
		}
		if c.hash.Load() == h && s != deleted && s.host == host {
			return s
		}
	}
}

// store puts s in the cell: its hash first (see table).
func (c *cell) store(s *slot) {
	c.hash.Store(s.hash)
	c.s.Store(s)
}

// reset empties x. Cache.mu must be held.
func (x *index) reset() {
	x.t.Store(newTable(minTableSize))
	x.live, x.used = 0, 0
}

// insert adds s, whose host x does not hold. Cache.mu must be held.
func (x *index) insert(s *slot) {
	t := x.t.Load()
	if (x.used+1)*4 > len(t.slots)*3 {
		t = x.rebuild(x.live + 1)
	}
	for i := s.hash & t.mask; ; i = (i + 1) & t.mask {
		switch t.slots[i].s.Load() {
		case nil:
			x.used++
			fallthrough
		case deleted:
			t.slots[i].store(s)
			x.live++
			return
		}
	}
}

// remove takes s out of x. Cache.mu must be held.
func (x *index) remove(s *slot) {
	t := x.t.Load()
	for i := s.hash & t.mask; ; i = (i + 1) & t.mask {
		switch t.slots[i].s.Load() {
		case nil:
			return // not in the table
		case s:
			x.live--
			if t.slots[(i+1)&t.mask].s.Load() == nil {
				// No probe goes on past an empty cell: this one can be
				// empty too, rather than a tombstone.
				t.slots[i].s.Store(nil)
				x.used--
			} else {
				t.slots[i].s.Store(deleted)
			}
			return
		}
	}
}

// rebuild replaces x's table with one that holds n slots at most half
// full, without tombstones, and returns it. Readers on the old table still
// find what it held. Cache.mu must be held.
func (x *index) rebuild(n int) *table {
	cells := max(minTableSize, 1<<bits.Len(uint(2*n-1)))
	old := x.t.Load()
	t := newTable(cells)
	for i := range old.slots {
		s := old.slots[i].s.Load()
		if s == nil || s == deleted {
			continue
		}
		for j := s.hash & t.mask; ; j = (j + 1) & t.mask {
			if t.slots[j].s.Load() == nil {
				t.slots[j].store(s)
				break
			}
		}
	}
	x.t.Store(t)
	x.used = x.live
	return t
}

// ring operations: the eviction ring holds every slot of every network, in
// insertion order; c.hand is the next one the CLOCK hand looks at, and a
// new slot goes just behind it (the last the hand reaches). c.sweepAt is
// where the sweeper goes on from. Cache.mu must be held.

func (c *Cache) ringAdd(s *slot) {
	if c.hand == nil {
		s.prev, s.next = s, s
		c.hand = s
		return
	}
	p := c.hand.prev
	s.prev, s.next = p, c.hand
	p.next = s
	c.hand.prev = s
}

func (c *Cache) ringRemove(s *slot) {
	next := s.next
	if next == s {
		next = nil
	} else {
		s.prev.next = next
		next.prev = s.prev
	}
	if c.hand == s {
		c.hand = next
	}
	if c.sweepAt == s {
		c.sweepAt = next
	}
	s.prev, s.next = nil, nil
}
