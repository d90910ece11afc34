package sockopt_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/nettune/nettune/sockopt"
)

func TestBufferForSizesTheBufferToTheBandwidthDelayProduct(t *testing.T) {
	sys := &sockopt.System{RmemMax: 4 << 20, WmemMax: 4 << 20}
	a := sockopt.BufferFor(60*time.Millisecond, 100e6, sys)
	assert.Equal(t, 750_000, a.BDP, "100 Mbit/s × 60 ms = 750 kB")
	assert.Equal(t, 937_500, a.Size, "the BDP and a quarter for the RTT's variation")
	assert.Equal(t, 8<<20, a.Limit, "the kernel holds at most twice rmem_max")
	assert.False(t, a.Clamped)
	assert.Contains(t, a.String(), "ask for 937500 bytes")
	assert.Contains(t, a.String(), "autotuning off", "the caveat of a set size")
}

func TestBufferForSaysWhenThisHostWouldClampTheBuffer(t *testing.T) {
	// 1 Gbit/s × 150 ms = 18.75 MB, above twice a 4 MiB rmem_max.
	a := sockopt.BufferFor(150*time.Millisecond, 1e9, &sockopt.System{RmemMax: 4 << 20, WmemMax: 8 << 20})
	assert.True(t, a.Clamped)
	assert.Equal(t, 8<<20, a.Limit, "the smaller of rmem_max and wmem_max, doubled")
	assert.Contains(t, a.String(), "raise net.core.rmem_max")
}

func TestBufferForWithoutAPathOrLimitsSaysWhatIsUnknown(t *testing.T) {
	assert.Zero(t, sockopt.BufferFor(0, 100e6, nil).Size, "no RTT: no BDP")
	assert.Zero(t, sockopt.BufferFor(time.Second, 0, nil).Size, "no rate: no BDP")
	assert.Contains(t, sockopt.BufferFor(0, 0, nil).String(), "unknown")
	a := sockopt.BufferFor(10*time.Millisecond, 8e6, nil)
	assert.Equal(t, 10_000, a.BDP)
	assert.Zero(t, a.Limit)
	assert.False(t, a.Clamped)
	assert.Contains(t, a.String(), "limit is unknown")
}

func TestBufferForSaysWhetherAutotuningReachesTheBDP(t *testing.T) {
	// tcp_rmem[2] 6 MiB, tcp_wmem[2] 4 MiB: autotuning grows a buffer to
	// 4 MiB, about 2 MiB of window.
	sys := &sockopt.System{RmemMax: 16 << 20, WmemMax: 16 << 20,
		TCPRmem: [3]int{4096, 131072, 6 << 20}, TCPWmem: [3]int{4096, 16384, 4 << 20}}

	// 100 Mbit/s × 60 ms: 750 kB of BDP, 937.5 kB asked, 1.875 MB of buffer.
	a := sockopt.BufferFor(60*time.Millisecond, 100e6, sys)
	assert.Equal(t, 4<<20, a.AutotuneLimit, "the smaller of tcp_rmem[2] and tcp_wmem[2]")
	assert.True(t, a.Autotuned, "2 × 937500 fits under 4 MiB")
	assert.Contains(t, a.String(), "autotuning reaches it")
	assert.Contains(t, a.String(), "leave the buffer sizes unset")
	assert.NotContains(t, a.String(), "ask for")

	// 1 Gbit/s × 60 ms: 7.5 MB of BDP, beyond autotuning, within 2 × rmem_max.
	a = sockopt.BufferFor(60*time.Millisecond, 1e9, sys)
	assert.False(t, a.Autotuned)
	assert.False(t, a.Clamped, "2 × 9375000 fits under 2 × 16 MiB")
	assert.Equal(t, 9_375_000, a.Size)
	assert.Contains(t, a.String(), "ask for 9375000 bytes")
	assert.Contains(t, a.String(), "autotuning stops at 4194304 bytes")
	assert.Contains(t, a.String(), "only a set size reaches the link rate")
	assert.Contains(t, a.String(), "within this host's limit of 33554432 bytes")

	// Unknown tcp_rmem/tcp_wmem: nothing said of autotuning.
	a = sockopt.BufferFor(60*time.Millisecond, 100e6, &sockopt.System{RmemMax: 4 << 20, WmemMax: 4 << 20})
	assert.Zero(t, a.AutotuneLimit)
	assert.False(t, a.Autotuned)
	assert.NotContains(t, a.String(), "autotuning stops")
}
