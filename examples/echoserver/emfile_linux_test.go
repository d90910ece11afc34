package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// spareFDs is how many descriptors the child may open beyond those it has
// when it starts: the listener and a handful of connections.
const spareFDs = 12

// childMain runs the server with a file descriptor limit a few above what
// the process already holds, so that a burst of clients runs it out of
// descriptors (EMFILE on accept), as "ulimit -n 30" does from a shell. It
// stops when its standard input closes. The limit is set in this child
// process only: the tests in the parent keep theirs.
func childMain() int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	lim.Cur = uint64(len(fds) + spareFDs)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	err = run(ctx, []string{"-addr", "127.0.0.1:0", "-listeners", "1", "-grace", "0s"}, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// notifyBuffer is a lockedBuffer that signals every write, so that a test
// can wait for some output without polling.
type notifyBuffer struct {
	lockedBuffer
	wrote chan struct{} // capacity 1: at least one write since the last receive
}

func newNotifyBuffer() *notifyBuffer { return &notifyBuffer{wrote: make(chan struct{}, 1)} }

func (b *notifyBuffer) Write(p []byte) (int, error) {
	n, err := b.lockedBuffer.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

// waitFor waits until cond, checked after every write to b, holds, or
// fails the test after d.
func waitFor(t *testing.T, what string, d time.Duration, b *notifyBuffer, cond func() bool, dump func() string) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-b.wrote:
		case <-deadline.C:
			t.Fatalf("%s: not after %v\n%s", what, d, dump())
		}
	}
}

// The server runs in a child process with a real, low RLIMIT_NOFILE (set
// with setrlimit in the child only). 40 clients run it out of descriptors;
// once they hang up, the server must accept again.
func TestTheServerKeepsAcceptingAfterRunningOutOfFileDescriptors(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, stderr := newNotifyBuffer(), newNotifyBuffer()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = stdin.Close() // the child shuts down
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("the server did not exit within 30s of its stdin closing")
		}
	})
	dump := func() string { return "stdout:\n" + stdout.String() + "stderr:\n" + stderr.String() }

	var addr string
	waitFor(t, "the server listens", 30*time.Second, stdout, func() bool {
		m := listening.FindStringSubmatch(stdout.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, dump)

	const clients = 40 // well beyond spareFDs; the kernel queues what is not accepted
	conns := make([]net.Conn, 0, clients)
	for range clients {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		conns = append(conns, c)
		_, err = c.Write([]byte("x"))
		require.NoError(t, err)
	}
	waitFor(t, "accept fails with EMFILE", 30*time.Second, stderr, func() bool {
		return strings.Contains(stderr.String(), syscall.EMFILE.Error())
	}, dump)
	for _, c := range conns {
		require.NoError(t, c.Close())
	}

	// The server has descriptors again: new clients are served.
	for i := range 5 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		echoOnce(t, c, fmt.Sprintf("after EMFILE %d", i))
		require.NoError(t, c.Close())
	}
}
