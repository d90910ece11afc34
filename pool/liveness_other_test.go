//go:build !unix

package pool_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/nettune/nettune/pool"
)

func TestAskingForTheLivenessCheckWhereItIsUnsupportedIsAnError(t *testing.T) {
	for _, d := range []time.Duration{time.Second, pool.EveryCheckout} {
		_, err := pool.NewConnPool(nil, "tcp", "127.0.0.1:1", pool.LivenessCheck(d))
		assert.ErrorIs(t, err, errors.ErrUnsupported)
		var oe *pool.OptionError
		if assert.ErrorAs(t, err, &oe) {
			assert.Equal(t, pool.LivenessCheck(d).String(), oe.Option.String())
		}
	}
	for _, opts := range [][]pool.ConnOption{nil, {pool.LivenessCheck(0)}, {pool.LivenessCheck(-1)},
		{pool.LivenessCheck(time.Second), pool.LivenessCheck(0)}} {
		cp, err := pool.NewConnPool(nil, "tcp", "127.0.0.1:1", opts...)
		if assert.NoError(t, err, "%v: the default here, and off, are just off", opts) {
			assert.NoError(t, cp.Shutdown(t.Context()))
		}
	}
}
