package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/netlab"
)

// runWithDeadline runs the probe in a goroutine and waits for it with a
// deadline; unblock is called when the deadline passes, to free a run
// stuck in an open (of a fifo), before the test fails.
func runWithDeadline(t *testing.T, unblock func(), args ...string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, io.Discard, io.Discard) }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		cancel()
		unblock()
		<-done
		t.Fatalf("latencyprobe %v did not return within a minute", args)
		return nil
	}
}

func TestPlotRefusesAPathThatIsNotARegularFileAndNeverRemovesIt(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	unblockFifo := func() {
		// Opening the read side lets a writer's blocking open return.
		if f, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
			t.Cleanup(func() { _ = f.Close() })
		}
	}
	paths := []string{fifo, dir}
	if os.Geteuid() == 0 {
		// A device node like /dev/null (character device 1:3), made in
		// the test's own directory so that no real device is at risk.
		null := filepath.Join(dir, "null")
		require.NoError(t, unix.Mknod(null, syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		paths = append(paths, null)
	} else {
		t.Log("not root: no device node; checking the fifo and the directory only")
	}
	for _, p := range paths {
		before, err := os.Lstat(p)
		require.NoError(t, err)
		err = runWithDeadline(t, unblockFifo, "-target", unreachable(t), "-n", "3", "-warmup", "1", "-quiet", "-plot", p)
		var ue *cli.UsageError
		assert.ErrorAs(t, err, &ue, "-plot %s (%v) is refused as bad usage", p, before.Mode().Type())
		assert.Equal(t, 2, cli.ExitCode(err), "-plot %s: exit status", p)
		assert.ErrorContains(t, err, "not a regular file", "-plot %s", p)
		after, err := os.Lstat(p)
		if assert.NoError(t, err, "-plot %s must not remove it", p) {
			assert.Equal(t, before.Mode(), after.Mode(), "-plot %s is still what it was", p)
		}
	}
}

func TestPlotInADirectoryThatCannotBeWrittenFailsBeforeMeasuring(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	paths := []string{filepath.Join(file, "plot.svg")} // a parent that is a file
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		require.NoError(t, os.Mkdir(ro, 0o500))
		paths = append(paths, filepath.Join(ro, "plot.svg"))
	} else {
		t.Log("root writes to any directory: checking a parent that is a file only")
	}
	for _, p := range paths {
		// The target is unreachable: were -plot checked only after the
		// run, the error would be the refused connection, with exit 1.
		err := runWithDeadline(t, func() {}, "-target", unreachable(t), "-n", "3", "-warmup", "1", "-quiet", "-plot", p)
		var ue *cli.UsageError
		assert.ErrorAs(t, err, &ue, "-plot %s", p)
		assert.Equal(t, 2, cli.ExitCode(err), "-plot %s: exit status", p)
	}
}

func TestPlotThroughASymlinkReplacesTheFileItPointsAtAndKeepsTheLink(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "real.svg")
	link := filepath.Join(dir, "link.svg")
	require.NoError(t, os.WriteFile(file, []byte("old"), 0o600))
	require.NoError(t, os.Symlink("real.svg", link))
	err := runWithDeadline(t, func() {}, append([]string{"-plot", link, "-quiet"}, quick...)...)
	require.NoError(t, err)
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeSymlink, "the link is still a link")
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Contains(t, string(got), "<svg", "the file the link points at holds the new plot")

	dangling := filepath.Join(dir, "dangling.svg")
	require.NoError(t, os.Symlink("missing/plot.svg", dangling))
	err = runWithDeadline(t, func() {}, "-target", unreachable(t), "-plot", dangling)
	assert.Equal(t, 2, cli.ExitCode(err), "a link to a file that does not exist is refused: %v", err)
	_, err = os.Lstat(dangling)
	assert.NoError(t, err, "the dangling link is left alone")
}

// newTestLab is netlab.New, skipping the test where the lab cannot run.
func newTestLab(t *testing.T) {
	t.Helper()
	lab, err := netlab.New()
	if err != nil {
		t.Skipf("netlab is not available here: %v", err)
	}
	require.NoError(t, lab.Close())
}

// A shortened lab run: every technique that can run in the lab runs, has
// its section, and meets the floors physics sets on the path (20 ms RTT,
// 50 Mbit/s, no loss). Only lower bounds, and the link's rate as an upper
// one: the machine is shared.
func TestALabRunMeasuresEachTechniqueAboveItsPhysicalFloor(t *testing.T) {
	newTestLab(t)
	const rtt = 20 * time.Millisecond
	const rate = 50e6
	args := []string{"-rtt", "20ms", "-jitter", "0", "-loss", "0", "-bandwidth", "50M",
		"-n", "5", "-tls-n", "3", "-nagle-n", "2", "-warmup", "1", "-quiet"}
	out, _, err := runProbe(t, append([]string{"-json"}, args...)...)
	require.NoError(t, err)
	tech := checkJSONShape(t, out, true)
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, int64(rtt), rep.Path.RTTNS)
	assert.Equal(t, int64(rate), rep.Path.RateBPS)
	assert.Zero(t, rep.Path.Loss)

	byName := map[string]jsonTechnique{}
	for _, jt := range rep.Techniques {
		byName[jt.Name] = jt
	}
	for _, name := range []string{"pool", "tls", "tfo", "nagle", "dns", "deadpeer", "buffers", "congestion", "eyeballs", "backlog", "http2"} {
		require.Empty(t, byName[name].Skipped, "%s runs in the lab", name)
	}
	atLeast := func(name, side string, got int64, rtts float64) {
		assert.GreaterOrEqual(t, time.Duration(got), time.Duration(rtts*float64(rtt)), "%s %s p50: %v round trips at least", name, side, rtts)
	}
	atLeast("pool", "fresh", byName["pool"].Without.P50NS, 2)
	atLeast("pool", "pooled", byName["pool"].With.P50NS, 1)
	atLeast("tls", "full handshake", byName["tls"].Without.P50NS, 3)
	atLeast("tls", "resumed", byName["tls"].Extra[0].P50NS, 3)
	atLeast("tls", "pooled", byName["tls"].With.P50NS, 1)
	atLeast("tfo", "Fast Open", byName["tfo"].With.P50NS, 1)
	atLeast("nagle", "on", byName["nagle"].Without.P50NS, 1)
	atLeast("nagle", "off", byName["nagle"].With.P50NS, 1)
	atLeast("dns", "lookup", byName["dns"].Without.P50NS, 1+float64(resolverProfile.RTT())/float64(rtt))
	atLeast("dns", "cache hit", byName["dns"].With.P50NS, 1)
	atLeast("backlog", "small", byName["backlog"].Without.P50NS, 2)
	atLeast("backlog", "adequate", byName["backlog"].With.P50NS, 2)
	atLeast("http2", "HTTP/1.1", byName["http2"].Without.P50NS, 1)
	atLeast("http2", "HTTP/2", byName["http2"].With.P50NS, 1)
	assert.Equal(t, int64(rtt), *byName["pool"].FloorNS, "pool's floor is one RTT")

	dead := byName["deadpeer"]
	assert.GreaterOrEqual(t, dead.With.P50NS, *dead.FloorNS, "TCP_USER_TIMEOUT does not fire early")
	assert.True(t, dead.Without.Capped, "keep-alive alone does not notice while data is unacknowledged")
	assert.Greater(t, dead.Without.P50NS, dead.With.P50NS)

	for _, name := range []string{"buffers", "congestion"} {
		jt := byName[name]
		assert.Equal(t, rate, *jt.FloorBPS, "%s: the floor is the link's rate", name)
		for _, side := range append([]jsonSide{*jt.Without, *jt.With}, jt.Extra...) {
			require.NotNil(t, side.BPS, "%s %s", name, side.Label)
			assert.Positive(t, *side.BPS, "%s %s", name, side.Label)
			// Bytes still in flight when the window starts arrive inside
			// it: allow a tenth over the link's rate.
			assert.LessOrEqual(t, *side.BPS, 1.1*rate, "%s %s: never above the link's rate", name, side.Label)
		}
	}
	// A 64 KiB receive buffer caps a 20 ms path near 64 KiB / 20 ms = 26 Mbit/s.
	assert.Less(t, *byName["buffers"].Without.BPS, 2*float64(64<<10*8)/rtt.Seconds(), "the small buffer caps the throughput")
	eyeballs := byName["eyeballs"]
	assert.True(t, eyeballs.Without.Capped, "one address after the other waits on the blackholed one")
	assert.GreaterOrEqual(t, eyeballs.With.P50NS, *eyeballs.FloorNS, "the dialer tries the next address after the fallback delay, not before")
	assert.Len(t, tech, len(techniqueNames))

	text, _, err := runProbe(t, append([]string{"-techniques", "pool,tfo,deadpeer"}, args...)...)
	require.NoError(t, err)
	assert.Contains(t, text, "Path: emulated by netlab")
	for _, section := range []string{"== Summary", "== Preflight", "== pool: ", "== tfo: ", "== deadpeer: ", "What gives \"with\""} {
		assert.Contains(t, text, section)
	}
	assert.Contains(t, text, "dialer.FastOpen(true) + listener.FastOpen(true)", "the summary names the call that gives the gain")
	assert.NotContains(t, text, "lab was not available")
}
