package main

import (
	"context"
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
	err := runWithDeadline(t, func() {}, append([]string{"-plot", link, "-quiet"}, tiny...)...)
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
