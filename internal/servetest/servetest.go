// Package servetest runs the small TCP servers tests talk to: it accepts on
// a listener, runs a handler per connection, and on stop closes the
// listener and every connection it accepted and waits for the handlers, so
// that goleak finds nothing left behind.
package servetest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Serve runs handle on each conn ln accepts, in a goroutine of its own,
// and closes the conn when handle returns. The returned stop, also
// registered with tb.Cleanup, closes ln and every accepted conn (so
// handlers blocked in a Read return) and waits for the handlers; it may be
// called more than once.
func Serve(tb testing.TB, ln net.Listener, handle func(net.Conn)) (stop func()) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns = map[net.Conn]struct{}{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				handle(c)
				c.Close()
				mu.Lock()
				delete(conns, c) // a server that outlives many conns holds only the open ones
				mu.Unlock()
			})
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			for c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
	tb.Cleanup(stop)
	return stop
}

// Loopback listens on 127.0.0.1 and serves handle there until the test
// ends; it returns the address.
func Loopback(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	Serve(tb, ln, handle)
	return ln.Addr().String()
}

// Echo writes back what it reads until the peer closes.
func Echo(c net.Conn) { _, _ = io.Copy(c, c) }

// Discard reads and drops what it reads until the peer closes: a server
// that never answers.
func Discard(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
