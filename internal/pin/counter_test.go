package pin

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// incFrom runs goroutines goroutines that each call Inc n times, and
// checks that each sees its shard's count grow on every call.
func incFrom(t *testing.T, c *Counter, goroutines, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if c.Inc() == 0 {
					t.Error("Inc returned 0: a shard's count after an increment is at least 1")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestACounterLosesNoIncrementFromParallelGoroutines(t *testing.T) {
	c := NewCounter()
	const goroutines, n = 8, 200_000
	incFrom(t, c, goroutines, n)
	assert.Equal(t, goroutines*n, int(c.Load()), "every Inc is counted once (pinned path: %t)", Pinned)
}

func TestACounterStaysExactWhenGOMAXPROCSGrowsPastItsShards(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	c := NewCounter()
	// Ps numbered past the shards made at NewCounter count into the shared
	// word: raise GOMAXPROCS well past them.
	runtime.GOMAXPROCS(4 * len(c.shards))
	const goroutines, n = 32, 20_000
	incFrom(t, c, goroutines, n)
	assert.Equal(t, goroutines*n, int(c.Load()), "every Inc is counted once with %d Ps and %d shards", 4*len(c.shards), len(c.shards))
}
