package procnet

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzParse: Parse never panics on any input, and a well-formed pair of
// lines (names, then as many values) reads back as written, whatever comes
// before or after it.
func FuzzParse(f *testing.F) {
	f.Add("TcpExt: ListenOverflows ListenDrops\nTcpExt: 3 4\n", "ListenOverflows", uint64(3))
	f.Add("IpExt: InNoRoutes\nIpExt: 0\n", "TW", uint64(0))
	f.Add("TcpExt: A\n", "ListenDrops", uint64(1<<63))
	f.Add("", "X", uint64(18446744073709551615))
	f.Fuzz(func(t *testing.T, junk, name string, value uint64) {
		Parse(junk, "TcpExt") //nolint:errcheck // any result will do: it must not panic

		if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r == '\n' || strings.ContainsRune(" \t\v\f\r\u0085\u00a0", r) || r > 0x7f }) {
			return // not a counter name
		}
		other := strings.ReplaceAll(junk, "TcpExt:", "tcpext") // keep the junk from starting a section of its own
		data := "IpExt: " + other + "\nTcpExt: Before " + name + "\nTcpExt: 7 " + strconv.FormatUint(value, 10) + "\n" + junk
		got, err := Parse(data, "TcpExt")
		if err != nil {
			t.Fatalf("Parse(%q): %v", data, err)
		}
		want := map[string]uint64{"Before": 7, name: value}
		if name == "Before" {
			want = map[string]uint64{"Before": value}
		}
		if len(got) != len(want) {
			t.Fatalf("Parse(%q) = %v, want %v", data, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("Parse(%q)[%q] = %d, want %d", data, k, got[k], v)
			}
		}
	})
}

func TestParseNamesWhatIsWrong(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{"IpExt: A\nIpExt: 1\n", "no TcpExt: section"},
		{"TcpExt: A B", "TcpExt: names without a line of values"},
		{"TcpExt: A B\nIpExt: 1 2\n", "TcpExt: names without a line of values"},
		{"TcpExt: A B\nTcpExt: 1\n", "TcpExt: has 2 names and 1 values"},
	} {
		_, err := Parse(tc.data, "TcpExt")
		assert.ErrorContains(t, err, tc.want, "%q", tc.data)
	}
}

func TestCounter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "netstat")
	require.NoError(t, os.WriteFile(path, []byte("TcpExt: SyncookiesSent ListenOverflows\nTcpExt: 0 42\nIpExt: InNoRoutes\nIpExt: 5\n"), 0o600))
	v, err := Counter(path, "TcpExt", "ListenOverflows")
	require.NoError(t, err)
	assert.Equal(t, uint64(42), v)
	v, err = Counter(path, "IpExt", "InNoRoutes")
	require.NoError(t, err)
	assert.Equal(t, uint64(5), v)
	_, err = Counter(path, "TcpExt", "NoSuchCounter")
	assert.ErrorContains(t, err, "no TcpExt NoSuchCounter counter")
	_, err = Counter(filepath.Join(t.TempDir(), "missing"), "TcpExt", "ListenOverflows")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestCounterReadsTheRealFile: the kernel's own file parses, with the
// counters sockopt.System and the tests rely on.
func TestCounterReadsTheRealFile(t *testing.T) {
	if _, err := os.Stat("/proc/net/netstat"); err != nil {
		t.Skipf("no /proc/net/netstat: %v", err)
	}
	for _, name := range []string{"ListenOverflows", "ListenDrops", "TCPFastOpenActive", "TCPOrigDataSent"} {
		_, err := Counter("/proc/net/netstat", "TcpExt", name)
		assert.NoError(t, err, name)
	}
}
