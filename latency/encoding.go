package latency

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Encoding (version 1), all integers unsigned varints unless noted:
//
//	magic 'L' 'H', version byte 1, scale byte
//	zero count, overflow count, invalid count, sum high 64 bits, sum low 64 bits
//	min, max-min (both 0 when the count is 0)
//	number of runs of adjacent non-empty buckets
//	per run: start (the first run's index; later runs: gap after the previous
//	run, at least 1), length n >= 1, then n counts >= 1
//
// A typical latency histogram of 10^6 values encodes in well under 1.5 KB.

const (
	magic0, magic1 = 'L', 'H'
	version        = 1
	headerLen      = 4
)

// MaxDecodeAlloc is the bound on what UnmarshalBinary allocates per input
// byte: each bucket takes at least one byte of input and costs an int32 and
// a uint64 (12 bytes), rounded up to the allocator's size classes. An
// error adds at most [MaxDecodeErrorAlloc] bytes for its message.
const MaxDecodeAlloc = 16

// MaxDecodeErrorAlloc bounds what building an error message allocates.
const MaxDecodeErrorAlloc = 1024

// ErrCorrupt is wrapped by every error UnmarshalBinary returns for input
// that is not a valid encoding.
var ErrCorrupt = errors.New("latency: corrupt histogram encoding")

// AppendBinary appends the encoding of s to b (encoding.BinaryAppender).
func (s *Snapshot) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, magic0, magic1, version, byte(s.scale))
	for _, v := range [...]uint64{s.zero, s.overflow, s.invalid, s.sumHi, s.sumLo} {
		b = binary.AppendUvarint(b, v)
	}
	if s.Count() > 0 {
		b = binary.AppendUvarint(b, uint64(s.min))
		b = binary.AppendUvarint(b, uint64(s.max-s.min))
	} else {
		b = append(b, 0, 0)
	}
	runs := 0
	for j := range s.index {
		if j == 0 || s.index[j] != s.index[j-1]+1 {
			runs++
		}
	}
	b = binary.AppendUvarint(b, uint64(runs))
	prevEnd := int32(-1)
	prevCum := s.zero
	for j := 0; j < len(s.index); {
		n := 1
		for j+n < len(s.index) && s.index[j+n] == s.index[j+n-1]+1 {
			n++
		}
		if prevEnd < 0 {
			b = binary.AppendUvarint(b, uint64(s.index[j]))
		} else {
			b = binary.AppendUvarint(b, uint64(s.index[j]-prevEnd-1))
		}
		b = binary.AppendUvarint(b, uint64(n))
		for k := j; k < j+n; k++ {
			b = binary.AppendUvarint(b, s.cum[k]-prevCum)
			prevCum = s.cum[k]
		}
		prevEnd = s.index[j+n-1]
		j += n
	}
	return b, nil
}

// MarshalBinary encodes s compactly (encoding.BinaryMarshaler).
func (s *Snapshot) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// UnmarshalBinary decodes data into s (encoding.BinaryUnmarshaler). It is
// safe on untrusted input: it never panics, allocates at most
// [MaxDecodeAlloc] bytes per input byte (plus [MaxDecodeErrorAlloc] on error), and checks every invariant a
// recorded histogram has (bucket indexes in range and ascending, counts
// that do not overflow, min and max in the first and last buckets, a sum
// between count×min and count×max). Errors wrap [ErrCorrupt]. On error s
// is left unchanged.
func (s *Snapshot) UnmarshalBinary(data []byte) error {
	d := decoder{buf: data}
	if len(data) < headerLen || data[0] != magic0 || data[1] != magic1 {
		return corrupt("bad magic")
	}
	if data[2] != version {
		return corrupt("unknown version %d", data[2])
	}
	out := Snapshot{scale: int(data[3]), min: math.MaxInt64, max: -1}
	if out.scale > MaxScale {
		return corrupt("scale %d above %d", out.scale, MaxScale)
	}
	d.buf = data[headerLen:]
	out.zero, out.overflow, out.invalid = d.uvarint(), d.uvarint(), d.uvarint()
	out.sumHi, out.sumLo = d.uvarint(), d.uvarint()
	top := maxIndex(out.scale)
	if _, c := bits.Add64(out.zero, out.overflow, 0); c != 0 {
		return corrupt("count overflows")
	}
	minV, spread := d.uvarint(), d.uvarint()
	if minV > math.MaxInt64 || spread > math.MaxInt64-minV {
		return corrupt("min %d and spread %d out of range", minV, spread)
	}
	runs := d.uvarint()
	if d.err != nil {
		return d.err
	}
	if runs > uint64(len(d.buf)) {
		return corrupt("%d runs in %d bytes", runs, len(d.buf))
	}
	capHint := len(d.buf) // every bucket takes at least one byte
	out.index = make([]int32, 0, min(capHint, top+1))
	out.cum = make([]uint64, 0, min(capHint, top+1))
	run := out.zero
	next := uint64(0) // lowest index the next run may start at
	for r := uint64(0); r < runs; r++ {
		gap, n := d.uvarint(), d.uvarint()
		if d.err != nil {
			return d.err
		}
		if r > 0 && gap == 0 {
			return corrupt("empty gap between runs")
		}
		start := next + gap
		if gap > uint64(top) || start > uint64(top) || n == 0 || n > uint64(top)+1-start {
			return corrupt("run of %d buckets at %d outside 0..%d", n, start, top)
		}
		for k := uint64(0); k < n; k++ {
			c := d.uvarint()
			if d.err != nil {
				return d.err
			}
			if c == 0 {
				return corrupt("empty bucket in a run")
			}
			var carry uint64
			if run, carry = bits.Add64(run, c, 0); carry != 0 {
				return corrupt("count overflows")
			}
			out.index = append(out.index, int32(start+k))
			out.cum = append(out.cum, run)
		}
		next = start + n
	}
	if len(d.buf) != 0 {
		return corrupt("%d trailing bytes", len(d.buf))
	}
	if len(out.index) == 0 {
		out.index, out.cum = nil, nil
	}
	if _, c := bits.Add64(run, out.overflow, 0); c != 0 {
		return corrupt("count overflows")
	}
	n := run + out.overflow
	if n == 0 {
		if out.sumHi != 0 || out.sumLo != 0 || minV != 0 || spread != 0 {
			return corrupt("sum, min or max of an empty histogram is not 0")
		}
		*s = out
		return nil
	}
	out.min, out.max = int64(minV), int64(minV+spread)
	if err := out.checkExtremes(); err != nil {
		return err
	}
	// count×min <= sum <= count×max, in 128 bits.
	loHi, loLo := bits.Mul64(n, uint64(out.min))
	hiHi, hiLo := bits.Mul64(n, uint64(out.max))
	if less128(out.sumHi, out.sumLo, loHi, loLo) || less128(hiHi, hiLo, out.sumHi, out.sumLo) {
		return corrupt("sum outside count×min..count×max")
	}
	*s = out
	return nil
}

// checkExtremes verifies that min and max fall in the lowest and highest
// occupied places: the zero count, a bucket, or the overflow.
func (s *Snapshot) checkExtremes() error {
	const over = math.MaxInt32
	place := func(v int64) int { // -1 zero, a bucket index, or over
		switch {
		case v == 0:
			return -1
		case v > MaxValue:
			return over
		}
		return bucketIndex(&tables[s.scale], uint(s.scale), v)
	}
	lowest, highest := over, -1
	switch {
	case s.zero > 0:
		lowest = -1
	case len(s.index) > 0:
		lowest = int(s.index[0])
	}
	switch {
	case s.overflow > 0:
		highest = over
	case len(s.index) > 0:
		highest = int(s.index[len(s.index)-1])
	}
	if place(s.min) != lowest {
		return corrupt("min %d is not in the lowest occupied bucket", s.min)
	}
	if place(s.max) != highest {
		return corrupt("max %d is not in the highest occupied bucket", s.max)
	}
	return nil
}

func less128(aHi, aLo, bHi, bLo uint64) bool { return aHi < bHi || (aHi == bHi && aLo < bLo) }

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = corrupt("truncated or overlong varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}
