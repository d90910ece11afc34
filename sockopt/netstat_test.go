package sockopt

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseNetstat: parseNetstat never panics on any input, and a
// well-formed pair of lines (names, then as many values) reads back as
// written, whatever comes before or after it.
func FuzzParseNetstat(f *testing.F) {
	f.Add("TcpExt: ListenOverflows ListenDrops\nTcpExt: 3 4\n", "ListenOverflows", uint64(3))
	f.Add("IpExt: InNoRoutes\nIpExt: 0\n", "TW", uint64(0))
	f.Add("TcpExt: A\n", "ListenDrops", uint64(1<<63))
	f.Add("", "X", uint64(18446744073709551615))
	f.Fuzz(func(t *testing.T, junk, name string, value uint64) {
		parseNetstat(junk, "TcpExt:") //nolint:errcheck // any result will do: it must not panic

		if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r == '\n' || strings.ContainsRune(" \t\v\f\r\u0085\u00a0", r) || r > 0x7f }) {
			return // not a counter name
		}
		other := strings.ReplaceAll(junk, "TcpExt:", "tcpext") // keep the junk from starting a section of its own
		data := "IpExt: " + other + "\nTcpExt: Before " + name + "\nTcpExt: 7 " + strconv.FormatUint(value, 10) + "\n" + junk
		got, err := parseNetstat(data, "TcpExt:")
		if err != nil {
			t.Fatalf("parseNetstat(%q): %v", data, err)
		}
		want := map[string]uint64{"Before": 7, name: value}
		if name == "Before" {
			want = map[string]uint64{"Before": value}
		}
		if len(got) != len(want) {
			t.Fatalf("parseNetstat(%q) = %v, want %v", data, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("parseNetstat(%q)[%q] = %d, want %d", data, k, got[k], v)
			}
		}
	})
}
