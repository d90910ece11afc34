//go:build linux

package dialer_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptrace"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/dialer"
)

// traced notes what net reports of a dial to Control and to httptrace's
// connect hooks.
type traced struct {
	mu       sync.Mutex // guards controls, starts, dones
	controls []string   // "network address" of each Control call
	starts   []string   // "network address" of each ConnectStart
	dones    []string   // "network address" of each ConnectDone
}

func (tr *traced) note(to *[]string, network, address string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	*to = append(*to, network+" "+address)
}

func (tr *traced) control(network, address string, _ syscall.RawConn) error {
	tr.note(&tr.controls, network, address)
	return nil
}

func (tr *traced) context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		ConnectStart: func(network, addr string) { tr.note(&tr.starts, network, addr) },
		ConnectDone:  func(network, addr string, _ error) { tr.note(&tr.dones, network, addr) },
	})
}

func (tr *traced) take() (controls, starts, dones []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	controls, starts, dones = tr.controls, tr.starts, tr.dones
	tr.controls, tr.starts, tr.dones = nil, nil, nil
	return controls, starts, dones
}

func TestAnIPv4AddressIsShownAsIPv4EverywhereNetShowsIt(t *testing.T) {
	// An attempt hands net an IPv4 address in its IPv4-mapped form, which
	// costs net's parse less. Control, httptrace's connect hooks, errors
	// and the connection still see "127.0.0.1:port" and the caller's
	// network, as with net.Dialer.
	ln := listen(t, "tcp4", "127.0.0.1:0")
	open := uint16(ln.Addr().(*net.TCPAddr).Port)
	refused := unusedPort(t)
	var tr traced
	withControl, err := dialer.New(dialer.Resolver(resolverFor("127.0.0.1")), dialer.Control(tr.control))
	require.NoError(t, err)
	plain, err := dialer.New(dialer.Resolver(resolverFor("127.0.0.1")))
	require.NoError(t, err)
	twoAddresses, err := dialer.New(dialer.Resolver(resolverFor("127.0.0.1", "127.0.0.1")), dialer.Control(tr.control), dialer.FallbackDelay(time.Hour))
	require.NoError(t, err)
	live, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, tc := range []struct {
		name    string
		d       *dialer.Dialer
		ctx     context.Context
		control bool
	}{
		{"with a Control, a context that never ends", withControl, context.Background(), true},
		{"with a Control, a context that can end", withControl, live, true},
		{"no Control, a context that never ends", plain, context.Background(), false},
		{"no Control, a context that can end", plain, live, false},
		{"a race, with a Control", twoAddresses, live, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr.take()
			want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), open).String()
			c, err := tc.d.DialContext(tr.context(tc.ctx), "tcp", hostAddr(open))
			require.NoError(t, err)
			assert.Equal(t, want, c.RemoteAddr().String(), "the connection's remote address")
			c.Close()
			controls, starts, dones := tr.take()
			if tc.control {
				assert.Equal(t, []string{"tcp4 " + want}, controls, "what Control is given")
			}
			assert.Equal(t, []string{"tcp " + want}, starts, "what ConnectStart is given")
			assert.Equal(t, []string{"tcp " + want}, dones, "what ConnectDone is given")

			want = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), refused).String()
			_, err = tc.d.DialContext(tr.context(tc.ctx), "tcp", hostAddr(refused))
			var de *dialer.Error
			require.ErrorAs(t, err, &de)
			require.NotEmpty(t, de.Errs)
			var oe *net.OpError
			require.ErrorAs(t, de.Errs[0], &oe)
			assert.Equal(t, "tcp", oe.Net, "the error's network")
			assert.Equal(t, want, oe.Addr.String(), "the address in the error")
			assert.Equal(t, "dial tcp "+want+": connect: connection refused", de.Errs[0].Error())
			assert.ErrorIs(t, err, syscall.ECONNREFUSED)
			_, starts, _ = tr.take()
			assert.Contains(t, starts, "tcp "+want, "what ConnectStart is given")
		})
	}
}

func TestARaceUnderAContextThatNeverEndsReportsEveryFailedAttemptAsTried(t *testing.T) {
	// Under a context that never ends, the race does not track its
	// attempts: none can end with its context before its socket is
	// made. Every address is then a failed attempt, for which a socket
	// was made, and none is listed as not tried.
	port := unusedPort(t)
	var s sockets
	s.take()
	d, err := dialer.NewWithSocketHook(s.hook, dialer.Resolver(resolverFor("::1", "127.0.0.1")), dialer.FallbackDelay(time.Hour))
	require.NoError(t, err)
	_, err = d.DialContext(context.Background(), "tcp", hostAddr(port))
	var de *dialer.Error
	require.ErrorAs(t, err, &de)
	made := s.take()
	var failed []string
	for _, e := range de.Errs {
		var oe *net.OpError
		require.ErrorAs(t, e, &oe)
		failed = append(failed, oe.Addr.String())
		assert.True(t, made[oe.Addr.String()], "%s is a failed attempt with a socket", oe.Addr)
	}
	p := strconv.Itoa(int(port))
	assert.Equal(t, []string{net.JoinHostPort("::1", p), net.JoinHostPort("127.0.0.1", p)}, failed, "each address, in RFC 8305 order")
	assert.Empty(t, de.NotTried)
	assert.NoError(t, de.Stopped)
	assert.False(t, errors.Is(err, context.Canceled), "no attempt was cut: %v", err)
}

func TestAnAttemptWhoseContextEndsBeforeNetMadeItsSocketIsNotTried(t *testing.T) {
	// The context ends after the Dialer decided to dial an address but
	// before net made its socket: net fails the dial without one, and
	// the address is not tried, whichever way it was dialed.
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		name  string
		addrs []string
		opts  []dialer.Option
	}{
		{"one address", []string{"127.0.0.1"}, nil},
		{"one address, with options", []string{"127.0.0.1"}, []dialer.Option{dialer.KeepAliveConfig(allocKeepAlive)}},
		{"a race", []string{"127.0.0.1", "::1"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d, err := dialer.NewWithHookBeforeNet(cancel, append(tc.opts, dialer.Resolver(resolverFor(tc.addrs...)))...)
			require.NoError(t, err)
			_, err = d.DialContext(ctx, "tcp", hostAddr(port))
			var de *dialer.Error
			require.ErrorAs(t, err, &de)
			assert.Empty(t, de.Errs, "no socket was made: no attempt failed")
			var want []netip.AddrPort
			for _, a := range tc.addrs {
				want = append(want, netip.AddrPortFrom(netip.MustParseAddr(a), port))
			}
			assert.Equal(t, want, de.NotTried)
			assert.Equal(t, context.Canceled, de.Stopped)
			assert.ErrorIs(t, err, context.Canceled)
		})
	}
}

// lateTimer is a context whose deadline has a timer that fires late: Done
// closes (and Err reports the deadline) only when fire is called, as
// context.WithDeadline's does when its timer runs behind.
type lateTimer struct {
	context.Context // for Value
	deadline        time.Time
	done            chan struct{}
	once            sync.Once
}

func (c *lateTimer) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *lateTimer) Done() <-chan struct{}       { return c.done }
func (c *lateTimer) fire()                       { c.once.Do(func() { close(c.done) }) }

func (c *lateTimer) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func TestAnAttemptWhoseDeadlinePassedBeforeNetMadeItsSocketIsNotTriedThoughTheTimerIsLate(t *testing.T) {
	// The deadline passes after the Dialer decided to dial but before net
	// made the socket, and the context's timer has not fired yet: net
	// fails the attempt without a socket (its deadline has passed), and
	// the address is not tried, stopped by the deadline.
	ln := listen(t, "tcp4", "127.0.0.1:0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		name  string
		addrs []string
	}{
		{"one address", []string{"127.0.0.1"}},
		{"a race", []string{"127.0.0.1", "::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := &lateTimer{Context: context.Background(), deadline: time.Now().Add(20 * time.Millisecond), done: make(chan struct{})}
			defer ctx.fire()
			passDeadline := func() {
				// The attempt waits here until the deadline has passed;
				// the timer has not fired.
				for time.Now().Before(ctx.deadline) {
					runtime.Gosched()
				}
			}
			d, err := dialer.NewWithHookBeforeNet(passDeadline, dialer.Resolver(resolverFor(tc.addrs...)), dialer.FallbackDelay(time.Hour))
			require.NoError(t, err)
			_, err = d.DialContext(ctx, "tcp", hostAddr(port))
			var de *dialer.Error
			require.ErrorAs(t, err, &de)
			assert.Empty(t, de.Errs, "no socket was made: no attempt failed")
			assert.Len(t, de.NotTried, len(tc.addrs))
			assert.Equal(t, context.DeadlineExceeded, de.Stopped)
			assert.True(t, de.Timeout())
		})
	}
}
