package cli

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nettune/nettune/sockopt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testFlags is a FlagSet with one flag of each kind.
type testFlags struct {
	f        *FlagSet
	out      bytes.Buffer
	n        int
	rate     float64
	timeout  time.Duration
	grace    time.Duration
	any      time.Duration
	on       bool
	name     string
	dial     string
	listen   string
	opts     Sockopts
	switched string
}

func newTestFlags() *testFlags {
	t := &testFlags{}
	f := NewFlagSet("prog", &t.out, "Does things.", "[flags]", "-dial host:port [flags]")
	f.Int(&t.n, "n", 10, 1, 100, "a `count`")
	f.Float(&t.rate, "rate", 0, "requests per second, 0 or more", func(r float64) bool { return r >= 0 }, "a rate")
	f.Duration(&t.timeout, "timeout", 5*time.Second, 1, "a timeout")
	f.Duration(&t.grace, "grace", 0, 0, "a grace period")
	f.Duration(&t.any, "any", time.Millisecond, AnyDuration, "any duration")
	f.Bool(&t.on, "on", false, "a switch")
	f.String(&t.name, "name", "x", "a name")
	f.DialAddr(&t.dial, "dial", "", "dial here")
	f.ListenAddr(&t.listen, "listen", ":0", "listen here")
	f.Sockopts(&t.opts, "sockopt", "socket options")
	f.Func("switch", "", "true or false", "a switch of one's own", func(s string) error { t.switched = s; return nil })
	t.f = f
	return t
}

func TestFlagSetParsesEveryKindOfFlag(t *testing.T) {
	tf := newTestFlags()
	require.NoError(t, tf.f.Parse([]string{"-n", "100", "-rate=2.5", "-timeout", "1s", "-grace", "0s", "-any", "-1s", "-on",
		"-name", "y", "-dial", "[::1]:80", "-listen", "127.0.0.1:0", "-sockopt", "TCP_NODELAY=true", "-sockopt", "SO_RCVBUF=4096", "-switch"}))
	assert.Equal(t, 100, tf.n)
	assert.Equal(t, 2.5, tf.rate)
	assert.Equal(t, time.Second, tf.timeout)
	assert.Equal(t, time.Duration(0), tf.grace)
	assert.Equal(t, -time.Second, tf.any)
	assert.True(t, tf.on, "a switch needs no value")
	assert.Equal(t, "y", tf.name)
	assert.Equal(t, "[::1]:80", tf.dial)
	assert.Equal(t, "127.0.0.1:0", tf.listen)
	assert.Equal(t, Sockopts{sockopt.NoDelay(true), sockopt.ReceiveBuffer(4096)}, tf.opts)
	assert.Equal(t, "true", tf.switched, "a Func without an arg is a switch")
	assert.True(t, tf.f.Given("on"))
	assert.False(t, tf.f.Given("name") && tf.f.Given("nope"))

	tf = newTestFlags()
	require.NoError(t, tf.f.Parse([]string{"-on=false", "-switch=false"}))
	assert.False(t, tf.on)
	assert.Equal(t, "false", tf.switched)
	assert.Equal(t, 10, tf.n, "the default stays")
	assert.False(t, tf.f.Given("n"))
}

func TestABadValueSaysTheFlagTheValueAndWhatTheFlagWants(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "0"}, `-n "0": want a whole number from 1 to 100`},
		{[]string{"-n", "ten"}, `-n "ten": want a whole number from 1 to 100`},
		{[]string{"-rate", "abc"}, `-rate "abc": want requests per second, 0 or more`},
		{[]string{"-rate", "-1"}, `-rate "-1": want requests per second, 0 or more`},
		{[]string{"-rate", "Inf"}, `-rate "Inf": want requests per second, 0 or more`},
		{[]string{"-timeout", "0s"}, `-timeout "0s": want a positive duration such as 5s or 250ms`},
		{[]string{"-timeout", "5"}, `-timeout "5": want a positive duration such as 5s or 250ms`},
		{[]string{"-grace", "-1s"}, `-grace "-1s": want a duration such as 5s or 250ms, 0 or more`},
		{[]string{"-on=maybe"}, `-on "maybe": want true or false`},
		{[]string{"-dial", "127.0.0.1:0"}, `-dial "127.0.0.1:0": want host:port, with a port number from 1 to 65535`},
		{[]string{"-dial", ":80"}, `-dial ":80": want host:port, with a port number from 1 to 65535`},
		{[]string{"-listen", "127.0.0.1:http"}, `-listen "127.0.0.1:http": want host:port or :port, with a port number from 0 (any free one) to 65535`},
	} {
		tf := newTestFlags()
		err := tf.f.Parse(tc.args)
		var ue *UsageError
		var fe *FlagError
		if assert.ErrorAs(t, err, &ue, "%v", tc.args) && assert.ErrorAs(t, err, &fe, "%v", tc.args) {
			assert.Equal(t, tc.want, err.Error())
		}
		assert.Empty(t, tf.out.String(), "%v: the error alone says what is wrong, without the usage", tc.args)
	}

	// Where the parser says more than the want text, its error follows,
	// and stays reachable.
	tf := newTestFlags()
	err := tf.f.Parse([]string{"-sockopt", "TCP_USER_TIMEOUT=-1s"})
	var fe *FlagError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "sockopt", fe.Flag)
	assert.Equal(t, "TCP_USER_TIMEOUT=-1s", fe.Value)
	var se *sockopt.Error
	assert.ErrorAs(t, err, &se, "the sockopt error is wrapped")
	assert.True(t, strings.HasPrefix(err.Error(), `-sockopt "TCP_USER_TIMEOUT=-1s": want NAME=value`), err.Error())

	tf = newTestFlags()
	err = tf.f.Parse([]string{"-dial", "no-port"})
	require.ErrorAs(t, err, &fe)
	assert.NotNil(t, fe.Err, "SplitHostPort's reason is kept")
}

func TestParseRefusesUnknownFlagsAndPositionalArguments(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-n"}, {"-n", "5", "extra"}} {
		tf := newTestFlags()
		var ue *UsageError
		assert.ErrorAs(t, tf.f.Parse(args), &ue, "%v", args)
		assert.Empty(t, tf.out.String(), "%v: the error alone says what is wrong", args)
	}
	tf := newTestFlags()
	err := tf.f.Parse([]string{"-on", "false"})
	var ue *UsageError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, `unexpected argument "false": -on is a switch: write -on=false`, err.Error())
}

func TestHelpPrintsTheSharedLayout(t *testing.T) {
	tf := newTestFlags()
	assert.ErrorIs(t, tf.f.Parse([]string{"-h"}), flag.ErrHelp)
	help := tf.out.String()
	assert.True(t, strings.HasPrefix(help, "usage: prog [flags]\n       prog -dial host:port [flags]\n\nDoes things.\n\nflags:\n"), help)
	for _, line := range []string{
		"  -n count\n    \ta count (default 10)\n",
		"  -on\n    \ta switch\n",
		"  -timeout duration\n    \ta timeout (default 5s)\n",
		"  -grace duration\n    \ta grace period\n",
		"  -dial host:port\n    \tdial here\n",
		"  -sockopt NAME=value\n    \tsocket options\n",
		"  -rate float\n    \ta rate\n",
	} {
		assert.Contains(t, help, line)
	}
}

func TestExitPrintsOneLineAndReturnsTheStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		line string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{&UsageError{&FlagError{Flag: "n", Value: "0", Want: "a whole number, 1 or more"}}, 2, "prog: -n \"0\": want a whole number, 1 or more (see prog -h)\n"},
		{Usagef("-tls needs -target host:port"), 2, "prog: -tls needs -target host:port (see prog -h)\n"},
		{errors.New("connection refused"), 1, "prog: connection refused\n"},
	} {
		var b bytes.Buffer
		assert.Equal(t, tc.code, Exit(&b, "prog", tc.err), "%v", tc.err)
		assert.Equal(t, tc.line, b.String())
	}
}

func TestIntWithoutAnUpperBoundSaysSo(t *testing.T) {
	var n int
	f := NewFlagSet("prog", &bytes.Buffer{}, "", "[flags]")
	f.Int(&n, "n", 1, 0, math.MaxInt, "n")
	assert.EqualError(t, f.Parse([]string{"-n", "-1"}), `-n "-1": want a whole number, 0 or more`)
}

func TestLoadFlagsDefinesTheFlagsOfALoadRun(t *testing.T) {
	var lf LoadFlags
	f := NewFlagSet("prog", &bytes.Buffer{}, "", "[flags]")
	f.LoadFlags(&lf, 100)
	require.NoError(t, f.Parse(nil))
	assert.Equal(t, LoadFlags{N: 100, Workers: 4, Timeout: 5 * time.Second}, lf, "the defaults")
	require.NoError(t, f.Parse([]string{"-n", "7", "-workers", "2", "-timeout", "1s"}))
	assert.Equal(t, LoadFlags{N: 7, Workers: 2, Timeout: time.Second}, lf)
	assert.EqualError(t, f.Parse([]string{"-workers", "2000"}), `-workers "2000": want a whole number from 1 to 1024`)
}
