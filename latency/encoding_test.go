package latency

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func encode(t testing.TB, s *Snapshot) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	require.NoError(t, err)
	return b
}

func TestEncodingRoundTripsExactly(t *testing.T) {
	for _, scale := range []int{0, 3, 6, 8} {
		h := mustNew(t, Scale(scale))
		for _, v := range latencyLike(rand.New(rand.NewPCG(uint64(scale), 1)), 20000) {
			h.RecordValue(v)
		}
		h.RecordValue(-3)
		h.RecordValue(math.MaxInt64)
		s := h.Snapshot()
		var got Snapshot
		require.NoError(t, got.UnmarshalBinary(encode(t, s)))
		assert.Equal(t, s, &got, "scale %d", scale)
	}
	var empty Snapshot
	require.NoError(t, empty.UnmarshalBinary(encode(t, mustNew(t).Snapshot())))
	assert.Zero(t, empty.Count())
}

func TestAMillionLatenciesEncodeInUnderOneAndAHalfKilobytes(t *testing.T) {
	h := mustNew(t)
	for _, v := range latencyLike(rand.New(rand.NewPCG(7, 8)), 1_000_000) {
		h.RecordValue(v)
	}
	b := encode(t, h.Snapshot())
	t.Logf("encoded size: %d bytes", len(b))
	assert.LessOrEqual(t, len(b), 1536)
}

func TestBucketsBelowOneSecondEncodeWithNegativeIndexes(t *testing.T) {
	h := mustNew(t)
	h.RecordValue(1) // the lowest bucket, minIndex(6) = -1913
	s := h.Snapshot()
	b := encode(t, s)
	var got Snapshot
	require.NoError(t, got.UnmarshalBinary(b))
	assert.Equal(t, s, &got)
	// The first run starts at a zigzag varint: one below the lowest
	// bucket is refused.
	var below Snapshot
	assert.ErrorIs(t, below.UnmarshalBinary(tamper(b, 8, 2)), ErrCorrupt)
}

func TestVersion1EncodingsOfNanosecondBucketsAreRefusedByName(t *testing.T) {
	// What version 1 (buckets of nanoseconds) wrote for one value of 1000 ns
	// at scale 6: bucket 638 = ceil(64·log2(1000)).
	v1 := []byte{'L', 'H', 1, 6, 0, 0, 0, 0, 0xe8, 0x07, 0xe8, 0x07, 0, 1, 0xfe, 0x04, 1, 1}
	var s Snapshot
	err := s.UnmarshalBinary(v1)
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "version 1", "the error names the retired version")
	assert.Zero(t, s.Count())
}

func TestUnmarshalRejectsCorruptInputWithErrCorrupt(t *testing.T) {
	h := mustNew(t)
	for v := int64(1); v < 3000; v += 7 {
		h.RecordValue(v * 1000)
	}
	good := encode(t, h.Snapshot())
	bad := map[string][]byte{
		"empty":        nil,
		"magic":        append([]byte("XX"), good[2:]...),
		"version":      append([]byte{'L', 'H', 9}, good[3:]...),
		"scale":        append([]byte{'L', 'H', version, 9}, good[4:]...),
		"truncated":    good[:len(good)-1],
		"trailing":     append(slices.Clone(good), 0),
		"huge runs":    append(slices.Clone(good[:len(good)-1]), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"sum too big":  tamper(good, 3, 1),
		"min too high": tamper(good, 9, 1),
	}
	for name, b := range bad {
		var s Snapshot
		err := s.UnmarshalBinary(b)
		assert.Truef(t, errors.Is(err, ErrCorrupt), "%s: got %v", name, err)
		assert.Zerof(t, s.Count(), "%s: s is left unchanged", name)
	}
}

// tamper adds delta to the varint field number i (0-based, after the
// 4-byte header) of an encoding.
func tamper(b []byte, i int, delta uint64) []byte {
	out := slices.Clone(b[:headerLen])
	rest := b[headerLen:]
	for k := 0; k <= i; k++ {
		v, n := binary.Uvarint(rest)
		rest = rest[n:]
		if k == i {
			v += delta
		}
		out = binary.AppendUvarint(out, v)
	}
	return append(out, rest...)
}

func TestUnmarshalAllocatesWithinTheStatedBound(t *testing.T) {
	// A few bytes that declare the widest legal run at scale 8.
	hostile := []byte{'L', 'H', version, 8, 0, 0, 0, 0, 0, 0, 0, 1}
	hostile = binary.AppendVarint(hostile, int64(minIndex(8)))
	hostile = binary.AppendUvarint(hostile, uint64(maxIndex(8)-minIndex(8)+1))
	inputs := [][]byte{hostile, encode(t, mustNew(t).Snapshot())}
	h := mustNew(t, Scale(8))
	for _, v := range latencyLike(rand.New(rand.NewPCG(1, 2)), 100000) {
		h.RecordValue(v)
	}
	inputs = append(inputs, encode(t, h.Snapshot()))
	for _, in := range inputs {
		// Averaged over many runs, so that allocations of the runtime and
		// the test framework do not count.
		const runs = 200
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range runs {
			var s Snapshot
			_ = s.UnmarshalBinary(in)
		}
		runtime.ReadMemStats(&after)
		assert.LessOrEqualf(t, (after.TotalAlloc-before.TotalAlloc)/runs, uint64(MaxDecodeAlloc*len(in)+maxCumBytes(8)+MaxDecodeErrorAlloc),
			"decoding %d bytes", len(in))
	}
}

func FuzzUnmarshal(f *testing.F) {
	h := mustNew(f)
	for _, v := range latencyLike(rand.New(rand.NewPCG(3, 3)), 2000) {
		h.RecordValue(v)
	}
	f.Add(encode(f, h.Snapshot()))
	f.Add(encode(f, mustNew(f).Snapshot()))
	h8 := mustNew(f, Scale(8))
	h8.RecordValue(0)
	h8.RecordValue(MaxValue)
	h8.RecordValue(MaxValue + 1)
	f.Add(encode(f, h8.Snapshot()))
	f.Add([]byte{'L', 'H', 1, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xff, 0x6c})
	// 2^60 values of 1000 and one of 2000: percentile levels past 2^-53
	// of the total once looped forever (issue 9).
	huge := mustNew(f)
	require.NoError(f, huge.RecordN(1000, 1<<60))
	require.NoError(f, huge.RecordN(2000, 1))
	f.Add(encode(f, huge.Snapshot()))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Snapshot
		if err := s.UnmarshalBinary(b); err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		assert.LessOrEqual(t, 8*cap(s.cum), maxCumBytes(s.scale), "allocation bound")
		// Every reader returns, bounded, and agrees with the others.
		checkSnapshot(t, &s)
	})
}

// FuzzMergeRoundTrip checks merge and encoding against a model: the values
// themselves. Two histograms at fuzzed scales, merged and round-tripped,
// equal one histogram of all values at the coarser scale, and their
// quantiles stay within the error bound of the sorted values.
func FuzzMergeRoundTrip(f *testing.F) {
	f.Add(uint8(6), uint8(6), []byte("\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x10\x20"))
	f.Add(uint8(8), uint8(2), []byte("latency-like bytes for two histograms, at two scales"))
	f.Add(uint8(0), uint8(8), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, sa, sb uint8, data []byte) {
		sa, sb = sa%(MaxScale+1), sb%(MaxScale+1)
		var va, vb, vals []int64
		for i := 0; i+1 < len(data); i += 2 {
			// Spread two bytes over the whole range: mantissa and exponent.
			v := int64(data[i]) << (data[i+1] % 64)
			if data[i+1]&0x40 != 0 {
				v = -v
			}
			if i%4 == 0 {
				va = append(va, v)
			} else {
				vb = append(vb, v)
			}
			if v >= 0 {
				vals = append(vals, v)
			}
		}
		// An operand without valid values has no resolution to lose.
		scale := min(sa, sb)
		if !slices.ContainsFunc(va, func(v int64) bool { return v >= 0 }) {
			scale = sb
		} else if !slices.ContainsFunc(vb, func(v int64) bool { return v >= 0 }) {
			scale = sa
		}
		a, b, all := mustNew(t, Scale(int(sa))), mustNew(t, Scale(int(sb))), mustNew(t, Scale(int(scale)))
		for _, v := range va {
			a.RecordValue(v)
			all.RecordValue(v)
		}
		for _, v := range vb {
			b.RecordValue(v)
			all.RecordValue(v)
		}
		m, err := a.Snapshot().Merge(b.Snapshot())
		require.NoError(t, err)
		acc := a.Snapshot()
		require.NoError(t, acc.Add(b.Snapshot()))
		require.Equal(t, m, acc, "Add in place equals Merge")
		checkSnapshot(t, m)
		var back Snapshot
		require.NoError(t, back.UnmarshalBinary(encode(t, m)))
		want := all.Snapshot()
		require.Equal(t, want.Count(), back.Count())
		require.Equal(t, want.Invalid(), back.Invalid())
		require.Equal(t, want.offset, back.offset)
		require.Equal(t, want.cum, back.cum)
		require.Equal(t, want.Min(), back.Min())
		require.Equal(t, want.Max(), back.Max())
		slices.Sort(vals)
		for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 1} {
			if len(vals) == 0 {
				break
			}
			exact := vals[rank(q, uint64(len(vals)))-1]
			got, err := back.ValueAtQuantile(q)
			require.NoError(t, err)
			if exact > MaxValue {
				continue // among overflows the answer is max
			}
			require.LessOrEqualf(t, math.Abs(float64(got-exact)), back.RelativeError()*float64(exact)+0.5, "q=%v", q)
		}
	})
}
