package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// childEnv, when set, makes the test binary run the server as a child
// process (see emfile_linux_test.go) instead of the tests.
const childEnv = "ECHOSERVER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// lockedBuffer is a bytes.Buffer safe for the server goroutine and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listening = regexp.MustCompile(`listening on (\S+) with (\d+) listeners`)

// startServer runs the program in-process and returns its address, its
// output and a stop function that cancels it (like SIGINT) and returns
// run's error.
func startServer(t *testing.T, args ...string) (addr string, out *lockedBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, out, io.Discard) }()
	var result error
	var once sync.Once
	stop = func() error {
		once.Do(func() { cancel(); result = <-done })
		return result
	}
	t.Cleanup(func() { _ = stop() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return m[1], out, stop
		}
		select {
		case err := <-done:
			t.Fatalf("server exited before listening: %v\n%s", err, out.String())
		case <-time.After(5 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "server did not start listening:\n%s", out.String())
	}
}

func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := c.Write([]byte(msg))
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, msg, string(got), "the server should echo what it was sent")
}

func TestTheServerEchoesOnEveryListenerOfTheGroupAndShutsDownCleanly(t *testing.T) {
	addr, out, stop := startServer(t, "-addr", "127.0.0.1:0", "-listeners", "3", "-grace", "10s")
	const clients = 24
	for i := range clients {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		echoOnce(t, c, fmt.Sprintf("hello %d", i))
		require.NoError(t, c.Close())
	}
	require.NoError(t, stop())

	text := out.String()
	assert.Contains(t, text, "with 3 listeners (reuse-port group)")
	assert.Contains(t, text, "ConnSockopt(TCP_NODELAY=true)", "the tuned per-connection options should be listed")
	total := 0
	for _, m := range regexp.MustCompile(`listener \d+ accepted (\d+) connections`).FindAllStringSubmatch(text, -1) {
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		total += n
	}
	assert.Equal(t, clients, total, "every connection should be accepted by one listener of the group:\n%s", text)
	assert.Contains(t, text, "0 closed after the 10s grace period", "clients that hung up need no forced close")
}

func TestShutdownClosesConnectionsStillOpenAfterTheGracePeriod(t *testing.T) {
	addr, out, stop := startServer(t, "-addr", "127.0.0.1:0", "-listeners", "1", "-grace", "50ms")
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	echoOnce(t, c, "still here")

	require.NoError(t, stop())
	assert.Contains(t, out.String(), "1 closed after the 50ms grace period")
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET), "the client should see the connection closed, got %v", err)
}

func TestAnAddressInUseIsAClearErrorWithExitStatusOne(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0") // without SO_REUSEPORT
	require.NoError(t, err)
	defer l.Close()
	err = run(context.Background(), []string{"-addr", l.Addr().String(), "-listeners", "2"}, io.Discard, io.Discard)
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
	assert.Equal(t, 1, cli.ExitCode(err))
}

func TestBadFlagsFailWithExitStatusTwo(t *testing.T) {
	for _, args := range [][]string{
		{"-listeners", "0"},
		{"-sockopt", "NO_SUCH_OPTION=1"},
		{"-conn-sockopt", "TCP_DEFER_ACCEPT=1s"}, // a listening-socket option
		{"-grace", "-1s"},
		{"-nope"},
		{"extra"},
	} {
		var stdout bytes.Buffer
		err := run(context.Background(), args, &stdout, io.Discard)
		var ue *cli.UsageError
		assert.ErrorAs(t, err, &ue, "%v should be refused as bad usage", args)
		assert.Equal(t, 2, cli.ExitCode(err), "%v", args)
		assert.Empty(t, stdout.String(), "%v: nothing on stdout", args)
	}
}

func TestHelpAndABadValueUseTheSharedFormat(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, io.Discard, &stderr)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, cli.ExitCode(err))
	assert.True(t, strings.HasPrefix(stderr.String(), "usage: echoserver [flags]\n"), "help starts with the shared usage line:\n%s", stderr.String())
	assert.Contains(t, stderr.String(), "\n\nflags:\n  -", "help lists the flags under the shared heading")

	for name, value := range map[string]string{"listeners": "0", "grace": "soon", "addr": "7007", "backlog": "-1"} {
		err := run(context.Background(), []string{"-" + name, value}, io.Discard, io.Discard)
		assert.Equal(t, 2, cli.ExitCode(err), "-%s %s", name, value)
		want := fmt.Sprintf("-%s %q: want ", name, value)
		assert.True(t, strings.HasPrefix(err.Error(), want), "the error should start with %s, got: %v", want, err)
	}
}
