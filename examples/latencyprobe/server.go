package main

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// server serves every connection a listener accepts with handle, each on
// a goroutine of its own, until close, which closes the listener and every
// open connection and waits for the goroutines.
type server struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex // guards conn, done
	conn map[net.Conn]struct{}
	done bool // close has begun: no more conns
}

func serve(ln net.Listener, tlsCfg *tls.Config, handle func(net.Conn)) *server {
	return servePaced(ln, tlsCfg, 0, handle)
}

// servePaced is serve with a pause of pace after each Accept: a busy
// server that accepts one connection every pace.
func servePaced(ln net.Listener, tlsCfg *tls.Config, pace time.Duration, handle func(net.Conn)) *server {
	s := &server{ln: ln, conn: map[net.Conn]struct{}{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed; the lab's listeners meet no temporary errors
			}
			if pace > 0 {
				time.Sleep(pace) // the pace is the point
			}
			if tlsCfg != nil {
				c = tls.Server(c, tlsCfg)
			}
			s.mu.Lock()
			if s.done {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conn[c] = struct{}{}
			s.wg.Go(func() {
				handle(c)
				s.mu.Lock()
				delete(s.conn, c)
				s.mu.Unlock()
				c.Close()
			})
			s.mu.Unlock()
		}
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

func (s *server) close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.done = true
	for c := range s.conn {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// echoHandler reads whole requests of size bytes and writes each back: a
// server that answers only whole requests, which is what makes Nagle's
// algorithm and delayed ACKs stall a client that writes a request in two.
func echoHandler(size int) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}
}

// bulkHandler waits for one byte, then writes as fast as the connection
// takes it for d, then closes: a download of d.
func bulkHandler(d time.Duration) func(net.Conn) {
	return func(c net.Conn) {
		one := make([]byte, 1)
		if _, err := io.ReadFull(c, one); err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		if err := c.SetWriteDeadline(time.Now().Add(d)); err != nil {
			return
		}
		for {
			if _, err := c.Write(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					// The time is up: end the download cleanly.
					if tc, ok := c.(*net.TCPConn); ok {
						_ = tc.CloseWrite()
					}
				}
				return
			}
		}
	}
}
