package servetest

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStopClosesConnsWhoseHandlersBlock: a handler blocked in a Read
// returns once stop closes its conn, and stop waits for it.
func TestStopClosesConnsWhoseHandlersBlock(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	entered := make(chan struct{})
	returned := make(chan struct{})
	stop := Serve(t, ln, func(c net.Conn) {
		close(entered)
		_, _ = c.Read(make([]byte, 1)) // blocks: the client sends nothing
		// Still busy when a stop that does not wait returns.
		for range 1000 {
			runtime.Gosched()
		}
		close(returned)
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler did not start")
	}
	stop()
	select {
	case <-returned:
	default:
		t.Fatal("stop returned before the handler did")
	}
	stop() // a second call is harmless
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the server's side of the conn is closed")
}

func TestLoopbackEchoes(t *testing.T) {
	c, err := net.Dial("tcp", Loopback(t, Echo))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
}
