package dialer_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/nettune/nettune/dialer"
	"github.com/nettune/nettune/internal/dnstest"
)

func TestANameWithOneAddressKeepsTheRacesBookkeeping(t *testing.T) {
	// A name with one address is dialed without the race; its failures
	// read as the race's would.
	a := netip.MustParseAddrPort("192.0.2.1:80")
	cancelled := func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx, cancel
	}
	passed := func() (context.Context, context.CancelFunc) {
		return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	}
	background := func() (context.Context, context.CancelFunc) {
		return context.Background(), func() {}
	}
	live := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Hour)
	}
	// cancelInside is a dial function that cancels the dial's context
	// once the attempt reached it (the stand-in for a socket made) and
	// fails with the context's error, as net does when a connect is cut.
	cancelInside := func(cancel *context.CancelFunc) func(dialer.DialFunc) dialer.DialFunc {
		return func(dialer.DialFunc) dialer.DialFunc {
			return func(ctx context.Context, network, address string) (net.Conn, error) {
				(*cancel)()
				<-ctx.Done()
				return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
			}
		}
	}
	for _, tc := range []struct {
		name      string
		ctx       func() (context.Context, context.CancelFunc)
		cutInside bool // the dial function cancels the context
		tried     bool
		stopped   error
		attempts  int
		wantIs    error
	}{
		{"refused", background, false, true, nil, 1, errRefused},
		{"refused under a context that can end", live, false, true, nil, 1, errRefused},
		{"cancelled before", cancelled, false, false, context.Canceled, 0, context.Canceled},
		{"deadline passed before", passed, false, false, context.DeadlineExceeded, 0, context.DeadlineExceeded},
		{"cancelled once the socket was made", live, true, true, nil, 1, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var at attempts
			ctx, cancel := tc.ctx()
			defer cancel()
			hook := at.refuseAll
			if tc.cutInside {
				inner := cancelInside(&cancel)
				hook = func(real dialer.DialFunc) dialer.DialFunc {
					f := inner(real)
					return func(ctx context.Context, network, address string) (net.Conn, error) {
						at.add(address)
						return f(ctx, network, address)
					}
				}
			}
			d, err := dialer.NewWithDial(hook, dialer.Resolver(resolverFor(a.Addr().String())))
			require.NoError(t, err)
			_, err = d.DialContext(ctx, "tcp", "one.example:80")
			var de *dialer.Error
			require.ErrorAs(t, err, &de)
			assert.Equal(t, "tcp", de.Network)
			assert.Equal(t, "one.example:80", de.Address)
			assert.Len(t, at.list(), tc.attempts)
			if tc.tried {
				assert.Len(t, de.Errs, 1)
				assert.Empty(t, de.NotTried)
			} else {
				assert.Empty(t, de.Errs)
				assert.Equal(t, []netip.AddrPort{a}, de.NotTried)
			}
			assert.Equal(t, tc.stopped, de.Stopped)
			assert.ErrorIs(t, err, tc.wantIs)
			assert.Equal(t, tc.stopped == context.DeadlineExceeded, de.Timeout())
		})
	}
}

func TestANameWithOneAddressRecordsItsConnectTime(t *testing.T) {
	ln := listen(t, "tcp4", "127.0.0.1:0")
	var rec recorder
	d, err := dialer.New(dialer.Resolver(resolverFor("127.0.0.1")), dialer.RecordConnectTime(&rec))
	require.NoError(t, err)
	for _, ctx := range []context.Context{context.Background(), t.Context()} {
		c, err := d.DialContext(ctx, "tcp", hostAddr(uint16(ln.Addr().(*net.TCPAddr).Port)))
		require.NoError(t, err)
		c.Close()
	}
	got := rec.recorded()
	require.Len(t, got, 2, "one connect time per dial")
	for _, took := range got {
		assert.Positive(t, took)
	}
}

// appender is a resolver that also appends its answer to the caller's
// slice, as dnscache.Cache does.
type appender struct {
	addrs   []netip.Addr
	lookups int // LookupNetIP calls
	appends int // AppendNetIP calls
	dstCap  int // cap(dst) of the last AppendNetIP call
}

func (r *appender) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.lookups++
	return append([]netip.Addr(nil), r.addrs...), nil
}

func (r *appender) AppendNetIP(ctx context.Context, dst []netip.Addr, network, host string) ([]netip.Addr, error) {
	r.appends++
	r.dstCap = cap(dst)
	return append(dst, r.addrs...), nil
}

func TestAResolverThatAppendsIsAskedThatWay(t *testing.T) {
	r := &appender{}
	for _, a := range []string{v6a, v6b, v4a} {
		r.addrs = append(r.addrs, netip.MustParseAddr(a))
	}
	var at attempts
	d, err := dialer.NewWithDial(at.refuseAll, dialer.Resolver(r), dialer.FallbackDelay(time.Hour))
	require.NoError(t, err)
	for range 3 {
		_, err = d.DialContext(context.Background(), "tcp", "dual.example:80")
		require.Error(t, err)
	}
	assert.Equal(t, 3, r.appends, "AppendNetIP answered every dial")
	assert.Zero(t, r.lookups, "LookupNetIP was not asked")
	assert.Positive(t, r.dstCap, "the dial offered a buffer")
	want := hostPorts("80", v6a, v4a, v6b)
	assert.Equal(t, append(append(want, want...), want...), at.list(), "the answer dialed in RFC 8305 order, every time")
}

func TestAGoResolverIsAskedForTheRecordsOfTheNetworksFamily(t *testing.T) {
	// A *net.Resolver is asked through other methods than LookupNetIP
	// (which converts its answer twice), for the same records, and its
	// answer is dialed as LookupNetIP's would be.
	srv, err := dnstest.Start()
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	srv.SetAddrs("dual.example", time.Hour, netip.MustParseAddr(v6a), netip.MustParseAddr(v4a), netip.MustParseAddr(v6b))
	srv.SetAddrs("unspecified.example", time.Hour, netip.IPv6Unspecified())
	res := srv.Resolver()

	for _, tc := range []struct {
		network, lookup, host string
		a, aaaa               int // queries for A and AAAA records
		n                     int // addresses dialed
	}{
		{"tcp", "ip", "dual.example", 1, 1, 3},
		{"tcp4", "ip4", "dual.example", 1, 0, 1},
		{"tcp6", "ip6", "dual.example", 0, 1, 2},
		// As net does (go.dev/issue/18806): "::" alone is dialed at
		// 0.0.0.0 too.
		{"tcp", "ip", "unspecified.example", 1, 1, 2},
	} {
		t.Run(tc.network+" "+tc.host, func(t *testing.T) {
			ips, err := res.LookupNetIP(context.Background(), tc.lookup, tc.host)
			require.NoError(t, err)
			var want []netip.AddrPort
			for _, ip := range ips {
				want = append(want, netip.AddrPortFrom(ip.Unmap(), 80))
			}
			want = dialer.Interleave(want)
			var wantStrings []string
			for _, a := range want {
				wantStrings = append(wantStrings, a.String())
			}

			srv.ResetCounters()
			var at attempts
			d, err := dialer.NewWithDial(at.refuseAll, dialer.Resolver(res), dialer.FallbackDelay(time.Hour))
			require.NoError(t, err)
			_, err = d.DialContext(context.Background(), tc.network, net.JoinHostPort(tc.host, "80"))
			require.Error(t, err)
			assert.Equal(t, wantStrings, at.list(), "LookupNetIP's answer, interleaved")
			assert.Len(t, at.list(), tc.n)
			assert.Equal(t, tc.a, srv.Queries(tc.host, dnsmessage.TypeA), "A queries")
			assert.Equal(t, tc.aaaa, srv.Queries(tc.host, dnsmessage.TypeAAAA), "AAAA queries")
		})
	}
}
