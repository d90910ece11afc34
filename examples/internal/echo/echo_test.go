package echo

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return c
}

func TestAFixedSizeServerAnswersOnlyWholeRequests(t *testing.T) {
	s, err := Start(context.Background(), 8, nil)
	require.NoError(t, err)
	defer s.Close()
	c := dial(t, s)

	_, err = c.Write([]byte("half"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = c.Read(make([]byte, 8))
	var ne net.Error
	require.ErrorAs(t, err, &ne, "half a request gets no answer")
	assert.True(t, ne.Timeout())

	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write([]byte("-full"))
	require.NoError(t, err)
	got := make([]byte, 8)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, "half-ful", string(got), "the first 8 bytes come back once they all arrived")
}

func TestCloseConnsDropsEveryConnectionButKeepsAccepting(t *testing.T) {
	s, err := Start(context.Background(), 0, nil)
	require.NoError(t, err)
	defer s.Close()
	c := dial(t, s)
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	_, err = io.ReadFull(c, make([]byte, 1))
	require.NoError(t, err)

	assert.Equal(t, 1, s.CloseConns())
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the client sees the close")

	c2 := dial(t, s)
	_, err = c2.Write([]byte("again"))
	require.NoError(t, err)
	got := make([]byte, 5)
	_, err = io.ReadFull(c2, got)
	require.NoError(t, err)
	assert.Equal(t, "again", string(got))
}

// flakyListener fails its first Accepts with EMFILE, as a process out of
// file descriptors does, then accepts for real.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex // guards fails
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	fail := l.fails > 0
	if fail {
		l.fails--
	}
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// The EMFILE is injected through a wrapping listener: the server runs
// inside the test process, whose file limit the other tests share.
func TestTheServerKeepsAcceptingAfterATemporaryAcceptError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := serveOn(&flakyListener{Listener: ln, fails: 3}, 0)
	defer s.Close()
	c := dial(t, s)
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	got := make([]byte, 4)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err, "the server should accept again after EMFILE")
	assert.Equal(t, "ping", string(got))
}
