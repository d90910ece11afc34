package dnscache

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolvConfLinesOfAnyLengthAreAllRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "# " + strings.Repeat("x", 70<<10) + "\nnameserver 127.0.0.1:5353\n"
	require.NoError(t, os.WriteFile(p, []byte(conf), 0o644))
	rc, err := readResolvConf(p)
	require.NoError(t, err)
	assert.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5353")}, rc.servers,
		"the nameserver after a 70 KiB comment line is read, not silently replaced by the default")
}

func TestAResolvConfLargerThanTheLimitIsAnErrorNamingIt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	f, err := os.Create(p)
	require.NoError(t, err)
	_, err = f.WriteString("nameserver 127.0.0.1:5353\n")
	require.NoError(t, err)
	require.NoError(t, f.Truncate(8<<20)) // 8 MiB, sparse: NUL bytes after the first line
	require.NoError(t, f.Close())
	_, err = readResolvConf(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), p, "the error names the file")
	assert.Contains(t, err.Error(), "1 MiB", "and the limit")
}
