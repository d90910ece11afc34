package dnscache

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// Model checks of the cache's pure helpers: what an answer keeps, how a name
// is normalised, and what a view of an entry hands out.

// fuzzAddrs turns b into addresses: an even byte is an IPv4 address, an odd
// one an IPv6 address, both numbered by the byte and its position.
func fuzzAddrs(b []byte) []netip.Addr {
	out := make([]netip.Addr, len(b))
	for i, x := range b {
		if x%2 == 0 {
			out[i] = netip.AddrFrom4([4]byte{127, byte(i >> 8), byte(i), x})
		} else {
			out[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 13: byte(i >> 8), 14: byte(i), 15: x})
		}
	}
	return out
}

func family(addrs []netip.Addr, v4 bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if a.Is4() == v4 {
			out = append(out, a)
		}
	}
	return out
}

func FuzzKeepAddrsKeepsTheFirstOfEachFamilyFairly(f *testing.F) {
	f.Add(uint8(64), []byte{0, 2, 4, 1, 3})
	f.Add(uint8(3), []byte{0, 2, 4, 6, 8, 1, 3, 5})
	f.Add(uint8(1), []byte{1, 0})
	f.Add(uint8(5), []byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, limit uint8, b []byte) {
		if limit == 0 {
			return
		}
		L := int(limit)
		addrs := fuzzAddrs(b)
		in := slices.Clone(addrs)
		kept, n4, truncated := keepAddrs(nil, addrs, L)
		if !slices.Equal(in, addrs) {
			t.Fatal("keepAddrs changed its input")
		}
		if got, want := len(kept), min(len(addrs), L); got != want {
			t.Fatalf("kept %d of %d with limit %d, want %d", got, len(addrs), L, want)
		}
		if truncated != (len(addrs) > L) {
			t.Fatalf("truncated = %v for %d addresses, limit %d", truncated, len(addrs), L)
		}
		if len(addrs) > 0 && cap(kept) != len(kept) {
			t.Fatalf("kept slice has cap %d for %d addresses: it may share a larger array", cap(kept), len(kept))
		}
		var one [1]netip.Addr
		if inBuf, n4b, tb := keepAddrs(one[:0], addrs, L); !slices.Equal(inBuf, kept) || n4b != n4 || tb != truncated {
			t.Fatalf("into a buffer of 1: kept %v (n4 %d, truncated %t), want %v (%d, %t)", inBuf, n4b, tb, kept, n4, truncated)
		} else if len(inBuf) == 1 && &inBuf[0] != &one[0] {
			t.Fatal("one address kept outside the buffer that holds it")
		}
		v4, v6 := family(addrs, true), family(addrs, false)
		k4, k6 := family(kept, true), family(kept, false)
		if n4 != len(k4) {
			t.Fatalf("n4 = %d, kept %d IPv4 addresses", n4, len(k4))
		}
		if !slices.Equal(k4, v4[:len(k4)]) || !slices.Equal(k6, v6[:len(k6)]) {
			t.Fatalf("kept %v %v: not the first of each family of %v", k4, k6, addrs)
		}
		if len(k4) < min(len(v4), L/2) || len(k6) < min(len(v6), L/2) {
			t.Fatalf("limit %d: kept %d of %d IPv4 and %d of %d IPv6: a family was crowded out", L, len(k4), len(v4), len(k6), len(v6))
		}
		// In the answer's order.
		j := 0
		for _, a := range addrs {
			if j < len(kept) && kept[j] == a {
				j++
			}
		}
		if j != len(kept) {
			t.Fatalf("kept %v is not in the order of %v", kept, addrs)
		}
	})
}

func FuzzCanonicalNamesAreLowerCaseAndStable(f *testing.F) {
	for _, s := range []string{"web.example.test", "WEB.Example.Test.", "a..", ".", "", "x.", "É.test", "a\x00B"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, host string, foldDot bool) {
		c := &Cache{foldDot: foldDot}
		got := c.canonical(host)
		if again := c.canonical(got); again != got {
			t.Fatalf("canonical(%q) = %q, but canonical(%q) = %q", host, got, got, again)
		}
		if strings.ContainsFunc(got, func(r rune) bool { return 'A' <= r && r <= 'Z' }) {
			t.Fatalf("canonical(%q) = %q has upper case", host, got)
		}
		want := host
		if foldDot && len(want) > 1 && strings.HasSuffix(want, ".") && !strings.HasSuffix(want, "..") {
			want = want[:len(want)-1]
		}
		if !equalFoldASCII(got, want) {
			t.Fatalf("canonical(%q) = %q, want %q up to ASCII case", host, got, want)
		}
		if got == want && len(want) > 0 && unsafe.StringData(got) != unsafe.StringData(host) {
			t.Fatalf("canonical(%q) copied a name that needed no change", host)
		}
	})
}

// equalFoldASCII is strings.EqualFold restricted to ASCII letters, the only
// ones canonical changes.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func FuzzEveryViewOfAnEntryIsARotationOfItsFamily(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3}, uint32(0), uint8(0))
	f.Add([]byte{0, 1, 2, 3, 4}, uint32(1<<31), uint8(1))
	f.Add([]byte{1, 0, 3, 2, 5}, uint32(3<<30), uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, r uint32, fam uint8) {
		fam %= 3
		e := &entry{}
		e.addrs, e.n4, _ = keepAddrs(nil, fuzzAddrs(b), len(b)+1)
		want := e.addrs
		if fam != famAll {
			want = family(e.addrs, fam == fam4)
		}
		if e.count(int(fam)) != len(want) {
			t.Fatalf("count(%d) = %d, want %d", fam, e.count(int(fam)), len(want))
		}
		if len(want) == 0 {
			return // never served: the cache does not use an empty view
		}
		prefix := []netip.Addr{netip.IPv6Loopback()}
		got := e.appendRotated(slices.Clone(prefix), r, int(fam))
		if got[0] != prefix[0] {
			t.Fatal("appendRotated overwrote dst")
		}
		got = got[1:]
		if len(got) != len(want) {
			t.Fatalf("view %d of %v: got %v", fam, e.addrs, got)
		}
		i := slices.Index(want, got[0])
		rotated := append(slices.Clone(want[i:]), want[:i]...)
		if !slices.Equal(got, rotated) {
			t.Fatalf("view %d of %v: got %v, not a rotation of %v", fam, e.addrs, got, want)
		}
		if wantFirst := int(uint64(r) * uint64(len(want)) >> 32); i != wantFirst {
			t.Fatalf("view %d starts at %d, r picks %d", fam, i, wantFirst)
		}
	})
}
