package poolbench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/puddle/v2"
	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/pool"
)

// benchPool is how the hand-off and contention benchmarks drive each
// implementation; R is what its Get hands out.
type benchPool[R any] interface {
	get(ctx context.Context) (R, error)
	put(r R)
	// waits counts the Gets that found nothing idle and were served by a
	// release, from the implementation's own counters.
	waits() uint64
	// donesPerWait is how many times a Get that finds nothing idle has
	// called its context's Done by the time it waits (see watchCtx).
	donesPerWait() int64
}

type nettunePool struct{ p *pool.Pool[*thing] }

func (n nettunePool) get(ctx context.Context) (pool.Resource[*thing], error) { return n.p.Get(ctx) }
func (n nettunePool) put(r pool.Resource[*thing])                            { r.Release() }
func (n nettunePool) waits() uint64                                          { return n.p.Stats().Waits }

// donesPerWait: Get queues itself, then calls Done once to wait.
func (n nettunePool) donesPerWait() int64 { return 1 }

type connPool struct{ p *pool.ConnPool }

func (c connPool) get(ctx context.Context) (*pool.Conn, error) { return c.p.Get(ctx) }
func (c connPool) put(r *pool.Conn)                            { _ = r.Close() } // an error only for a broken conn: none here
func (c connPool) waits() uint64                               { return c.p.Stats().Waits }
func (c connPool) donesPerWait() int64                         { return 1 }

type puddlePool struct{ p *puddle.Pool[*thing] }

func (u puddlePool) get(ctx context.Context) (*puddle.Resource[*thing], error) {
	return u.p.Acquire(ctx)
}
func (u puddlePool) put(r *puddle.Resource[*thing]) { r.Release() }

// waits is puddle's EmptyAcquireCount: acquires that found its semaphore
// taken and waited for it (a release, or a creation).
func (u puddlePool) waits() uint64 { return uint64(u.p.Stat().EmptyAcquireCount()) }

// donesPerWait: Acquire looks at ctx.Done once on entry, and its
// semaphore's Acquire once more before it queues (puddle v2.2.3, x/sync
// semaphore).
func (u puddlePool) donesPerWait() int64 { return 2 }

type chanBench struct{ p *chanPool[*thing] }

func (c chanBench) get(ctx context.Context) (*thing, error) { return c.p.Get(ctx) }
func (c chanBench) put(v *thing)                            { c.p.Put(v) }
func (c chanBench) waits() uint64                           { return c.p.waits.Load() }

// donesPerWait: the blocking select evaluates ctx.Done once.
func (c chanBench) donesPerWait() int64 { return 1 }

// warm fills p with size resources, all idle, so that no benchmark times a
// dial.
func warm[R any](b *testing.B, p benchPool[R], size int) {
	rs := make([]R, size)
	for i := range rs {
		r, err := p.get(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		rs[i] = r
	}
	for _, r := range rs {
		p.put(r)
	}
}

func newNettune(b *testing.B, size int, opts ...pool.Option) nettunePool {
	p, err := pool.New(newThing, func(*thing) error { return nil }, append(opts, pool.MaxSize(size))...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := p.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	})
	n := nettunePool{p}
	warm(b, n, size)
	return n
}

func newPuddleBench(b *testing.B, size int) puddlePool {
	u := puddlePool{newPuddle(b, size)}
	warm(b, u, size)
	return u
}

func newChanBench(b *testing.B, size int) chanBench {
	c := chanBench{newChanPool(size, newThing)}
	warm(b, c, size)
	return c
}

// watchCtx is a context that never ends and counts the calls of its Done
// method. Every implementation calls Done once it has found nothing idle
// and is about to wait (donesPerWait times), so another goroutine can tell
// that this one's Get is waiting, without a lock and without a sleep.
type watchCtx struct {
	context.Context
	dones atomic.Int64
	// until is the count of dones from which the owner's current Get is
	// waiting; math.MaxInt64 while it is not in a Get.
	until atomic.Int64
	gets  atomic.Int64 // the owner's Gets that have returned
}

func newWatchCtx() *watchCtx {
	c := &watchCtx{Context: context.Background()}
	c.until.Store(math.MaxInt64)
	return c
}

func (c *watchCtx) Done() <-chan struct{} {
	c.dones.Add(1)
	return nil // never ends
}

// watchedGet runs p's Get with c, publishing when it will be waiting and
// when it has returned.
func watchedGet[R any](p benchPool[R], c *watchCtx) (R, error) {
	c.until.Store(c.dones.Load() + p.donesPerWait())
	r, err := p.get(c)
	c.until.Store(math.MaxInt64)
	c.gets.Add(1)
	return r, err
}

// spinUntil yields until cond holds, or fails after ten seconds.
func spinUntil(cond func() bool, what string) error {
	var deadline time.Time
	for i := 1; !cond(); i++ {
		runtime.Gosched()
		if i%(1<<12) == 0 {
			switch now := time.Now(); {
			case deadline.IsZero():
				deadline = now.Add(10 * time.Second)
			case now.After(deadline):
				return fmt.Errorf("waited 10s for %s", what)
			}
		}
	}
	return nil
}

// pingPong: two goroutines take turns with a pool of one resource. Each
// releases it only once the other's Get has found nothing idle and waits,
// and calls Get again only once the Get it served has returned, so every
// Get (two per op) finds the pool empty and is served straight from a
// Release. waits/op, from the pool's own counters, is 2.
//
// Why the second wait: Done is called just before a Get blocks. nettune's
// Get has queued itself by then, but puddle's semaphore and a channel
// receive queue the waiter a moment later; a Release in between leaves the
// resource free, and without the wait the releaser's own next Get could
// take it back (a barge: 1.86 waits/op for puddle, 0.87 for the channel
// pool in a trial run). So for the peers, a Get counted as a wait may
// have found the resource released before it parked; nettune's Waits
// counts only Gets served from its queue.
//
// With h, it also records the time from each Release call to the return
// of the Get it serves, and reports p50 and p99.
func pingPong[R any](b *testing.B, p benchPool[R], h *latency.Histogram) {
	mine, theirs := newWatchCtx(), newWatchCtx()
	epoch := time.Now()
	var released atomic.Int64 // when the last Release began, nanoseconds since epoch
	// handOver releases r once the other goroutine's Get waits, and
	// returns once that Get has returned.
	handOver := func(r R, other *watchCtx) error {
		err := spinUntil(func() bool { return other.dones.Load() >= other.until.Load() }, "the other Get to wait")
		if err != nil {
			return err
		}
		served := other.gets.Load() + 1
		if h != nil {
			released.Store(int64(time.Since(epoch)))
		}
		p.put(r)
		return spinUntil(func() bool { return other.gets.Load() >= served }, "the other Get to return")
	}
	got := func() {
		if h != nil {
			h.Record(time.Since(epoch) - time.Duration(released.Load()))
		}
	}

	held, err := p.get(context.Background()) // the only resource, idle
	if err != nil {
		b.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		for {
			r, err := watchedGet(p, theirs)
			if err != nil {
				done <- err
				return
			}
			got()
			if stop.Load() {
				p.put(r)
				done <- nil
				return
			}
			if err := handOver(r, mine); err != nil {
				done <- err
				return
			}
		}
	}()
	before := p.waits()
	b.ReportAllocs()
	for b.Loop() {
		if err := handOver(held, theirs); err != nil {
			b.Fatal(err)
		}
		if held, err = watchedGet(p, mine); err != nil {
			b.Fatal(err)
		}
		got()
	}
	b.StopTimer()
	b.ReportMetric(float64(p.waits()-before)/float64(b.N), "waits/op")
	if h != nil {
		s := h.Snapshot()
		b.ReportMetric(float64(s.Quantile(0.5)), "p50-ns")
		b.ReportMetric(float64(s.Quantile(0.99)), "p99-ns")
	}
	stop.Store(true)
	p.put(held)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWaitingGet is a hand-off that really is one, for each
// implementation: see pingPong. One op is two hand-offs, so waits/op (read
// from each pool's own counters: nettune's Stats.Waits, puddle's
// EmptyAcquireCount, the channel pool's count of Gets served by its
// blocking receive) is 2.
func BenchmarkWaitingGet(b *testing.B) {
	for _, rec := range recorders {
		b.Run("impl=nettune"+rec.name, func(b *testing.B) {
			pingPong(b, newNettune(b, 1, rec.opts(b)...), nil)
		})
	}
	b.Run("impl=puddle", func(b *testing.B) { pingPong(b, newPuddleBench(b, 1), nil) })
	b.Run("impl=chan", func(b *testing.B) { pingPong(b, newChanBench(b, 1), nil) })
}

// BenchmarkWaitingGetConn is BenchmarkWaitingGet for a pool of loopback
// TCP conns that do no I/O, with the liveness check at its default
// threshold (a conn within it is handed over unchecked) and at
// EveryCheckout (a peek on every hand-off).
func BenchmarkWaitingGetConn(b *testing.B) {
	for _, live := range []struct {
		name string
		d    time.Duration
	}{{"1s", time.Second}, {"EveryCheckout", pool.EveryCheckout}} {
		b.Run("liveness="+live.name, func(b *testing.B) {
			cp, err := pool.NewConnPool(nil, "tcp", silentServer(b), pool.MaxSize(1), pool.LivenessCheck(live.d))
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := cp.Shutdown(context.Background()); err != nil {
					b.Error(err)
				}
			}()
			pingPong(b, connPool{cp}, nil)
		})
	}
}

// BenchmarkHandoffLatency is BenchmarkWaitingGet with a clock read at each
// Release and at the return of the Get it serves: p50-ns and p99-ns are the
// time from the Release call to the waiting goroutine running with the
// resource, recorded into a latency.Histogram. ns/op includes the clock
// reads and the Record.
func BenchmarkHandoffLatency(b *testing.B) {
	hist := func(b *testing.B) *latency.Histogram {
		h, err := latency.New()
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	b.Run("impl=nettune", func(b *testing.B) { pingPong(b, newNettune(b, 1), hist(b)) })
	b.Run("impl=puddle", func(b *testing.B) { pingPong(b, newPuddleBench(b, 1), hist(b)) })
	b.Run("impl=chan", func(b *testing.B) { pingPong(b, newChanBench(b, 1), hist(b)) })
}

// BenchmarkContention: g goroutines (explicit, whatever GOMAXPROCS is)
// each Get and Release at once, b.N times in all, on a warm pool of size
// resources. ns/op is per Get+Release, across all goroutines; waits/op is
// the share of Gets that found nothing idle and waited for a release, from
// each pool's own counters; lockwait-ns/op is the time goroutines spent
// blocked on locks (see lockWait), per Get+Release.
func BenchmarkContention(b *testing.B) {
	for _, size := range []int{4, 64} {
		for _, g := range []int{1, 8, 64, 512} {
			name := fmt.Sprintf("size=%d/goroutines=%d/impl=", size, g)
			b.Run(name+"nettune", func(b *testing.B) { contend(b, newNettune(b, size), g) })
			b.Run(name+"puddle", func(b *testing.B) { contend(b, newPuddleBench(b, size), g) })
			b.Run(name+"chan", func(b *testing.B) { contend(b, newChanBench(b, size), g) })
		}
	}
}

func contend[R any](b *testing.B, p benchPool[R], g int) {
	ctx := context.Background()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range g {
		n := b.N / g
		if i < b.N%g {
			n++
		}
		wg.Go(func() {
			<-start
			for range n {
				r, err := p.get(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				p.put(r)
			}
		})
	}
	before := p.waits()
	blocked := lockWait()
	b.ReportAllocs()
	b.ResetTimer()
	close(start)
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(p.waits()-before)/float64(b.N), "waits/op")
	b.ReportMetric(float64(lockWait()-blocked)/float64(b.N), "lockwait-ns/op")
}

// lockWait is the runtime's estimate of the time goroutines have spent
// blocked on a sync.Mutex, sync.RWMutex or runtime-internal lock (a
// channel's, say), in nanoseconds, summed over goroutines: so with many
// goroutines it can exceed the wall time.
func lockWait() int64 {
	s := []metrics.Sample{{Name: "/sync/mutex/wait/total:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return int64(s[0].Value.Float64() * 1e9)
}
