// Package poolbench compares nettune's pool with jackc/puddle/v2 and with a
// plain buffered-channel pool.
package poolbench

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/jackc/puddle/v2"
	"github.com/nettune/nettune/pool"
)

type thing struct{ n int }

func newThing(context.Context) (*thing, error) { return &thing{}, nil }

// chanPool is the textbook pool: a buffered channel of tokens, a dial on
// a token with no idle resource.
type chanPool[T any] struct {
	idle   chan T
	tokens chan struct{}
	dial   func(context.Context) (T, error)
}

func newChanPool[T any](size int, dial func(context.Context) (T, error)) *chanPool[T] {
	return &chanPool[T]{idle: make(chan T, size), tokens: make(chan struct{}, size), dial: dial}
}

func (p *chanPool[T]) Get(ctx context.Context) (T, error) {
	var zero T
	select {
	case v := <-p.idle:
		return v, nil
	default:
	}
	select {
	case v := <-p.idle:
		return v, nil
	case p.tokens <- struct{}{}:
		v, err := p.dial(ctx)
		if err != nil {
			<-p.tokens
			return zero, err
		}
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

func (p *chanPool[T]) Put(v T) { p.idle <- v }

func BenchmarkAcquireRelease(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=nettune", func(b *testing.B) {
		p, err := pool.New(newThing, func(*thing) error { return nil }, pool.MaxSize(8))
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(ctx)
		b.ReportAllocs()
		for b.Loop() {
			r, err := p.Get(ctx)
			if err != nil {
				b.Fatal(err)
			}
			r.Release()
		}
	})
	b.Run("impl=puddle", func(b *testing.B) {
		p := newPuddle(b, 8)
		b.ReportAllocs()
		for b.Loop() {
			r, err := p.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			r.Release()
		}
	})
	b.Run("impl=chan", func(b *testing.B) {
		p := newChanPool(8, newThing)
		b.ReportAllocs()
		for b.Loop() {
			v, err := p.Get(ctx)
			if err != nil {
				b.Fatal(err)
			}
			p.Put(v)
		}
	})
}

func newPuddle(b *testing.B, size int) *puddle.Pool[*thing] {
	p, err := puddle.NewPool(&puddle.Config[*thing]{Constructor: newThing, Destructor: func(*thing) {}, MaxSize: int32(size)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p
}

func BenchmarkAcquireReleaseParallel(b *testing.B) {
	ctx := context.Background()
	size := 2 * runtime.GOMAXPROCS(0)
	b.Run("impl=nettune", func(b *testing.B) {
		p, err := pool.New(newThing, func(*thing) error { return nil }, pool.MaxSize(size))
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(ctx)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r, err := p.Get(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				r.Release()
			}
		})
	})
	b.Run("impl=puddle", func(b *testing.B) {
		p := newPuddle(b, size)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r, err := p.Acquire(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				r.Release()
			}
		})
	})
	b.Run("impl=chan", func(b *testing.B) {
		p := newChanPool(size, newThing)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				v, err := p.Get(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				p.Put(v)
			}
		})
	})
}

// BenchmarkHandoff: one resource, 8 goroutines taking turns with it, so
// nearly every Get waits and is served by a hand-off. ns/op is per
// acquire+release, across all goroutines.
func BenchmarkHandoff(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=nettune", func(b *testing.B) {
		p, err := pool.New(newThing, func(*thing) error { return nil }, pool.MaxSize(1))
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(ctx)
		handoff(b, func() error {
			r, err := p.Get(ctx)
			if err != nil {
				return err
			}
			r.Release()
			return nil
		})
	})
	b.Run("impl=puddle", func(b *testing.B) {
		p := newPuddle(b, 1)
		handoff(b, func() error {
			r, err := p.Acquire(ctx)
			if err != nil {
				return err
			}
			r.Release()
			return nil
		})
	})
	b.Run("impl=chan", func(b *testing.B) {
		p := newChanPool(1, newThing)
		handoff(b, func() error {
			v, err := p.Get(ctx)
			if err != nil {
				return err
			}
			p.Put(v)
			return nil
		})
	})
}

// handoff runs op from 8 goroutines at once (whatever GOMAXPROCS is).
func handoff(b *testing.B, op func() error) {
	const goroutines = 8
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((goroutines + procs - 1) / procs)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetCancelled: a Get whose context is already cancelled must
// fail at once without allocating.
func BenchmarkGetCancelled(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run("impl=nettune", func(b *testing.B) {
		p, err := pool.New(newThing, func(*thing) error { return nil }, pool.MaxSize(1))
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(context.Background())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Get(ctx); !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=puddle", func(b *testing.B) {
		p := newPuddle(b, 1)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Acquire(ctx); !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=chan", func(b *testing.B) {
		p := newChanPool(1, newThing)
		v, _ := p.Get(context.Background()) // the only token is out: Get must wait
		defer p.Put(v)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Get(ctx); !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
		}
	})
}
