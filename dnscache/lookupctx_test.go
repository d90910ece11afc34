package dnscache

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

func TestALookupContextHasItsDeadlineBeforeAnythingIsMade(t *testing.T) {
	var l lookupCtx
	before := time.Now()
	l.start(context.Background(), time.Minute)
	dl, ok := l.Deadline()
	require.True(t, ok)
	assert.WithinRange(t, dl, before.Add(time.Minute), time.Now().Add(time.Minute))
	assert.Nil(t, l.made.Load(), "Deadline makes no context (and no timer)")
	l.end()
}

func TestALookupContextEndsAtItsDeadline(t *testing.T) {
	var l lookupCtx
	l.start(context.Background(), 20*time.Millisecond)
	defer l.end()
	select {
	case <-l.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("Done not closed 20 s after a 20 ms deadline")
	}
	assert.ErrorIs(t, l.Err(), context.DeadlineExceeded)
}

func TestALookupContextEndsWhenTheCacheCloses(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	var l lookupCtx
	l.start(parent, time.Hour)
	defer l.end()
	done := l.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Done not closed 20 s after its parent was cancelled")
	}
	assert.ErrorIs(t, l.Err(), context.Canceled)

	// Made after the parent ended: ended at once.
	var late lookupCtx
	late.start(parent, time.Hour)
	defer late.end()
	assert.ErrorIs(t, late.Err(), context.Canceled)
}

func TestALookupContextIsCancelledWhenItsLookupEnds(t *testing.T) {
	var l lookupCtx
	l.start(context.Background(), time.Hour)
	done := l.Done()
	l.end()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the context made during the lookup is not cancelled by its end (its timer would run for an hour)")
	}
	var after lookupCtx
	after.start(context.Background(), time.Hour)
	after.end()
	assert.ErrorIs(t, after.Err(), context.Canceled, "a context made once the lookup has returned is already ended")
}

// net's resolver and the stub derive contexts from the lookup's: they
// must join its tree of cancellation as they would a context of the
// context package, not start a goroutine each to watch it.
func TestContextsDerivedFromALookupContextStartNoGoroutine(t *testing.T) {
	var l lookupCtx
	l.start(context.Background(), time.Hour)
	defer l.end()
	const derived = 50
	before := runtime.NumGoroutine()
	cancels := make([]context.CancelFunc, derived)
	for i := range cancels {
		_, cancels[i] = context.WithTimeout(&l, time.Hour)
	}
	grown := runtime.NumGoroutine() - before
	for _, cancel := range cancels {
		cancel()
	}
	assert.Less(t, grown, derived/2, "%d contexts derived, %d goroutines more", derived, grown)
}

// A miss whose caller cannot give up (a context that never ends) from a
// source that answers from memory is run in the caller's goroutine: no
// goroutine, channel, timer or context of its own. What remains: the
// flight, the entry (which holds a one-address answer itself), the slot
// and its copy of the name, and the slice the source answers with.
func TestAMissThatNeedsNoGoroutineAllocatesFiveTimes(t *testing.T) {
	const entries = 64
	c := newCache(t, MaxEntries(entries), MaxBytes(1<<30))
	c.src, c.instant = countingSource{1}, true
	names := scaleNames(entries * 100)
	var buf [2]netip.Addr
	for _, h := range names[:entries] { // full, and its table grown
		_, err := c.AppendNetIP(context.Background(), buf[:0], "ip4", h)
		require.NoError(t, err)
	}
	i := entries
	allocs := testing.AllocsPerRun(2000, func() {
		_, err := c.AppendNetIP(context.Background(), buf[:0], "ip4", names[i%len(names)])
		if err != nil {
			t.Fatal(err)
		}
		i++
	})
	assert.LessOrEqual(t, allocs, 5.0, "allocations per miss into a full cache")
	assert.Equal(t, entries, c.Stats().Entries)
}

// A caller whose context never ends runs the lookup it starts in its own
// goroutine; callers that join it meanwhile still get its answer, or give
// up alone when their context ends, as they would join any lookup.
func TestCallersJoiningALookupRunByItsFirstCallerGetItsAnswerOrGiveUpAlone(t *testing.T) {
	srv := startServer(t)
	srv.SetAddrs("slow.test", time.Minute, addrs("127.0.0.2")...)
	srv.SetDelay("slow.test", 500*time.Millisecond) // the stub's timeout is 1 s
	c := stubCache(t, srv, newFakeClock())
	type result struct {
		a   []netip.Addr
		err error
	}
	ask := func(ctx context.Context) chan result {
		ch := make(chan result, 1)
		go func() {
			a, err := c.LookupNetIP(ctx, "ip4", "slow.test")
			ch <- result{a, err}
		}()
		return ch
	}
	wait := func(ch chan result, who string) result {
		t.Helper()
		select {
		case r := <-ch:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("%s not answered within 20 s", who)
			return result{}
		}
	}
	first := ask(context.Background()) // never ends: runs the lookup itself
	require.Eventually(t, func() bool { return c.Stats().InFlight == 1 }, 10*time.Second, time.Millisecond)
	impatientCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	impatient := ask(impatientCtx)
	patient := ask(testCtx(t))
	require.Eventually(t, func() bool { return c.Stats().Misses == 3 }, 10*time.Second, time.Millisecond, "both joined")
	cancel()
	r := wait(impatient, "the caller that gave up")
	assert.ErrorIs(t, r.err, context.Canceled, "it sees its own cancellation")
	assert.Equal(t, 1, c.Stats().InFlight, "and the lookup goes on")
	r = wait(patient, "the patient caller")
	require.NoError(t, r.err)
	assert.Equal(t, addrs("127.0.0.2"), r.a, "the patient caller gets the answer")
	r = wait(first, "the first caller")
	require.NoError(t, r.err)
	assert.Equal(t, addrs("127.0.0.2"), r.a)
	assert.Equal(t, 1, srv.Queries("slow.test", dnsmessage.TypeA), "one query served all three")
}
