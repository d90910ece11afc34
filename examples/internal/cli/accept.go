package cli

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/nettune/nettune/listener"
)

// The waits after a temporary Accept error, as net/http's Server uses.
const (
	firstAcceptWait = 5 * time.Millisecond
	maxAcceptWait   = time.Second
)

// Serve is a server's accept loop: it passes every connection l accepts to
// handle (which must not block: it starts a goroutine of its own) until l
// is closed, when it returns nil, or Accept fails with an error that is not
// temporary, which it returns.
//
// A temporary error, such as EMFILE or ENFILE when the process or the
// system is out of file descriptors, does not end the loop: like
// net/http's Server, Serve reports it to logf and tries again after a wait
// of 5ms, doubled after each further error up to 1s, and back to 5ms after
// a successful Accept. Connections that arrive meanwhile wait in the
// kernel's accept queue. A wait ends early when ctx is done, and Serve
// then returns nil. A *listener.ConnOptionError (one connection closed
// because an option could not be set on it) is reported and the loop goes
// on at once. logf may be nil.
func Serve(ctx context.Context, l net.Listener, handle func(net.Conn), logf func(format string, args ...any)) error {
	return serve(ctx, l, handle, logf, sleep)
}

// sleep waits d, or until ctx is done; it reports whether the wait was
// whole.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func serve(ctx context.Context, l net.Listener, handle func(net.Conn), logf func(string, ...any),
	sleep func(context.Context, time.Duration) bool) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var wait time.Duration // after the last temporary error; 0 after a success
	for {
		c, err := l.Accept()
		if err == nil {
			wait = 0
			handle(c)
			continue
		}
		var ce *listener.ConnOptionError
		var te interface{ Temporary() bool }
		switch {
		case errors.Is(err, net.ErrClosed):
			return nil
		case errors.As(err, &ce):
			logf("%v", err)
			continue
		case !errors.As(err, &te) || !te.Temporary():
			return err
		}
		wait = min(max(2*wait, firstAcceptWait), maxAcceptWait)
		logf("%v; retrying in %v", err, wait)
		if !sleep(ctx, wait) {
			return nil
		}
	}
}
