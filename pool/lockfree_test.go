package pool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The lock-free idle path, under the race detector. Each test can be seen
// to fail with the fault it guards against turned on:
//
//	POOLFAULT=aba go test -tags poolfault -run IdleStack ./pool/
//	POOLFAULT=recheck go test -tags poolfault -run Racing ./pool/

// stackRes is a resource that catches being held twice.
type stackRes struct{ held atomic.Int32 }

// TestTheIdleStackNeverHandsOutAResourceTwiceNorLosesOne pops and pushes
// a few resources from many goroutines, while another goroutine takes the
// whole stack and restores it as maintenance does, and checks that no
// resource is ever held twice and that all are back, once each, at the
// end.
func TestTheIdleStackNeverHandsOutAResourceTwiceNorLosesOne(t *testing.T) {
	const (
		n       = 3 // resources: few, so that the same ones come back often (ABA)
		workers = 8
		ops     = 20000
	)
	var s idleStack[*stackRes]
	s.max = n
	s.slots = make([]atomic.Pointer[resource[*stackRes]], n)
	all := make([]*resource[*stackRes], n)
	for i := range all {
		all[i] = &resource[*stackRes]{value: &stackRes{}, slot: uint32(i)}
		s.slots[i].Store(all[i])
		require.True(t, s.push(all[i]))
	}
	var mu sync.Mutex // what the pool's mutex does for takeAll and restore
	var violation atomic.Pointer[string]
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		violation.CompareAndSwap(nil, &msg)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			held := make([]*resource[*stackRes], 0, n)
			for range ops {
				if violation.Load() != nil {
					return
				}
				for k := 1 + rand.IntN(2); k > 0; k-- {
					r := s.pop()
					if r == nil {
						break
					}
					if !r.value.held.CompareAndSwap(0, 1) {
						fail("slot %d popped while held by another goroutine", r.slot)
					}
					held = append(held, r)
				}
				if rand.IntN(4) == 0 {
					runtime.Gosched()
				}
				for _, r := range held {
					r.value.held.Store(0)
					if !s.push(r) {
						fail("push refused below MaxIdle (%d resources)", n)
					}
				}
				held = held[:0]
			}
		})
	}
	stop := make(chan struct{})
	swept := make(chan struct{})
	var sweeps atomic.Int64
	go func() {
		defer close(swept)
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			rs := s.takeAll(nil)
			seen := make(map[*resource[*stackRes]]bool)
			for _, r := range rs {
				if seen[r] {
					fail("takeAll: slot %d twice", r.slot)
				}
				seen[r] = true
			}
			if len(s.restore(rs)) != 0 {
				fail("restore dropped resources below MaxIdle")
			}
			mu.Unlock()
			sweeps.Add(1)
			runtime.Gosched()
		}
	}()
	wg.Wait()
	close(stop)
	<-swept
	if v := violation.Load(); v != nil {
		t.Fatal(*v)
	}
	// Every resource is in the stack once, with its depth.
	got := s.takeAll(nil)
	require.Len(t, got, n, "resources in the stack at the end")
	seen := make(map[*resource[*stackRes]]bool)
	for i, r := range got {
		assert.False(t, seen[r], "slot %d twice", r.slot)
		seen[r] = true
		assert.Equal(t, uint64(n-i), r.link.Load()>>32, "depth of slot %d", r.slot)
	}
	t.Logf("%d sweeps", sweeps.Load())
}

func newStackPool(t *testing.T, opts ...Option) *Pool[*stackRes] {
	t.Helper()
	p, err := New(func(context.Context) (*stackRes, error) { return &stackRes{}, nil },
		func(*stackRes) error { return nil }, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, p.Shutdown(ctx))
	})
	return p
}

// jitter yields a random few times, so that two goroutines started
// together meet at varied points of each other's steps.
func jitter() {
	for range rand.IntN(8) {
		runtime.Gosched()
	}
}

// TestAReleaseRacingAQueuingGetNeverStrandsIt releases the only resource
// of a pool just as another goroutine's Get finds it empty and queues: the
// Get must be served whichever comes first, and not wait with the
// resource idle (it waits at most 10 s here, then fails the test).
func TestAReleaseRacingAQueuingGetNeverStrandsIt(t *testing.T) {
	p := newStackPool(t, MaxSize(1))
	h, err := p.Get(context.Background())
	require.NoError(t, err)
	type got struct {
		h   Resource[*stackRes]
		err error
	}
	for i := range 3000 {
		c := make(chan got, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			jitter()
			h, err := p.Get(ctx)
			c <- got{h, err}
		}()
		jitter()
		h.Release()
		g := <-c // within the Get's 10 s
		if g.err != nil {
			t.Fatalf("round %d: Get failed with the only resource released: %v; %+v", i, g.err, p.Stats())
		}
		h = g.h
	}
	h.Release()
	require.NoError(t, p.CheckInvariants())
	s := p.Stats()
	assert.Equal(t, uint64(3001), s.Hits+s.Waits, "every Get served, once: %+v", s)
	t.Logf("%+v", s)
}

// TestAReleaseRacingCloseLeavesNothingIdle releases a resource as Close
// runs: whichever comes first, the resource is closed and Shutdown
// returns (within 10 s here).
func TestAReleaseRacingCloseLeavesNothingIdle(t *testing.T) {
	for i := range 1000 {
		p, err := New(func(context.Context) (*stackRes, error) { return &stackRes{}, nil },
			func(*stackRes) error { return nil }, MaxSize(2))
		require.NoError(t, err)
		h, err := p.Get(context.Background())
		require.NoError(t, err)
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			jitter()
			_ = p.Close()
		}()
		jitter()
		h.Release()
		<-closed
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = p.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v; %+v", i, err, p.Stats())
		}
		require.NoError(t, p.CheckInvariants())
		require.Equal(t, uint64(1), p.Stats().Closed.PoolClosed)
	}
}

// TestAReleaseRacingResetLeavesNothingStaleIdle releases a resource as
// Reset runs: whichever comes first, the resource is closed, not kept.
func TestAReleaseRacingResetLeavesNothingStaleIdle(t *testing.T) {
	p := newStackPool(t, MaxSize(2))
	for i := range 2000 {
		h, err := p.Get(context.Background())
		require.NoError(t, err)
		reset := make(chan struct{})
		go func() {
			defer close(reset)
			jitter()
			p.Reset()
		}()
		jitter()
		h.Release()
		<-reset
		if err := p.CheckInvariants(); err != nil {
			t.Fatalf("round %d: %v; %+v", i, err, p.Stats())
		}
	}
	assert.Equal(t, uint64(2000), p.Stats().Closed.Reset)
}

// The invariant checks are worth something only if they see a broken
// structure: break each part once, look, and mend it.
func TestTheInvariantCheckSeesABrokenIdleStack(t *testing.T) {
	// MaxIdle below MaxSize: no per-P slots, all three idle on the stack.
	build := func(t *testing.T) (*Pool[*stackRes], *resource[*stackRes]) {
		p := newStackPool(t, MaxSize(4), MaxIdle(3))
		var hs []Resource[*stackRes]
		for range 3 {
			h, err := p.Get(context.Background())
			require.NoError(t, err)
			hs = append(hs, h)
		}
		for _, h := range hs {
			h.Release()
		}
		require.NoError(t, p.CheckInvariants())
		return p, p.idle.slots[uint32(p.idle.head.Load())-1].Load()
	}
	t.Run("a cycle", func(t *testing.T) {
		p, top := build(t)
		was := top.link.Swap(link(3, top.slot+1))
		assert.ErrorContains(t, p.CheckInvariants(), "twice")
		top.link.Store(was)
	})
	t.Run("a wrong depth below the top", func(t *testing.T) {
		p, top := build(t)
		below := p.idle.slots[uint32(top.link.Load())-1].Load()
		below.link.Add(1 << 32)
		assert.ErrorContains(t, p.CheckInvariants(), "depth")
		below.link.Add(^uint64(1<<32 - 1))
	})
	t.Run("a free slot in the stack", func(t *testing.T) {
		p, top := build(t)
		p.idle.slots[top.slot].Store(nil)
		assert.PanicsWithValue(t, errCorrupt, func() { _ = p.CheckInvariants() }, "the stack's own guard")
		p.idle.slots[top.slot].Store(top)
	})
	t.Run("a stale generation left idle", func(t *testing.T) {
		p, _ := build(t)
		p.gen.Add(1)
		assert.ErrorContains(t, p.CheckInvariants(), "before the last Reset")
		p.gen.Add(^uint64(0))
	})
	t.Run("a waiter count not published", func(t *testing.T) {
		p, _ := build(t)
		p.waiting.Store(1)
		assert.ErrorContains(t, p.CheckInvariantsNow(), "published")
		p.waiting.Store(0)
	})
	t.Run("a resource idle in two Ps' slots", func(t *testing.T) {
		if faultNoLocal {
			t.Skip("built without per-P slots (POOLFAULT)")
		}
		p := newStackPool(t, MaxSize(4))
		h, err := p.Get(context.Background())
		require.NoError(t, err)
		h.Release()
		require.Len(t, p.idle.local, runtime.GOMAXPROCS(0))
		var r *resource[*stackRes]
		for i := range p.idle.local {
			if r = p.idle.local[i].r.Load(); r != nil {
				break
			}
		}
		require.NotNil(t, r, "a Release fills its P's slot")
		require.NoError(t, p.CheckInvariants())
		extra := append(p.idle.local, localSlot[*stackRes]{}) // a P's slot more, to put it in twice
		extra[len(extra)-1].r.Store(r)
		was := p.idle.local
		p.idle.local = extra
		assert.Error(t, p.CheckInvariants())
		p.idle.local = was
	})
	t.Run("a resource lost from the stack", func(t *testing.T) {
		p, top := build(t)
		p.idle.head.Store(bump(p.idle.head.Load(), uint32(top.link.Load())))
		// Quiet, it looks checked out; what shows it lost is that
		// Shutdown, which the stress tests end with, never finishes.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		assert.ErrorContains(t, p.Shutdown(ctx), "1 in use")
		p.release(Resource[*stackRes]{r: top, seq: top.state.Load()}, returnNote{}) // found: closed now
	})
}
