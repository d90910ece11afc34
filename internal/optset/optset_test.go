package optset_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/nettune/nettune/internal/optset"
	"github.com/nettune/nettune/sockopt"
)

type opt string

func TestDedupeKeepsTheFirstOfIdenticalOptions(t *testing.T) {
	a, b := sockopt.NoDelay(true), sockopt.UserTimeout(time.Second)
	assert.Equal(t, []sockopt.Option{a, b}, optset.Dedupe([]sockopt.Option{a, b, a, b}))
}

func TestValidateNamesTheEntryThatDisagreed(t *testing.T) {
	set := []optset.Entry[opt]{
		{Sockopt: sockopt.SendBuffer(1 << 16), From: "first"},
		{Sockopt: sockopt.SendBuffer(1 << 17), From: "second"},
	}
	from, err := optset.Validate(set)
	var se *sockopt.Error
	assert.ErrorAs(t, err, &se)
	assert.Contains(t, []opt{"first", "second"}, from, "an entry of the set is named: %v", err)
}

func TestCheckKeepAliveRefusesFieldsWithEnableFalse(t *testing.T) {
	assert.NoError(t, optset.CheckKeepAlive(net.KeepAliveConfig{}))
	assert.NoError(t, optset.CheckKeepAlive(net.KeepAliveConfig{Enable: true, Idle: -1, Interval: 0, Count: 9}))
	for _, cfg := range []net.KeepAliveConfig{{Idle: time.Second}, {Interval: -1}, {Count: 1}} {
		assert.ErrorContains(t, optset.CheckKeepAlive(cfg), "set Enable: true to use them", "%+v", cfg)
	}
	assert.Error(t, optset.CheckKeepAlive(net.KeepAliveConfig{Enable: true, Idle: 1500 * time.Millisecond}))
	assert.Error(t, optset.CheckKeepAlive(net.KeepAliveConfig{Enable: true, Count: 128}))
}

func TestKeepAliveOptionsFollowNetsMeaning(t *testing.T) {
	assert.Equal(t, []sockopt.Option{sockopt.KeepAlive(false)}, optset.KeepAliveOptions(net.KeepAliveConfig{}))
	assert.Equal(t, []sockopt.Option{sockopt.KeepAlive(true), sockopt.KeepAliveIdle(15 * time.Second),
		sockopt.KeepAliveInterval(15 * time.Second), sockopt.KeepAliveCount(9)},
		optset.KeepAliveOptions(net.KeepAliveConfig{Enable: true}), "zero fields: Go's defaults")
	assert.Equal(t, []sockopt.Option{sockopt.KeepAlive(true), sockopt.KeepAliveInterval(5 * time.Second)},
		optset.KeepAliveOptions(net.KeepAliveConfig{Enable: true, Idle: -1, Interval: 5 * time.Second, Count: -1}),
		"negative fields: the system's value")
}

func TestChainRunsInOrderAndStopsAtTheFirstError(t *testing.T) {
	var ran []string
	step := func(name string, err error) optset.ControlFunc {
		return func(string, string, syscall.RawConn) error { ran = append(ran, name); return err }
	}
	assert.Nil(t, optset.Chain(nil, nil))
	boom := errors.New("boom")
	err := optset.Chain(step("first", nil), []optset.ControlFunc{step("a", nil), step("b", boom), step("c", nil)})("tcp", "x", nil)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, []string{"first", "a", "b"}, ran)
}
