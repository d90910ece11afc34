package latency

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Encoding (version 2), all integers unsigned varints unless noted:
//
//	magic 'L' 'H', version byte 2, scale byte
//	zero count, overflow count, invalid count, sum high 64 bits, sum low 64 bits
//	min, max-min (both 0 when the count is 0), in nanoseconds
//	number of runs of adjacent non-empty buckets
//	per run: start (the first run's bucket index, a signed varint; later
//	runs: gap after the previous run, at least 1), length n >= 1, then n
//	counts >= 1
//
// Bucket i holds (2^((i-1)/2^scale), 2^(i/2^scale)] seconds, so indexes
// below one second are negative. Version 1 numbered buckets of
// nanoseconds, (2^((i-1)/2^scale), 2^(i/2^scale)] ns: its counts cannot be
// moved to the seconds buckets without splitting buckets, so it is refused
// (with an error saying so) rather than converted with invented counts.
//
// A typical latency histogram of 10^6 values encodes in well under 1.5 KB.

const (
	magic0, magic1 = 'L', 'H'
	version        = 2
	headerLen      = 4
)

// MaxDecodeAlloc bounds what UnmarshalBinary allocates: 16 bytes per
// input byte while parsing (each bucket takes at least one byte and costs
// an index and a count), and the decoded snapshot's running totals, 8 bytes
// per bucket from the first non-empty one to the last, at most
// 8·(53·2^scale+2) bytes (110 KB at scale 8, 3.4 KB at scale 3). An error
// adds at most [MaxDecodeErrorAlloc] bytes for its message.
const MaxDecodeAlloc = 16

// maxCumBytes is the largest running-total array a snapshot at scale s has.
func maxCumBytes(s int) int { return 8 * (maxIndex(s) - minIndex(s) + 1) }

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
	// Runs of adjacent non-empty buckets.
	type run struct{ start, end int } // cum positions, end exclusive
	var runs []run
	prev := s.zero
	for k, c := range s.cum {
		if c != prev {
			if len(runs) > 0 && runs[len(runs)-1].end == k {
				runs[len(runs)-1].end++
			} else {
				runs = append(runs, run{k, k + 1})
			}
		}
		prev = c
	}
	b = binary.AppendUvarint(b, uint64(len(runs)))
	prevEnd := -1
	for _, r := range runs {
		if prevEnd < 0 {
			b = binary.AppendVarint(b, int64(s.offset+r.start))
		} else {
			b = binary.AppendUvarint(b, uint64(r.start-prevEnd-1))
		}
		b = binary.AppendUvarint(b, uint64(r.end-r.start))
		for k := r.start; k < r.end; k++ {
			below := s.zero
			if k > 0 {
				below = s.cum[k-1]
			}
			b = binary.AppendUvarint(b, s.cum[k]-below)
		}
		prevEnd = r.end - 1
	}
	return b, nil
}

// MarshalBinary encodes s compactly (encoding.BinaryMarshaler).
func (s *Snapshot) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// UnmarshalBinary decodes data into s (encoding.BinaryUnmarshaler). It is
// safe on untrusted input: it never panics, allocates within the
// bound stated at [MaxDecodeAlloc], and checks every invariant a
// recorded histogram has (bucket indexes in range and ascending, counts
// that do not overflow, min and max in the first and last buckets, a sum
// between count×min and count×max). Errors wrap [ErrCorrupt]. On error s
// is left unchanged.
func (s *Snapshot) UnmarshalBinary(data []byte) error {
	d := decoder{buf: data}
	out, err := d.header()
	if err != nil {
		return err
	}
	minV, spread, err := d.extremes()
	if err != nil {
		return err
	}
	index, counts, err := d.buckets(out.scale, out.zero)
	if err != nil {
		return err
	}
	if len(d.buf) != 0 {
		return corrupt("%d trailing bytes", len(d.buf))
	}
	out.setBuckets(index, counts)
	if err := out.setExtremes(minV, spread); err != nil {
		return err
	}
	*s = out
	return nil
}

// header reads the magic, version and scale, then the zero, overflow and
// invalid counts and the sum, into an empty snapshot.
func (d *decoder) header() (Snapshot, error) {
	data := d.buf
	if len(data) < headerLen || data[0] != magic0 || data[1] != magic1 {
		return Snapshot{}, corrupt("bad magic")
	}
	if data[2] == 1 {
		return Snapshot{}, corrupt("version 1 (buckets of nanoseconds, before the seconds layout) is no longer decoded")
	}
	if data[2] != version {
		return Snapshot{}, corrupt("unknown version %d", data[2])
	}
	out := Snapshot{scale: int(data[3]), min: math.MaxInt64, max: -1}
	if out.scale > MaxScale {
		return Snapshot{}, corrupt("scale %d above %d", out.scale, MaxScale)
	}
	d.buf = data[headerLen:]
	out.zero, out.overflow, out.invalid = d.uvarint(), d.uvarint(), d.uvarint()
	out.sumHi, out.sumLo = d.uvarint(), d.uvarint()
	if _, c := bits.Add64(out.zero, out.overflow, 0); c != 0 {
		return Snapshot{}, corrupt("count overflows")
	}
	return out, d.err
}

// extremes reads the minimum and the spread from it to the maximum.
func (d *decoder) extremes() (minV, spread uint64, err error) {
	minV, spread = d.uvarint(), d.uvarint()
	if minV > math.MaxInt64 || spread > math.MaxInt64-minV {
		return 0, 0, corrupt("min %d and spread %d out of range", minV, spread)
	}
	return minV, spread, d.err
}

// buckets reads the runs of non-empty buckets of a snapshot at scale
// whose zero count is zero: their indexes, ascending within the scale's
// range, and their counts, which with zero may not overflow a uint64. It
// allocates for no more buckets than the input has bytes left.
func (d *decoder) buckets(scale int, zero uint64) (index []int, counts []uint64, err error) {
	runs := d.uvarint()
	if d.err != nil {
		return nil, nil, d.err
	}
	if runs > uint64(len(d.buf)) {
		return nil, nil, corrupt("%d runs in %d bytes", runs, len(d.buf))
	}
	bottom, top := minIndex(scale), maxIndex(scale)
	if runs > 0 {
		capHint := min(len(d.buf), top-bottom+1) // every bucket takes at least one byte
		index, counts = make([]int, 0, capHint), make([]uint64, 0, capHint)
	}
	total := zero
	next := bottom // lowest index the next run may start at
	for r := range runs {
		start, n, err := d.run(r, next, bottom, top)
		if err != nil {
			return nil, nil, err
		}
		for k := range n {
			c := d.uvarint()
			if d.err != nil {
				return nil, nil, d.err
			}
			if c == 0 {
				return nil, nil, corrupt("empty bucket in a run")
			}
			var carry uint64
			if total, carry = bits.Add64(total, c, 0); carry != 0 {
				return nil, nil, corrupt("count overflows")
			}
			index = append(index, start+k)
			counts = append(counts, c)
		}
		next = start + n
	}
	return index, counts, nil
}

// run reads where run r starts (the first run: its index; later runs: a
// gap after next, the lowest index it may start at) and how many buckets
// it has, all within bottom..top.
func (d *decoder) run(r uint64, next, bottom, top int) (start, n int, err error) {
	var first int64
	var gap uint64
	if r == 0 {
		first = d.varint()
	} else {
		gap = d.uvarint()
	}
	un := d.uvarint()
	if d.err != nil {
		return 0, 0, d.err
	}
	span := uint64(top - bottom)
	switch {
	case r == 0 && (first < int64(bottom) || first > int64(top)):
		return 0, 0, corrupt("first run at %d outside %d..%d", first, bottom, top)
	case r > 0 && gap == 0:
		return 0, 0, corrupt("empty gap between runs")
	case r > 0 && gap > span:
		return 0, 0, corrupt("gap of %d buckets outside %d..%d", gap, bottom, top)
	}
	start = int(first)
	if r > 0 {
		start = next + int(gap)
	}
	if start > top || un == 0 || un > uint64(top+1-start) {
		return 0, 0, corrupt("run of %d buckets at %d outside %d..%d", un, start, bottom, top)
	}
	return start, int(un), nil
}

// setExtremes sets the minimum and maximum of a decoded snapshot whose
// counts are set, checking them and the sum against the counts.
func (s *Snapshot) setExtremes(minV, spread uint64) error {
	n, c := bits.Add64(s.bucketed(), s.overflow, 0)
	if c != 0 {
		return corrupt("count overflows")
	}
	if n == 0 {
		if s.sumHi != 0 || s.sumLo != 0 || minV != 0 || spread != 0 {
			return corrupt("sum, min or max of an empty histogram is not 0")
		}
		return nil
	}
	s.min, s.max = int64(minV), int64(minV+spread)
	if err := s.checkExtremes(); err != nil {
		return err
	}
	loHi, loLo, hiHi, hiLo := s.sumBounds(n)
	if less128(s.sumHi, s.sumLo, loHi, loLo) || less128(hiHi, hiLo, s.sumHi, s.sumLo) {
		return corrupt("sum outside count×min..count×max")
	}
	return nil
}

// sumBounds returns count×min and count×max in 128 bits, the bounds of
// the sum of n values.
func (s *Snapshot) sumBounds(n uint64) (loHi, loLo, hiHi, hiLo uint64) {
	loHi, loLo = bits.Mul64(n, uint64(s.min))
	hiHi, hiLo = bits.Mul64(n, uint64(s.max))
	return loHi, loLo, hiHi, hiLo
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
		return bucketIndex(s.scale, v)
	}
	lowest, highest := over, -1
	switch {
	case s.zero > 0:
		lowest = -1
	case s.cum != nil:
		lowest = s.offset
	}
	switch {
	case s.overflow > 0:
		highest = over
	case s.cum != nil:
		highest = s.offset + len(s.cum) - 1
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

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.err = corrupt("truncated or overlong varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
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
