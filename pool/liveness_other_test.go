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
	_, err := pool.NewConnPool(nil, "tcp", "127.0.0.1:1", pool.LivenessCheck(time.Second))
	assert.ErrorIs(t, err, errors.ErrUnsupported)
	var oe *pool.OptionError
	if assert.ErrorAs(t, err, &oe) {
		assert.Equal(t, "pool.LivenessCheck(1s)", oe.Option.String())
	}
	cp, err := pool.NewConnPool(nil, "tcp", "127.0.0.1:1")
	if assert.NoError(t, err, "by default the check is just off") {
		assert.NoError(t, cp.Shutdown(t.Context()))
	}
}
