package sockopt

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestENOPROTOOPTOnAnMPTCPSocketGetsAHintAboutMPTCP bypasses the SO_PROTOCOL
// check that normally stops TCP-only options before the kernel sees them.
func TestENOPROTOOPTOnAnMPTCPSocketGetsAHintAboutMPTCP(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, ipprotoMPTCP)
	if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EINVAL) {
		t.Skip("kernel without Multipath TCP")
	}
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	s := socket{fd: uintptr(fd)}
	err = s.set(UserTimeout(1000))
	assert.ErrorIs(t, err, unix.ENOPROTOOPT)
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.Contains(t, se.Hint, "Multipath TCP")
	assert.Contains(t, se.Hint, "SetMultipathTCP(false)")
	_, err = s.checkMPTCP([]Option{UserTimeout(1000)}, forbidden(0))
	assert.ErrorIs(t, err, ErrMPTCP, "the pre-check stops it first")
}

func TestDeferAcceptEffectiveMatchesTheKernelSchedule(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	for _, secs := range []int{1, 2, 3, 5, 7, 8, 30, 100, 1000, 50000} {
		require.NoError(t, unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs))
		got, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
		require.NoError(t, err)
		assert.Equal(t, got, int(deferAcceptEffective(time.Duration(secs)*time.Second)/time.Second), "%ds", secs)
	}
}
