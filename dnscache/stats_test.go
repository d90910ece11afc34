package dnscache

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockingSource answers 127.0.0.1 once release is closed.
type blockingSource struct{ release chan struct{} }

func (b blockingSource) lookup(ctx context.Context, _, _ string) ([]netip.Addr, time.Duration, error) {
	select {
	case <-b.release:
		return addrs("127.0.0.1"), time.Minute, nil
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

// Stats.Lookups counts lookups started, as pool.Stats.Dials counts dials
// started: a lookup in progress is in both Lookups and InFlight.
func TestStatsCountALookupFromItsStart(t *testing.T) {
	c := newCache(t, System(nil))
	release := make(chan struct{})
	c.src = blockingSource{release} // before any lookup: nothing reads it yet
	done := make(chan error, 1)
	go func() {
		_, err := c.LookupNetIP(testCtx(t), "ip", "a.test")
		done <- err
	}()
	require.Eventually(t, func() bool { return c.Stats().InFlight == 1 }, 20*time.Second, time.Millisecond)
	st := c.Stats()
	assert.Equal(t, uint64(1), st.Lookups, "the lookup in progress is counted")
	close(release)
	require.NoError(t, <-done)
	settle(t, c)
	assert.Equal(t, uint64(1), c.Stats().Lookups, "and counted once")
}

func TestCloseIsAnIOCloserThatReturnsNil(t *testing.T) {
	var c io.Closer = newCache(t, System(nil))
	assert.NoError(t, c.Close())
	assert.NoError(t, c.Close(), "again")
}
