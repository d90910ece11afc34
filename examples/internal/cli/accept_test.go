package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/listener"
)

// scriptedListener returns the errors of its script in order, a
// connection for each nil entry, and net.ErrClosed once the script is
// done.
type scriptedListener struct {
	mu     sync.Mutex // guards script
	script []error
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.script) == 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
	}
	err := l.script[0]
	l.script = l.script[1:]
	if err != nil {
		return nil, err
	}
	c1, c2 := net.Pipe()
	_ = c2.Close()
	return c1, nil
}

func (l *scriptedListener) Close() error   { return nil }
func (l *scriptedListener) Addr() net.Addr { return &net.TCPAddr{} }

// acceptErr is the error net returns for a failed accept(2).
func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

func TestServeBacksOffOnTemporaryAcceptErrorsLikeNetHTTP(t *testing.T) {
	emfile := acceptErr(syscall.EMFILE)
	script := []error{emfile, emfile, nil, emfile}
	for range 10 {
		script = append(script, emfile)
	}
	script = append(script, acceptErr(syscall.ENFILE), nil, nil)
	l := &scriptedListener{script: script}
	var waits []time.Duration
	var logs []string
	handled := 0
	err := serve(context.Background(), l, func(c net.Conn) { handled++; _ = c.Close() },
		func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) },
		func(_ context.Context, d time.Duration) bool { waits = append(waits, d); return true })
	require.NoError(t, err, "a closed listener ends the loop without an error")
	assert.Equal(t, 3, handled, "every connection after the errors is handled")
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{5 * ms, 10 * ms, // reset by the connection in between
		5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, time.Second, time.Second, time.Second},
		waits, "5ms doubling to 1s, reset by a successful Accept")
	require.Len(t, logs, len(waits), "every temporary error is reported")
	assert.Contains(t, logs[0], "too many open files; retrying in 5ms")
}

func TestServeReturnsPermanentErrorsAndSkipsConnOptionErrors(t *testing.T) {
	perm := acceptErr(syscall.EINVAL)
	connOpt := &net.OpError{Op: "accept", Net: "tcp", Err: &listener.ConnOptionError{Err: syscall.EPERM}}
	l := &scriptedListener{script: []error{connOpt, nil, perm, nil}}
	var logs []string
	handled := 0
	err := serve(context.Background(), l, func(c net.Conn) { handled++; _ = c.Close() },
		func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) },
		func(context.Context, time.Duration) bool { t.Fatal("no wait for these errors"); return false })
	assert.ErrorIs(t, err, syscall.EINVAL, "a permanent error ends the loop and is returned")
	assert.Equal(t, 1, handled)
	assert.Len(t, logs, 1, "the connection option error is reported")
}

func TestServeStopsWaitingWhenTheContextEnds(t *testing.T) {
	script := make([]error, 1000)
	for i := range script {
		script[i] = acceptErr(syscall.EMFILE)
	}
	l := &scriptedListener{script: script}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, l, func(c net.Conn) { _ = c.Close() }, func(string, ...any) { cancel() })
	}()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("Serve did not return within a minute of its context ending")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Len(t, l.script, 999, "no Accept after the context ended")
}

func TestServeReturnsNilOnClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), ln, func(c net.Conn) { _ = c.Close() }, nil) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_ = c.Close()
	require.NoError(t, ln.Close())
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("Serve did not return within a minute of the listener closing")
	}
}
