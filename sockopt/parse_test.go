package sockopt

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// every is one value of each option type, for seeds and coverage checks.
var every = []Option{
	NoDelay(true), KeepAlive(false), KeepAliveIdle(30 * time.Second), KeepAliveInterval(5 * time.Second),
	KeepAliveCount(4), UserTimeout(1500 * time.Millisecond), ReceiveBuffer(1 << 20), SendBuffer(1 << 19),
	ReceiveBufferForce(1 << 21), SendBufferForce(1 << 21), ReuseAddr(true), ReusePort(true), FastOpen(64),
	FastOpenConnect(true), DeferAccept(5 * time.Second), Congestion("bbr"), NotSentLowat(16384),
	QuickAck(true), MaxSegment(1400), WindowClamp(65535), LingerOff, Linger(0), Linger(3 * time.Second),
	TOS(0xb8), Mark(0xffffffff), Priority(6), BindToDevice("eth0"), BusyPoll(50 * time.Microsecond),
	IncomingCPU(1), BindAddressNoPort(true),
	RawInt(0, 15, 1), RawInt(6, 7, -1), Raw(41, 26, []byte{1, 0, 0, 0}), Raw(1, 25, nil),
}

func TestParseReadsWhatStringPrintsForEveryOptionType(t *testing.T) {
	require.Len(t, parsers, 28, "every option type has a parser")
	for _, o := range every {
		got, err := Parse(o.String())
		require.NoError(t, err, "%v", o)
		assert.Equal(t, o, got)
	}
}

func TestParseRejectsMalformedAndInvalidInput(t *testing.T) {
	for _, s := range []string{"", "TCP_NODELAY", "TCP_NODELAY=maybe", "NO_SUCH=1", "SO_RCVBUF=-1",
		"TCP_USER_TIMEOUT=5", "IP_TOS=0x100", "SO_MARK=-1", "TCP_KEEPIDLE=1.5s",
		"RAW(level=6,name=7)", "RAW(6,7)=1", "RAW(level=6)=1", "RAW(level=x,name=7)=1", "RAW(level=6,name=7)=0x0",
		"RAW(level=6,name=7)=0xzz", "RAW(level=6,name=7)=one", "RAW(level=-1,name=7)=1", "RAW(level=6,name=-7)=1",
		"RAW(level=6,name=7)=4294967296"} {
		_, err := Parse(s)
		assert.Error(t, err, "%q", s)
	}
	_, err := Parse("SO_RCVBUF=-1")
	var se *Error
	assert.True(t, errors.As(err, &se), "a value Validate refuses is an *Error")
}

// FuzzStringParseRoundTrip checks that for any value of any option type,
// valid or not, String prints something parse reads back to the very same
// option, and that Parse never panics and accepts only what Validate
// accepts. Since parse is a function, the exact round trip also proves that
// String is one-to-one: two options that print the same are equal, so a
// setting has one printed form and one value.
func FuzzStringParseRoundTrip(f *testing.F) {
	for i, o := range every {
		f.Add(uint8(i), int64(len(o.String())), o.String())
	}
	f.Add(uint8(indexOf(LingerOff)), int64(-time.Second), "SO_LINGER=-1s")
	f.Fuzz(func(t *testing.T, kind uint8, n int64, s string) {
		if o, err := Parse(s); err == nil && o.Validate() != nil {
			t.Fatalf("Parse(%q) accepted %v that Validate refuses", s, o)
		}
		proto := every[int(kind)%len(every)]
		var o Option
		switch proto := proto.(type) {
		case NoDelay:
			o = NoDelay(n&1 == 1)
		case KeepAlive:
			o = KeepAlive(n&1 == 1)
		case KeepAliveIdle:
			o = KeepAliveIdle(n)
		case KeepAliveInterval:
			o = KeepAliveInterval(n)
		case KeepAliveCount:
			o = KeepAliveCount(n)
		case UserTimeout:
			o = UserTimeout(n)
		case ReceiveBuffer:
			o = ReceiveBuffer(n)
		case SendBuffer:
			o = SendBuffer(n)
		case ReceiveBufferForce:
			o = ReceiveBufferForce(n)
		case SendBufferForce:
			o = SendBufferForce(n)
		case ReuseAddr:
			o = ReuseAddr(n&1 == 1)
		case ReusePort:
			o = ReusePort(n&1 == 1)
		case FastOpen:
			o = FastOpen(n)
		case FastOpenConnect:
			o = FastOpenConnect(n&1 == 1)
		case DeferAccept:
			o = DeferAccept(n)
		case Congestion:
			o = Congestion(s)
		case NotSentLowat:
			o = NotSentLowat(n)
		case QuickAck:
			o = QuickAck(n&1 == 1)
		case MaxSegment:
			o = MaxSegment(n)
		case WindowClamp:
			o = WindowClamp(n)
		case Linger:
			o = Linger(n)
		case TOS:
			o = TOS(n)
		case Mark:
			o = Mark(uint32(n))
		case Priority:
			o = Priority(n)
		case BindToDevice:
			o = BindToDevice(s)
		case BusyPoll:
			o = BusyPoll(n)
		case IncomingCPU:
			o = IncomingCPU(n)
		case BindAddressNoPort:
			o = BindAddressNoPort(n&1 == 1)
		case RawOption:
			// Level and name from the high bits, negative ones too.
			level, name := int(int16(n>>48)), int(int16(n>>32))
			if _, isInt := proto.Int(); isInt {
				o = RawInt(level, name, int(n))
			} else {
				o = Raw(level, name, []byte(s))
			}
		default:
			t.Fatalf("no case for %T", proto)
		}
		got, err := parse(o.String())
		if err != nil {
			t.Fatalf("parse(%q) of %#v: %v", o.String(), o, err)
		}
		if got != o {
			t.Fatalf("parse(%q) = %#v, want %#v", o.String(), got, o)
		}
		if o.Validate() == nil {
			checkValid(t, o)
		}
	})
}

// FuzzParse checks every option Parse accepts: it is valid, it prints as
// something Parse reads back to an equal option, and Validate never calls
// it a conflict with itself or with its round trip.
func FuzzParse(f *testing.F) {
	for _, o := range every {
		f.Add(o.String())
	}
	for _, s := range []string{"SO_LINGER=-1s", "SO_LINGER=-1ns", "SO_LINGER=0", "SO_LINGER=off",
		"IP_TOS=0x-1", "IP_TOS=010", "SO_MARK=0x10", "TCP_USER_TIMEOUT=1000000us", "TCP_NODELAY=T",
		"TCP_CONGESTION=a=b", "SO_BINDTODEVICE==", "RAW(level=6,name=7)=0x01000000", "RAW(level=6,name=7)=1",
		"RAW(level=+6,name=07)=+1", "RAW(level=6,name=7)=0xAB", "RAW(level=6,name=7)=0x", "RAW(level=-1,name=7)=1",
		"RAW(level=6,name=7)=4294967296", "RAW(level=6,name=7)", "RAW(level=6,name=7)=0x0", "RAW(6,7)=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := Parse(s)
		if err != nil {
			return
		}
		if o == nil {
			t.Fatalf("Parse(%q) returned a nil Option and no error", s)
		}
		checkValid(t, o)
	})
}

// checkValid checks the promises every valid option keeps.
func checkValid(t *testing.T, o Option) {
	t.Helper()
	if err := o.Validate(); err != nil {
		t.Fatalf("%#v: Validate: %v", o, err)
	}
	p, err := Parse(o.String())
	if err != nil {
		t.Fatalf("Parse(%q) of valid %#v: %v", o.String(), o, err)
	}
	if p != o {
		t.Fatalf("Parse(%q) = %#v, want %#v", o.String(), p, o)
	}
	if p.String() != o.String() {
		t.Fatalf("%#v prints %q, its round trip %q", o, o.String(), p.String())
	}
	if err := Validate(o, o); err != nil {
		t.Fatalf("Validate(%v, %v): %v", o, o, err)
	}
	if err := Validate(o, p); err != nil {
		t.Fatalf("Validate(%v, Parse(%q)): %v", o, o.String(), err)
	}
}

func indexOf(o Option) int {
	for i, p := range every {
		if p == o {
			return i
		}
	}
	panic("not in every: " + o.String())
}

func TestANegativeLingerOtherThanLingerOffIsRefusedNotASecondOff(t *testing.T) {
	for _, s := range []string{"SO_LINGER=-1s", "SO_LINGER=-2ns", "SO_LINGER=-1h"} {
		o, err := Parse(s)
		var se *Error
		require.ErrorAs(t, err, &se, "Parse(%q) = %v", s, o)
		assert.Contains(t, err.Error(), "LingerOff", "the message says what to write instead")
		assert.Contains(t, err.Error(), strings.TrimPrefix(s, "SO_LINGER="), "the message shows the value as given")
	}
	assert.Error(t, Linger(-time.Second).Validate())
	assert.NotEqual(t, LingerOff.String(), Linger(-time.Second).String(), "only LingerOff prints as off")
	o, err := Parse("SO_LINGER=off")
	require.NoError(t, err)
	assert.Equal(t, LingerOff, o)
	assert.NoError(t, Validate(o, LingerOff))
}

func TestValidateNeverCallsAnOptionAConflictWithItself(t *testing.T) {
	for _, o := range every {
		assert.NoError(t, Validate(o, o), "%v", o)
		checkValid(t, o)
	}
}
