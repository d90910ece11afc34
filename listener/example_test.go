package listener_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/nettune/nettune/listener"
	"github.com/nettune/nettune/sockopt"
)

// A listener whose accepted connections keep Nagle on and time out after
// 30 s of unacknowledged data: options Go's Accept would otherwise reset.
func ExampleNew() {
	cfg, err := listener.New(
		listener.Backlog(128),
		listener.ConnSockopt(sockopt.NoDelay(false)),
		listener.ConnSockopt(sockopt.UserTimeout(30*time.Second)),
	)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := cfg.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 1)) // until the server closes
		}
	}()
	c, err := ln.AcceptTCP()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, o := range []sockopt.Option{sockopt.NoDelay(false), sockopt.UserTimeout(0)} {
		got, err := sockopt.Get(c, o)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(got)
	}
	got, asked := ln.Backlog()
	fmt.Println("backlog", got, "of", asked, "asked")
	// Output:
	// TCP_NODELAY=false
	// TCP_USER_TIMEOUT=30s
	// backlog 128 of 128 asked
}

// A reuse-port group of two listeners, each with its own accept loop,
// retired gracefully: Drain takes the connections still queued on each
// listener, so none is reset, and they are served before returning.
func ExampleConfig_ListenGroup() {
	cfg, err := listener.New()
	if err != nil {
		log.Fatal(err)
	}
	g, err := cfg.ListenGroup(context.Background(), "tcp", "127.0.0.1:0", 2)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	serve := func(c net.Conn) {
		defer c.Close()
		io.WriteString(c, "hello\n")
	}
	var loops sync.WaitGroup
	for _, l := range g.Listeners() {
		loops.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return // net.ErrClosed once drained
				}
				serve(c)
			}
		})
	}

	// Four clients connect; some may still be queued at shutdown.
	var clients []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", g.Addr().String())
		if err != nil {
			log.Fatal(err)
		}
		clients = append(clients, c)
	}

	// Graceful shutdown: drain every listener, serve what was queued.
	for _, l := range g.Listeners() {
		queued, err := l.Drain()
		if err != nil {
			log.Fatal(err)
		}
		for _, c := range queued {
			serve(c)
		}
	}
	loops.Wait()

	served := 0
	for _, c := range clients {
		if b, _ := io.ReadAll(c); string(b) == "hello\n" {
			served++
		}
		c.Close()
	}
	fmt.Println("served", served, "of", len(clients))
	// Output: served 4 of 4
}
