package sockopt_test

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/sockopt"
)

// The kernel's RTT is checked against round trips timed in user space on
// the same connection, an independent measurement:
//
//   - every kernel RTT sample of the dialing side is the time from sending
//     a segment to the ACK that covers it; the ACK arrives no later than
//     the reply that user space waits for (it is piggybacked on it, or
//     sent before it), and the handshake's sample lies within Dial. So
//     each sample is at most one user-space round trip (or the Dial), and
//     the smoothed RTT, an average of samples, is at most the longest.
//   - MinRTT, the smallest sample, is at most the user-space median.
//   - the kernel counts at least 1µs.
//
// A unit mistake (milliseconds read as microseconds: 1000× too long, or
// nanoseconds: 1000× too short) breaks these bounds, while the bounds
// hold however loaded the machine is.
func TestTCPInfoRTTIsBoundedByRoundTripsTimedInUserSpace(t *testing.T) {
	ln := listenTCP(t, false)
	d := net.Dialer{}
	d.SetMultipathTCP(false)
	start := time.Now()
	conn, err := d.Dial("tcp4", ln.Addr().String())
	dial := time.Since(start)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	c := conn.(*net.TCPConn)
	require.NoError(t, ln.SetDeadline(time.Now().Add(30*time.Second)))
	a, err := ln.AcceptTCP()
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })

	served := make(chan error, 1)
	go func() { _, err := io.Copy(a, a); served <- err }()
	require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
	const rounds = 200
	rtts := make([]time.Duration, 0, rounds)
	buf := make([]byte, 64)
	for range rounds {
		t0 := time.Now()
		_, err := c.Write(buf)
		require.NoError(t, err)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		rtts = append(rtts, time.Since(t0))
	}
	ti, err := sockopt.ReadTCPInfo(c)
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the echo goroutine did not end within 30s of the client's FIN")
	}

	slices.Sort(rtts)
	p50, longest := rtts[len(rtts)/2], max(rtts[len(rtts)-1], dial)
	t.Logf("kernel: RTT %v, MinRTT %v, RTTVar %v; user space: p50 %v, max %v (dial %v)", ti.RTT, ti.MinRTT, ti.RTTVar, p50, longest, dial)
	const slack = 10 * time.Microsecond // the kernel rounds down; clocks are read a little apart
	assert.GreaterOrEqual(t, ti.RTT, time.Microsecond, "the kernel's RTT is at least 1µs")
	assert.LessOrEqual(t, ti.RTT, longest+slack, "the smoothed RTT averages samples each within one user-space round trip")
	assert.GreaterOrEqual(t, ti.MinRTT, time.Microsecond, "the kernel's MinRTT is at least 1µs")
	assert.LessOrEqual(t, ti.MinRTT, p50+slack, "the smallest kernel sample is within the user-space median")
	assert.LessOrEqual(t, ti.MinRTT, ti.RTT, "MinRTT is at most the smoothed RTT")
}

func TestReadTCPInfoAllocatesNothingOnATCPConn(t *testing.T) {
	ln := listenTCP(t, false)
	c, _ := connPair(t, ln, false)
	if _, err := sockopt.ReadTCPInfo(c); err != nil {
		t.Fatal(err)
	}
	var err error
	allocs := testing.AllocsPerRun(100, func() { _, err = sockopt.ReadTCPInfo(c) })
	require.NoError(t, err)
	assert.Zero(t, allocs, "allocations per ReadTCPInfo of a *net.TCPConn")
}
