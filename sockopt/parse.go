package sockopt

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Parse reads an option in the form its String method prints, NAME=value,
// such as "TCP_USER_TIMEOUT=5s", "SO_RCVBUF=1048576", "IP_TOS=0xb8",
// "SO_LINGER=off" or, for a [Raw] option, "RAW(level=6,name=7)=0x01000000"
// and "RAW(level=6,name=7)=1" for [RawInt], so option sets can come from
// flags and configuration files. Durations use time.ParseDuration,
// booleans strconv.ParseBool, IP_TOS accepts decimal or 0x-prefixed
// hexadecimal, and a raw value is decimal (RawInt) or 0x-prefixed
// hexadecimal bytes (Raw). The result is then validated: Parse returns an
// error for a value Validate refuses.
func Parse(s string) (Option, error) {
	name, val, ok := split(s)
	if !ok {
		return nil, fmt.Errorf("sockopt: %q: want NAME=value", s)
	}
	mk, ok := parserOf(name)
	if !ok && strings.HasPrefix(name, rawPrefix) {
		return nil, fmt.Errorf("sockopt: %q: want RAW(level=L,name=N)=value", s)
	}
	if !ok {
		return nil, fmt.Errorf("sockopt: %q: unknown option %q", s, name)
	}
	o, err := mk(val)
	if err != nil {
		return nil, fmt.Errorf("sockopt: %q: %w", s, err)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// parse is Parse without validation, for the round-trip test.
func parse(s string) (Option, error) {
	name, val, _ := split(s)
	mk, ok := parserOf(name)
	if !ok {
		return nil, errors.New("unknown option")
	}
	return mk(val)
}

// split cuts s into the name and the value. The name of a raw option,
// RAW(level=L,name=N), holds "=" itself and ends at ")=".
func split(s string) (name, val string, ok bool) {
	if strings.HasPrefix(s, rawPrefix) {
		i := strings.Index(s, ")=")
		if i < 0 {
			return "", "", false
		}
		return s[:i+1], s[i+2:], true
	}
	return strings.Cut(s, "=")
}

const rawPrefix = "RAW("

// parserOf returns the function that reads the value of the option called
// name.
func parserOf(name string) (func(string) (Option, error), bool) {
	if strings.HasPrefix(name, rawPrefix) {
		level, num, ok := rawName(name)
		if !ok {
			return nil, false
		}
		return func(v string) (Option, error) { return pRaw(level, num, v) }, true
	}
	mk, ok := parsers[name]
	return mk, ok
}

// rawName reads RAW(level=L,name=N).
func rawName(s string) (level, name int, ok bool) {
	s, ok = strings.CutSuffix(strings.TrimPrefix(s, rawPrefix), ")")
	l, n, ok2 := strings.Cut(s, ",")
	l, ok3 := strings.CutPrefix(l, "level=")
	n, ok4 := strings.CutPrefix(n, "name=")
	if !ok || !ok2 || !ok3 || !ok4 {
		return 0, 0, false
	}
	level, err := strconv.Atoi(l)
	if err != nil {
		return 0, 0, false
	}
	name, err = strconv.Atoi(n)
	return level, name, err == nil
}

// pRaw reads the value of a raw option: 0x and hexadecimal bytes for Raw,
// decimal for RawInt.
func pRaw(level, name int, v string) (Option, error) {
	if h, ok := strings.CutPrefix(v, "0x"); ok {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, errWantRaw
		}
		return Raw(level, name, b), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, errWantRaw
	}
	return RawInt(level, name, n), nil
}

// The errors of the value parsers say what to write; Parse adds the
// input.
var (
	errWantBool     = errors.New("want true or false")
	errWantInt      = errors.New("want a decimal integer")
	errWantDuration = errors.New("want a duration such as 5s or 1500ms")
	errWantTOS      = errors.New("want a number from 0 to 255, decimal or 0x hexadecimal")
	errWantMark     = errors.New("want an unsigned 32-bit number, decimal or 0x hexadecimal")
	errWantLinger   = errors.New("want off or a duration such as 5s")
	errWantRaw      = errors.New("want 0x and hexadecimal bytes, or a decimal int")
)

func pBool[T ~bool](v string) (Option, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, errWantBool
	}
	return any(T(b)).(Option), nil
}

func pInt[T ~int](v string) (Option, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, errWantInt
	}
	return any(T(n)).(Option), nil
}

func pDur[T ~int64](v string) (Option, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, errWantDuration
	}
	return any(T(d)).(Option), nil
}

func pStr[T ~string](v string) (Option, error) { return any(T(v)).(Option), nil }

var parsers = map[string]func(string) (Option, error){
	NoDelay(false).Name():           pBool[NoDelay],
	KeepAlive(false).Name():         pBool[KeepAlive],
	KeepAliveIdle(0).Name():         pDur[KeepAliveIdle],
	KeepAliveInterval(0).Name():     pDur[KeepAliveInterval],
	KeepAliveCount(0).Name():        pInt[KeepAliveCount],
	UserTimeout(0).Name():           pDur[UserTimeout],
	ReceiveBuffer(0).Name():         pInt[ReceiveBuffer],
	SendBuffer(0).Name():            pInt[SendBuffer],
	ReceiveBufferForce(0).Name():    pInt[ReceiveBufferForce],
	SendBufferForce(0).Name():       pInt[SendBufferForce],
	ReuseAddr(false).Name():         pBool[ReuseAddr],
	ReusePort(false).Name():         pBool[ReusePort],
	FastOpen(0).Name():              pInt[FastOpen],
	FastOpenConnect(false).Name():   pBool[FastOpenConnect],
	DeferAccept(0).Name():           pDur[DeferAccept],
	Congestion("").Name():           pStr[Congestion],
	NotSentLowat(0).Name():          pInt[NotSentLowat],
	QuickAck(false).Name():          pBool[QuickAck],
	MaxSegment(0).Name():            pInt[MaxSegment],
	WindowClamp(0).Name():           pInt[WindowClamp],
	BindToDevice("").Name():         pStr[BindToDevice],
	BusyPoll(0).Name():              pDur[BusyPoll],
	IncomingCPU(0).Name():           pInt[IncomingCPU],
	BindAddressNoPort(false).Name(): pBool[BindAddressNoPort],
	Priority(0).Name():              pInt[Priority],
	Linger(0).Name(): func(v string) (Option, error) {
		if v == "off" {
			return LingerOff, nil
		}
		o, err := pDur[Linger](v)
		if err != nil {
			return nil, errWantLinger
		}
		return o, nil
	},
	TOS(0).Name(): func(v string) (Option, error) {
		n, err := strconv.ParseInt(v, 0, 64)
		if h, ok := strings.CutPrefix(v, "0x"); ok {
			n, err = strconv.ParseInt(h, 16, 64) // String prints negative values as 0x-1
		}
		if err != nil || n != int64(int(n)) {
			return nil, errWantTOS
		}
		return TOS(n), nil
	},
	Mark(0).Name(): func(v string) (Option, error) {
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			return nil, errWantMark
		}
		return Mark(n), nil
	},
}
