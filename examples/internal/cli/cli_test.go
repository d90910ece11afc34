package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/sockopt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDurationKeepsThreeSignificantDigitsAcrossUnits(t *testing.T) {
	for d, want := range map[time.Duration]string{
		812:                         "812ns",
		1234:                        "1.23µs",
		21_340:                      "21.3µs",
		999_400:                     "999µs",
		1_250_000:                   "1.25ms",
		44_049_686:                  "44.0ms",
		3 * time.Second / 2:         "1.50s",
		0:                           "0ns",
		time.Duration(99_960) * 1e3: "100ms",
		999_600:                     "1.00ms",
		9_996:                       "10.0µs",
		999:                         "999ns",
	} {
		got := Duration(d)
		assert.Equal(t, want, got, "Duration(%d)", int64(d))
		_, err := time.ParseDuration(got)
		assert.NoError(t, err, "%q should parse back as a duration", got)
	}
}

func TestExitCodeTellsUsageFromFailure(t *testing.T) {
	assert.Equal(t, 0, ExitCode(nil))
	assert.Equal(t, 0, ExitCode(flag.ErrHelp))
	assert.Equal(t, 2, ExitCode(fmt.Errorf("wrapped: %w", Usagef("-n %d", 0))))
	assert.Equal(t, 1, ExitCode(errors.New("connection refused")))
}

func TestSockoptsCollectsRepeatedOptionsAndRefusesBadOnes(t *testing.T) {
	var f Sockopts
	require.NoError(t, f.Set("TCP_USER_TIMEOUT=5s"))
	require.NoError(t, f.Set("SO_RCVBUF=65536"))
	assert.Equal(t, Sockopts{sockopt.UserTimeout(5 * time.Second), sockopt.ReceiveBuffer(65536)}, f)
	assert.Equal(t, "TCP_USER_TIMEOUT=5s,SO_RCVBUF=65536", f.String())
	var se *sockopt.Error
	assert.ErrorAs(t, f.Set("TCP_USER_TIMEOUT=-1s"), &se)
	assert.Len(t, f, 2, "a refused option is not added")
}

func TestWriteLatencyTableAlignsColumnsAndMarksEmptyRows(t *testing.T) {
	h, err := latency.New()
	require.NoError(t, err)
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	empty, err := latency.New()
	require.NoError(t, err)
	var b bytes.Buffer
	WriteLatencyTable(&b, []LatencyRow{{Title: "some", Snap: h.Snapshot()}, {Title: "none at all", Snap: empty.Snapshot(), Failed: 3}})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, len([]rune(lines[0])), len([]rune(lines[1])), "rows should be aligned:\n%s", b.String())
	fields := strings.Fields(lines[1])
	require.Len(t, fields, 8)
	assert.Equal(t, []string{"some", "100", "0"}, fields[:3])
	for i, want := range []time.Duration{50 * time.Microsecond, 95 * time.Microsecond, 99 * time.Microsecond, 100 * time.Microsecond, 100 * time.Microsecond} {
		got, err := time.ParseDuration(fields[3+i])
		require.NoError(t, err)
		assert.InEpsilon(t, float64(want), float64(got), 0.01, "column %d: %s", 3+i, fields[3+i])
	}
	assert.Equal(t, []string{"none", "at", "all", "0", "3", "-", "-", "-", "-", "-"}, strings.Fields(lines[2]))
}
