package cli

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nettune/nettune/latency"
)

// LoadResult is the outcome of Load.
type LoadResult struct {
	Snap    *latency.Snapshot // latencies of the calls that succeeded
	Failed  int               // calls that returned an error
	LastErr error             // the last of those errors
}

// Row is the result as a row of WriteLatencyTable.
func (r *LoadResult) Row(title string) LatencyRow {
	return LatencyRow{Title: title, Snap: r.Snap, Failed: r.Failed}
}

// Load makes n calls from workers goroutines at once and records how long
// each successful one took. Each goroutine calls newCall once, to get a
// call function with its own buffers. Load returns ctx.Err() when ctx
// ends first, and an error wrapping the last failure when every call
// failed.
func Load(ctx context.Context, n, workers int, newCall func() func(context.Context) error) (*LoadResult, error) {
	h, err := latency.New()
	if err != nil {
		return nil, err
	}
	var next, failed atomic.Int64
	var mu sync.Mutex // guards lastErr
	var lastErr error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call := newCall()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				start := time.Now()
				if err := call(ctx); err != nil {
					failed.Add(1)
					mu.Lock()
					lastErr = err
					mu.Unlock()
					continue
				}
				h.Record(time.Since(start))
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &LoadResult{Snap: h.Snapshot(), Failed: int(failed.Load()), LastErr: lastErr}
	if res.Snap.Count() == 0 {
		return nil, fmt.Errorf("all %d requests failed: %w", n, lastErr)
	}
	return res, nil
}

// LoadFlags are the flags of a program that sends requests with Load.
type LoadFlags struct {
	N       int           // -n: requests per run
	Workers int           // -workers: requests in flight at once, from 1 to 1024
	Timeout time.Duration // -timeout: the limit for each request
}

// LoadFlags defines -n (its default n), -workers (default 4) and -timeout
// (default 5s) into p.
func (f *FlagSet) LoadFlags(p *LoadFlags, n int) {
	f.Int(&p.N, "n", n, 1, math.MaxInt, "requests per run")
	f.Int(&p.Workers, "workers", 4, 1, 1024, "requests in flight at once, one goroutine each")
	f.Duration(&p.Timeout, "timeout", 5*time.Second, 1, "limit for each request")
}
