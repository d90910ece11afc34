package cli

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errOdd = errors.New("odd call")

func TestLoadMakesExactlyNCallsAndCountsFailuresApart(t *testing.T) {
	var calls, workers atomic.Int64
	res, err := Load(context.Background(), 100, 4, func() func(context.Context) error {
		workers.Add(1)
		return func(context.Context) error {
			if calls.Add(1)%2 == 1 {
				return errOdd
			}
			return nil
		}
	})
	require.NoError(t, err)
	assert.Equal(t, int64(100), calls.Load())
	assert.Equal(t, int64(4), workers.Load(), "one call function per goroutine")
	assert.Equal(t, uint64(50), res.Snap.Count())
	assert.Equal(t, 50, res.Failed)
	assert.ErrorIs(t, res.LastErr, errOdd)
}

func TestLoadFailsWhenEveryCallFailsOrTheContextEnds(t *testing.T) {
	_, err := Load(context.Background(), 5, 2, func() func(context.Context) error {
		return func(context.Context) error { return errOdd }
	})
	assert.ErrorIs(t, err, errOdd)

	ctx, cancel := context.WithCancel(context.Background())
	_, err = Load(ctx, 1000, 2, func() func(context.Context) error {
		return func(context.Context) error { cancel(); return nil }
	})
	assert.ErrorIs(t, err, context.Canceled)
}
