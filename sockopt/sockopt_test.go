package sockopt_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/nettune/nettune/sockopt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEveryInvalidValueIsRejectedNamingTheOptionAndValue(t *testing.T) {
	cases := []struct {
		o    sockopt.Option
		why  string // a word the message must contain
		show string // how the value appears in the message
	}{
		{sockopt.KeepAliveIdle(0), "at least", "0s"},
		{sockopt.KeepAliveIdle(-time.Second), "at least", "-1s"},
		{sockopt.KeepAliveIdle(1500 * time.Millisecond), "whole number of seconds", "1.5s"},
		{sockopt.KeepAliveIdle(32768 * time.Second), "maximum", "9h6m8s"},
		{sockopt.KeepAliveInterval(0), "at least", "0s"},
		{sockopt.KeepAliveInterval(time.Millisecond), "at least", "1ms"},
		{sockopt.KeepAliveInterval(2500 * time.Millisecond), "whole number of seconds", "2.5s"},
		{sockopt.KeepAliveInterval(32768 * time.Second), "maximum", "9h6m8s"},
		{sockopt.KeepAliveCount(0), "between", "=0"},
		{sockopt.KeepAliveCount(-1), "between", "=-1"},
		{sockopt.KeepAliveCount(128), "between", "=128"},
		{sockopt.UserTimeout(-time.Millisecond), "negative", "-1ms"},
		{sockopt.UserTimeout(time.Microsecond), "milliseconds", "1µs"},
		{sockopt.UserTimeout(math.MaxInt32*time.Millisecond + time.Millisecond), "maximum", "596h31m23.648s"},
		{sockopt.ReceiveBuffer(0), "between", "=0"},
		{sockopt.ReceiveBuffer(-4096), "between", "=-4096"},
		{sockopt.ReceiveBuffer(math.MaxInt32/2 + 1), "between", "=1073741824"},
		{sockopt.SendBuffer(0), "between", "=0"},
		{sockopt.SendBuffer(-1), "between", "=-1"},
		{sockopt.ReceiveBufferForce(0), "between", "=0"},
		{sockopt.ReceiveBufferForce(-1), "between", "=-1"},
		{sockopt.SendBufferForce(0), "between", "=0"},
		{sockopt.SendBufferForce(math.MaxInt32), "between", "=2147483647"},
		{sockopt.FastOpen(-1), "between", "=-1"},
		{sockopt.DeferAccept(-time.Second), "at least", "-1s"},
		{sockopt.DeferAccept(500 * time.Millisecond), "whole number of seconds", "500ms"},
		{sockopt.Congestion(""), "empty", "TCP_CONGESTION="},
		{sockopt.Congestion("a-very-long-congestion-name"), "15 bytes", "a-very-long-congestion-name"},
		{sockopt.Congestion("bb r"), "space", "bb r"},
		{sockopt.Congestion("bbr\x00"), "control", "bbr"},
		{sockopt.NotSentLowat(-1), "between", "=-1"},
		{sockopt.MaxSegment(0), "between", "=0"},
		{sockopt.MaxSegment(87), "between", "=87"},
		{sockopt.MaxSegment(32768), "between", "=32768"},
		{sockopt.WindowClamp(0), "between", "=0"},
		{sockopt.WindowClamp(-1), "between", "=-1"},
		{sockopt.Linger(1500 * time.Millisecond), "whole number of seconds", "1.5s"},
		{sockopt.Linger(time.Duration(math.MaxInt32+1) * time.Second), "maximum", "596523h14m8s"},
		{sockopt.Linger(-time.Hour), "LingerOff", "SO_LINGER=-1h0m0s"},
		{sockopt.TOS(-1), "between", "=0x-1"},
		{sockopt.TOS(256), "between", "=0x100"},
		{sockopt.Priority(-1), "between", "=-1"},
		{sockopt.BindToDevice(""), "empty", "SO_BINDTODEVICE="},
		{sockopt.BindToDevice("averyveryverylongif"), "IFNAMSIZ", "averyveryverylongif"},
		{sockopt.BindToDevice("eth0/1"), "'/'", "eth0/1"},
		{sockopt.BindToDevice("eth 0"), "space", "eth 0"},
		{sockopt.BindToDevice(".."), "not an interface", ".."},
		{sockopt.BusyPoll(-time.Microsecond), "negative", "-1µs"},
		{sockopt.BusyPoll(1500 * time.Nanosecond), "microseconds", "1.5µs"},
		{sockopt.BusyPoll(math.MaxInt32*time.Microsecond + time.Microsecond), "maximum", "35m47.483648s"},
		{sockopt.IncomingCPU(-1), "between", "=-1"},
	}
	for _, tc := range cases {
		t.Run(tc.o.String(), func(t *testing.T) {
			err := tc.o.Validate()
			require.Error(t, err)
			var se *sockopt.Error
			require.ErrorAs(t, err, &se, "validation errors are *sockopt.Error")
			assert.Equal(t, tc.o, se.Option, "the error carries the option")
			assert.Equal(t, "validate", se.Op)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "sockopt "+tc.o.Name()), "message %q names the option first", msg)
			assert.Contains(t, msg, tc.show, "message names the value")
			assert.Contains(t, msg, tc.why, "message says what is wrong")
			var setErr *sockopt.Error
			require.ErrorAs(t, sockopt.Validate(sockopt.NoDelay(true), tc.o), &setErr, "Validate of a set fails too")
			assert.Equal(t, tc.o, setErr.Option, "Validate of a set names the bad option")
		})
	}
}

func TestBoundaryValuesAreValid(t *testing.T) {
	valid := []sockopt.Option{
		sockopt.NoDelay(false), sockopt.KeepAlive(true),
		sockopt.KeepAliveIdle(time.Second), sockopt.KeepAliveIdle(32767 * time.Second),
		sockopt.KeepAliveInterval(time.Second), sockopt.KeepAliveCount(1), sockopt.KeepAliveCount(127),
		sockopt.UserTimeout(0), sockopt.UserTimeout(math.MaxInt32 * time.Millisecond),
		sockopt.ReceiveBuffer(1), sockopt.SendBuffer(math.MaxInt32 / 2),
		sockopt.ReceiveBufferForce(1 << 20), sockopt.SendBufferForce(1 << 20),
		sockopt.ReuseAddr(true), sockopt.ReusePort(false), sockopt.FastOpen(0), sockopt.FastOpen(1024),
		sockopt.FastOpenConnect(true), sockopt.DeferAccept(0), sockopt.DeferAccept(time.Hour),
		sockopt.Congestion("cubic"), sockopt.Congestion("abcdefghijklmno"),
		sockopt.NotSentLowat(0), sockopt.NotSentLowat(16384), sockopt.QuickAck(true),
		sockopt.MaxSegment(88), sockopt.MaxSegment(32767), sockopt.WindowClamp(1),
		sockopt.LingerOff, sockopt.Linger(0), sockopt.Linger(time.Minute),
		sockopt.TOS(0), sockopt.TOS(255), sockopt.Mark(0), sockopt.Mark(math.MaxUint32),
		sockopt.Priority(0), sockopt.Priority(7), sockopt.BindToDevice("lo"), sockopt.BindToDevice("abcdefghijklmno"),
		sockopt.BusyPoll(0), sockopt.BusyPoll(50 * time.Microsecond), sockopt.IncomingCPU(0),
		sockopt.BindAddressNoPort(true),
	}
	for _, o := range valid {
		assert.NoError(t, o.Validate(), "%v is valid", o)
	}
}

func TestValidateRejectsTwoValuesForOneOption(t *testing.T) {
	err := sockopt.Validate(sockopt.ReceiveBuffer(1<<16), sockopt.NoDelay(true), sockopt.ReceiveBuffer(1<<17))
	var se *sockopt.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, sockopt.ReceiveBuffer(1<<17), se.Option)
	assert.Contains(t, err.Error(), "conflicts with SO_RCVBUF=65536")
	assert.NoError(t, sockopt.Validate(sockopt.ReceiveBuffer(1<<16), sockopt.ReceiveBuffer(1<<16)), "repeating the same value is harmless")
	assert.Error(t, sockopt.Validate(nil), "a nil Option is an error, not a panic")
}

func TestCheckNamesOptionsThatHaveNoEffectInARole(t *testing.T) {
	cases := []struct {
		r  sockopt.Role
		o  sockopt.Option
		ok bool
	}{
		{sockopt.Listening, sockopt.FastOpen(16), true},
		{sockopt.Dialing, sockopt.FastOpen(16), false},
		{sockopt.Dialing, sockopt.FastOpenConnect(true), true},
		{sockopt.Listening, sockopt.FastOpenConnect(true), false},
		{sockopt.Listening, sockopt.DeferAccept(time.Second), true},
		{sockopt.Accepted, sockopt.DeferAccept(time.Second), false},
		{sockopt.Accepted, sockopt.NoDelay(true), true},
		{sockopt.Dialing, sockopt.NoDelay(true), false}, // Go resets it after connect
		{sockopt.Listening, sockopt.KeepAliveIdle(time.Minute), false},
		{sockopt.Accepted, sockopt.ReusePort(true), false},
		{sockopt.Dialing, sockopt.BindAddressNoPort(true), true},
		{sockopt.Accepted, sockopt.UserTimeout(time.Second), true},
	}
	for _, tc := range cases {
		err := sockopt.Check(tc.r, tc.o)
		if tc.ok {
			assert.NoError(t, err, "%v on a %v socket", tc.o, tc.r)
			continue
		}
		var se *sockopt.Error
		if assert.ErrorAs(t, err, &se, "%v on a %v socket", tc.o, tc.r) {
			assert.Equal(t, tc.o, se.Option)
			assert.Equal(t, "check", se.Op)
		}
	}
}

func TestAfterConnectAndTCPOnlyClassifyTheMeasuredOptions(t *testing.T) {
	after := []sockopt.Option{sockopt.NoDelay(true), sockopt.KeepAlive(true), sockopt.KeepAliveIdle(time.Second),
		sockopt.KeepAliveInterval(time.Second), sockopt.KeepAliveCount(3), sockopt.QuickAck(true)}
	for _, o := range after {
		assert.True(t, sockopt.AfterConnect(o), "%v", o)
	}
	assert.False(t, sockopt.AfterConnect(sockopt.UserTimeout(time.Second)))
	tcpOnly := []sockopt.Option{sockopt.UserTimeout(time.Second), sockopt.QuickAck(true), sockopt.WindowClamp(1 << 16),
		sockopt.NotSentLowat(1 << 14), sockopt.BusyPoll(time.Microsecond), sockopt.TOS(0x10)}
	for _, o := range tcpOnly {
		assert.True(t, sockopt.TCPOnly(o), "%v", o)
	}
	for _, o := range []sockopt.Option{sockopt.ReceiveBuffer(1 << 16), sockopt.Congestion("bbr"), sockopt.MaxSegment(1400), sockopt.Linger(0)} {
		assert.False(t, sockopt.TCPOnly(o), "%v works on MPTCP sockets", o)
	}
}

func TestUnsupportedErrorsWrapErrUnsupported(t *testing.T) {
	// A custom syscall.Conn is not needed: an Error built for a missing
	// platform feature must unwrap to errors.ErrUnsupported.
	err := &sockopt.Error{Option: sockopt.Mark(1), Op: "setsockopt", Err: errors.ErrUnsupported}
	assert.ErrorIs(t, err, errors.ErrUnsupported)
	assert.Equal(t, "sockopt SO_MARK=1: setsockopt: unsupported operation", err.Error())
}

func TestNilOptionsAreErrorsNotPanics(t *testing.T) {
	assert.Error(t, sockopt.Validate(nil))
	assert.Error(t, sockopt.Check(sockopt.Dialing, nil))
	assert.False(t, sockopt.TCPOnly(nil))
	assert.False(t, sockopt.AfterConnect(nil))
	assert.Error(t, sockopt.Control(nil)("tcp", "127.0.0.1:1", nil))
	assert.Equal(t, "sockopt: boom", (&sockopt.Error{Err: errors.New("boom")}).Error())
	sys, err := sockopt.ReadSystemFS(fakeHost(capsRoot, nil))
	require.NoError(t, err)
	assert.Empty(t, sys.Explain(nil))
}

func TestRolesPrintAsWords(t *testing.T) {
	assert.Equal(t, "dialing", sockopt.Dialing.String())
	assert.Equal(t, "listening", sockopt.Listening.String())
	assert.Equal(t, "accepted", sockopt.Accepted.String())
	assert.Equal(t, "dialing|accepted", sockopt.Connected.String())
	assert.Equal(t, "Role(0)", sockopt.Role(0).String())
	assert.Equal(t, "listening|Role(8)", (sockopt.Listening | 8).String())
}

func TestEnumsPrintReadably(t *testing.T) {
	assert.Equal(t, "TIME_WAIT", sockopt.StateTimeWait.String())
	assert.Equal(t, "TCPState(99)", sockopt.TCPState(99).String())
	assert.Equal(t, "recovery", sockopt.CARecovery.String())
	assert.Equal(t, "CongestionState(9)", sockopt.CongestionState(9).String())
	assert.Equal(t, "timestamps,sack,wscale", (sockopt.OptTimestamps | sockopt.OptSACK | sockopt.OptWindowScale).String())
	assert.Equal(t, "none", sockopt.TCPOptions(0).String())
	assert.Equal(t, "syn-data,0x80", (sockopt.OptSYNData | 0x80).String())
	for v, s := range map[sockopt.Verdict]string{sockopt.Applied: "applied", sockopt.Clamped: "clamped", sockopt.Refused: "refused",
		sockopt.Ignored: "ignored", sockopt.Adjusted: "adjusted", sockopt.Caveat: "caveat", sockopt.NotApplied: "NOT APPLIED", 0: "Verdict(0)"} {
		assert.Equal(t, s, v.String())
	}
	f := sockopt.Finding{Option: sockopt.Mark(1), Verdict: sockopt.Refused, Reason: "no CAP_NET_ADMIN"}
	assert.Equal(t, "SO_MARK=1: refused: no CAP_NET_ADMIN", f.String())
	assert.Equal(t, "no option is clamped, refused or ignored by this host\n", sockopt.Findings(nil).String())
}

// Every message names the package once, then the option as it prints,
// then what is wrong, and a Parse error says what the value should be.
func TestErrorMessagesNameThePackageOnceAndSayWhatToWrite(t *testing.T) {
	for s, want := range map[string]string{
		"TCP_NODELAY=maybe":       `sockopt: "TCP_NODELAY=maybe": want true or false`,
		"TCP_USER_TIMEOUT=5":      `sockopt: "TCP_USER_TIMEOUT=5": want a duration such as 5s or 1500ms`,
		"SO_RCVBUF=lots":          `sockopt: "SO_RCVBUF=lots": want a decimal integer`,
		"IP_TOS=ef":               `sockopt: "IP_TOS=ef": want a number from 0 to 255, decimal or 0x hexadecimal`,
		"SO_MARK=-1":              `sockopt: "SO_MARK=-1": want an unsigned 32-bit number, decimal or 0x hexadecimal`,
		"RAW(level=6,name=7)=0xz": `sockopt: "RAW(level=6,name=7)=0xz": want 0x and hexadecimal bytes, or a decimal int`,
		"SO_LINGER=forever":       `sockopt: "SO_LINGER=forever": want off or a duration such as 5s`,
		"TCP_CONGESTION=bb r":     `sockopt TCP_CONGESTION=bb r: name contains a space, control or non-ASCII character`,
		"RAW(level=-1,name=7)=1":  `sockopt RAW(level=-1,name=7)=1: level must be between 0 and 2147483647`,
	} {
		_, err := sockopt.Parse(s)
		require.Error(t, err, s)
		assert.Equal(t, want, err.Error(), s)
	}
	mp := &sockopt.Error{Option: sockopt.UserTimeout(time.Second), Op: "check", Err: sockopt.ErrMPTCP}
	assert.Equal(t, 1, strings.Count(mp.Error(), "sockopt"), "the package is named once: %s", mp)
}
