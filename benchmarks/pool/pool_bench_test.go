// Package poolbench compares nettune's pool with jackc/puddle/v2 and with a
// plain buffered-channel pool.
package poolbench

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/jackc/puddle/v2"
	"github.com/nettune/nettune/internal/servetest"
	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/pool"
)

// thing is not zero-sized, so that every newThing is a distinct allocation.
type thing struct{ _ int }

func newThing(context.Context) (*thing, error) { return &thing{}, nil }

// chanPool is the textbook pool: a buffered channel of tokens, a dial on
// a token with no idle resource.
type chanPool[T any] struct {
	idle   chan T
	tokens chan struct{}
	dial   func(context.Context) (T, error)
	waits  atomic.Uint64 // Gets that found nothing idle and were served by a Put
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
		p.waits.Add(1)
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

// recorders are the wait-time settings the nettune benchmarks run with:
// none (the plain name, comparable with earlier runs) and
// pool.RecordWaitTime into a latency histogram.
var recorders = []struct {
	name string
	opts func(b *testing.B) []pool.Option
}{
	{"", func(*testing.B) []pool.Option { return nil }},
	{"/recorder=histogram", func(b *testing.B) []pool.Option {
		h, err := latency.New()
		if err != nil {
			b.Fatal(err)
		}
		return []pool.Option{pool.RecordWaitTime(h)}
	}},
}

func BenchmarkAcquireRelease(b *testing.B) {
	ctx := context.Background()
	for _, rec := range recorders {
		b.Run("impl=nettune"+rec.name, func(b *testing.B) {
			p, err := pool.New(newThing, func(*thing) error { return nil }, append(rec.opts(b), pool.MaxSize(8))...)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Shutdown(ctx)
			b.ReportAllocs()
			for b.Loop() {
				r, err := p.Get(ctx)
				if err != nil {
					b.Fatal(err)
				}
				r.Release()
			}
		})
	}
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
	for _, rec := range recorders {
		b.Run("impl=nettune"+rec.name, func(b *testing.B) {
			p, err := pool.New(newThing, func(*thing) error { return nil }, append(rec.opts(b), pool.MaxSize(size))...)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Shutdown(ctx)
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
	}
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
		defer p.Shutdown(context.Background())
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

// silentServer accepts loopback TCP conns and holds them open, silent,
// until the benchmark ends.
func silentServer(b *testing.B) string { return servetest.Loopback(b, servetest.Discard) }

// BenchmarkRequestPlain is a pooled request on plain loopback TCP: Get,
// write 64 bytes, read their echo, Close. It measures what the *Conn's
// bookkeeping (when a Read last proved the peer alive, whether a Write is
// unanswered) adds to a request.
func BenchmarkRequestPlain(b *testing.B) {
	addr := plainEchoServer(b)
	ctx := context.Background()
	cp, err := pool.NewConnPool(nil, "tcp", addr, pool.MaxSize(1))
	if err != nil {
		b.Fatal(err)
	}
	defer cp.Shutdown(ctx)
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		c, err := cp.Get(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := request(c, buf); err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
}

// plainEchoServer serves plain TCP echo on loopback until the benchmark
// ends.
func plainEchoServer(b *testing.B) string { return servetest.Loopback(b, servetest.Echo) }
