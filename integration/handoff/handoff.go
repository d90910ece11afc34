// Package handoff serves connections that were accepted elsewhere, such as
// the ones listener.Listener.Drain takes from a retired listener's queue,
// with any server that takes a net.Listener: http.Server.Serve,
// grpc.Server.Serve.
//
//	hl := handoff.New(l.Addr())
//	go srv.Serve(hl) // srv also serves the listeners that stay
//	...
//	conns, err := l.Drain() // l is retired; its queued clients are not reset
//	for _, c := range conns {
//		hl.Put(c)
//	}
//	...
//	srv.Shutdown(ctx) // closes hl too
package handoff

import (
	"errors"
	"net"
	"sync"
)

// Listener is a net.Listener whose Accept returns the connections given to
// Put, in order. It stays open when it has none, as a listener with no
// client does, until Close. The zero Listener is ready to use, with a nil
// Addr; it is safe for concurrent use.
type Listener struct {
	addr net.Addr
	once sync.Once // makes ready and done
	// ready holds a token while queue may be non-empty.
	ready chan struct{}
	done  chan struct{} // closed by Close

	mu     sync.Mutex // guards queue, closed
	queue  []net.Conn
	closed bool
}

// New returns a Listener whose Addr is addr, such as the address of the
// listener whose connections it will be handed.
func New(addr net.Addr) *Listener {
	return &Listener{addr: addr}
}

func (l *Listener) init() {
	l.once.Do(func() {
		l.ready = make(chan struct{}, 1)
		l.done = make(chan struct{})
	})
}

// Put queues c for Accept. After Close, Put closes c and returns an error
// wrapping net.ErrClosed.
func (l *Listener) Put(c net.Conn) error {
	l.init()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errors.Join(l.opError("put", net.ErrClosed), c.Close())
	}
	l.queue = append(l.queue, c)
	l.mu.Unlock()
	l.signal()
	return nil
}

func (l *Listener) signal() {
	select {
	case l.ready <- struct{}{}:
	default: // a token is there already
	}
}

// Accept waits for a connection given to Put and returns it. After Close
// it returns an error wrapping net.ErrClosed, as a closed net.Listener
// does, so that a server's accept loop ends.
func (l *Listener) Accept() (net.Conn, error) {
	l.init()
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, l.opError("accept", net.ErrClosed)
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			more := len(l.queue) > 0
			l.mu.Unlock()
			if more {
				l.signal() // for another Accept
			}
			return c, nil
		}
		l.mu.Unlock()
		select {
		case <-l.ready:
		case <-l.done:
		}
	}
}

// Close makes Accept and Put fail with net.ErrClosed, also in Accept calls
// blocked in other goroutines, and closes the connections that were put
// and not accepted, returning their errors. Closing a closed Listener
// returns an error wrapping net.ErrClosed.
func (l *Listener) Close() error {
	l.init()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.opError("close", net.ErrClosed)
	}
	l.closed = true
	queue := l.queue
	l.queue = nil
	l.mu.Unlock()
	close(l.done)
	var errs []error
	for _, c := range queue {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Addr returns the address given to New.
func (l *Listener) Addr() net.Addr {
	return l.addr
}

func (l *Listener) opError(op string, err error) error {
	e := &net.OpError{Op: op, Err: err}
	if l.addr != nil {
		e.Net, e.Addr = l.addr.Network(), l.addr
	}
	return e
}
