package sockopt

import (
	"encoding/hex"
	"math"
	"strconv"
)

// maxRawLen is the longest value a [Raw] option may hold, and how many
// bytes [Get] reads for a Raw option whose value is empty.
const maxRawLen = 1024

// RawOption is a socket option this package has no type for, such as
// IP_FREEBIND, TCP_SYNCNT or IPV6_V6ONLY: setsockopt(level, name) with
// the value as given. It is the escape hatch that keeps everything else
// this package does (validation, errors naming the option, read-back by
// [Get] and [Verify], printing and [Parse]). Make one with [Raw] for a
// value of bytes or [RawInt] for a C int, the type of most options:
//
//	sockopt.RawInt(unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
//
// It prints as RAW(level=0,name=15)=1 (RawInt, decimal) or
// RAW(level=0,name=15)=0x01000000 (Raw, hexadecimal bytes), and [Parse]
// reads both. Its [Option.Name] is RAW(level=…,name=…), so [Validate]
// refuses two raw options that set the same level and name to different
// values; it does not know that a raw option and a typed one (RawInt at
// IPPROTO_TCP, TCP_NODELAY and [NoDelay]) are the same option: use the
// typed one where there is one.
//
// The package knows nothing of what the option means: it may be set in
// any [Role], the Control functions set it before connect or listen (Go
// may overwrite some options after that: TCP_NODELAY, keepalive), and
// [Verify] calls it applied only when the kernel reads back exactly the
// value set. On a Multipath TCP socket (Go's default for listeners) a
// TCP-level option that MPTCP does not support fails with ENOPROTOOPT or
// EOPNOTSUPP, and the error's hint says how to turn MPTCP off; [TCPOnly]
// is false for raw options, since which of them MPTCP supports is not
// known here. A value that holds a pointer (a BPF program's sock_fprog)
// cannot be expressed as bytes: use the Control hook of net.Dialer or
// net.ListenConfig for those.
//
// Raw options work on Linux, the BSDs and Windows; elsewhere they fail
// with errors.ErrUnsupported.
type RawOption struct {
	level, name int
	isInt       bool
	n           int    // the value of a RawInt
	value       string // the bytes of a Raw, as a string to keep the type comparable
}

// Raw returns the option that sets level and name to the bytes of value,
// which it copies. The value may be empty and at most 1024 bytes long.
// Numbers are in the host's byte order, as the kernel expects them: prefer
// [RawInt] for an int.
func Raw(level, name int, value []byte) RawOption {
	return RawOption{level: level, name: name, value: string(value)}
}

// RawInt returns the option that sets level and name to the C int value,
// as setsockopt(fd, level, name, &value, sizeof(int)) does. value must fit
// in 32 bits.
func RawInt(level, name, value int) RawOption {
	return RawOption{level: level, name: name, isInt: true, n: value}
}

// Level is the protocol level of the option, such as unix.IPPROTO_TCP.
func (o RawOption) Level() int { return o.level }

// OptName is the option's number at its level, such as unix.TCP_SYNCNT.
func (o RawOption) OptName() int { return o.name }

// Int returns the value of a RawInt option, and false for a Raw one.
func (o RawOption) Int() (int, bool) { return o.n, o.isInt }

// Bytes returns a copy of the value of a Raw option, and nil for a RawInt
// one.
func (o RawOption) Bytes() []byte {
	if o.isInt {
		return nil
	}
	return []byte(o.value)
}

// Name returns RAW(level=L,name=N), with the two numbers in decimal.
func (o RawOption) Name() string {
	return "RAW(level=" + strconv.Itoa(o.level) + ",name=" + strconv.Itoa(o.name) + ")"
}

// String returns the name, "=", and the value: decimal for RawInt,
// 0x-prefixed hexadecimal bytes for Raw (just "0x" when it is empty).
func (o RawOption) String() string {
	if o.isInt {
		return o.Name() + "=" + strconv.Itoa(o.n)
	}
	return o.Name() + "=0x" + hex.EncodeToString([]byte(o.value))
}

// Validate checks the shape of the option, which is all this package
// knows of it: level and name are not negative, a RawInt value fits in a
// C int, and a Raw value is at most 1024 bytes long.
func (o RawOption) Validate() error {
	switch {
	case o.level < 0 || o.level > math.MaxInt32:
		return invalid(o, "level must be between 0 and %d", math.MaxInt32)
	case o.name < 0 || o.name > math.MaxInt32:
		return invalid(o, "name must be between 0 and %d", math.MaxInt32)
	case o.isInt && (o.n < math.MinInt32 || o.n > math.MaxInt32):
		return invalid(o, "value does not fit in a C int (32 bits)")
	case len(o.value) > maxRawLen:
		return invalid(o, "value is %d bytes long, more than %d", len(o.value), maxRawLen)
	}
	return nil
}

func (RawOption) info() info { return anyInfo }

// readLen is how many bytes Get reads for o.
func (o RawOption) readLen() int {
	if o.value == "" {
		return maxRawLen
	}
	return len(o.value)
}
