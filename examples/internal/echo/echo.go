// Package echo is the loopback echo server the example programs embed.
package echo

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/listener"
)

// Server echoes on 127.0.0.1. With a message size it reads exactly that
// many bytes before writing them back: a server that answers only whole
// requests, which is what makes Nagle's algorithm and delayed ACKs stall a
// client that sends a request in two writes. With size 0 it writes back
// whatever arrives, as it arrives.
//
// A temporary Accept error, such as EMFILE when the process is out of file
// descriptors, does not stop the server: it tries again after a wait (5ms,
// doubling up to 1s, as net/http does).
//
// A Server is safe for concurrent use.
type Server struct {
	ln   net.Listener
	size int

	wg   sync.WaitGroup     // the accept loop and one goroutine per connection
	stop context.CancelFunc // ends the accept loop's wait after a temporary error

	mu     sync.Mutex // guards conns, closed
	conns  map[net.Conn]struct{}
	closed bool
}

// Start listens on 127.0.0.1:0 (speaking TLS when cfg is not nil) and
// serves until Close.
func Start(ctx context.Context, size int, cfg *tls.Config) (*Server, error) {
	lc, err := listener.New()
	if err != nil {
		return nil, err
	}
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var ln net.Listener = l
	if cfg != nil {
		ln = tls.NewListener(l, cfg)
	}
	return serveOn(ln, size), nil
}

// serveOn starts a Server on ln.
func serveOn(ln net.Listener, size int) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{ln: ln, size: size, conns: make(map[net.Conn]struct{}), stop: cancel}
	s.wg.Add(1)
	go s.serve(ctx)
	return s
}

// Addr is the address the server listens on, as host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// serve accepts until the listener is closed. A temporary Accept error,
// such as EMFILE when the process is out of file descriptors, is retried
// after a wait, as net/http does (see cli.Serve).
func (s *Server) serve(ctx context.Context) {
	defer s.wg.Done()
	_ = cli.Serve(ctx, s.ln, func(c net.Conn) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		go s.handle(c)
	}, nil)
}

func (s *Server) handle(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	if s.size == 0 {
		_, _ = io.Copy(c, c)
		return
	}
	buf := make([]byte, s.size)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// CloseConns closes every open server-side connection, as a restarting
// server would, and reports how many there were. The server keeps
// accepting new ones.
func (s *Server) CloseConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
	return len(s.conns)
}

// Close stops accepting, closes every connection and waits for the
// server's goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.stop()
	err := s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
