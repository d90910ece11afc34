package pool_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/nettune/nettune/pool"
)

// A pool of any resource: here, a counter standing in for a client.
func ExampleNew() {
	type client struct{ id int }
	next := 0
	dial := func(context.Context) (*client, error) {
		next++
		return &client{id: next}, nil
	}
	closeFn := func(c *client) error { return nil }

	p, err := pool.New(dial, closeFn, pool.MaxSize(4), pool.MaxIdleTime(time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	ctx := context.Background()
	r, err := p.Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("using client", r.Value().id)
	r.Release()

	r, err = p.Get(ctx) // the same client, from the idle set
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("using client", r.Value().id)
	r.Release()

	s := p.Stats()
	fmt.Printf("gets %d, hits %d, dials %d, idle %d\n", s.Gets, s.Hits, s.Dials, s.Idle)
	// Output:
	// using client 1
	// using client 1
	// gets 2, hits 1, dials 1, idle 1
}

// A pool of connections to a loopback echo server. Close on the *pool.Conn
// returns the connection to the pool.
func ExampleNewConnPool() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()

	var d net.Dialer
	cp, err := pool.NewConnPool(d.DialContext, "tcp", ln.Addr().String(), pool.MaxSize(8))
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Close()

	for i := range 3 {
		c, err := cp.Get(context.Background())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(c, "hello %d\n", i)
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			c.MarkUnusable()
		}
		c.Close()
		fmt.Print(line)
	}
	fmt.Println("dials:", cp.Stats().Dials)
	// Output:
	// hello 0
	// hello 1
	// hello 2
	// dials: 1
}

// A pool of protocol clients, each keeping a bufio.Reader for as long as
// its connection lives, with the liveness check on the socket under it.
func ExampleNewConnPoolOf() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()

	type client struct {
		conn net.Conn
		r    *bufio.Reader
	}
	newClient := func(_ context.Context, c net.Conn) (*client, error) {
		return &client{conn: c, r: bufio.NewReader(c)}, nil
	}
	var d net.Dialer
	p, err := pool.NewConnPoolOf(d.DialContext, "tcp", ln.Addr().String(), newClient, pool.MaxSize(8))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	for i := range 3 {
		r, err := p.Get(context.Background())
		if err != nil {
			log.Fatal(err)
		}
		c := r.Value()
		fmt.Fprintf(c.conn, "hello %d\n", i)
		line, err := c.r.ReadString('\n')
		if err != nil {
			_ = r.Discard()
			log.Fatal(err)
		}
		r.Release()
		fmt.Print(line)
	}
	fmt.Println("dials:", p.Stats().Dials)
	// Output:
	// hello 0
	// hello 1
	// hello 2
	// dials: 1
}

// While dialing is paused after failures, a Get that nothing can serve
// fails at once with a *BackoffError naming the last dial error.
func ExampleBackoffError() {
	refused := errors.New("connection refused")
	p, err := pool.New(func(context.Context) (int, error) { return 0, refused },
		func(int) error { return nil }, pool.DialBackoff(time.Minute, time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	_, err = p.Get(context.Background())
	fmt.Println(err)
	_, err = p.Get(context.Background())
	var be *pool.BackoffError
	fmt.Println(errors.As(err, &be), errors.Is(err, pool.ErrBackoff), errors.Is(err, refused), be.Failures)
	// Output:
	// pool: dial: connection refused
	// true true true 1
}
