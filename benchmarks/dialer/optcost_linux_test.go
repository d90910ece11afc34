//go:build linux

package dialerbench

import (
	"net"
	"syscall"
	"testing"

	"github.com/nettune/nettune/sockopt"
)

// Linux option numbers the syscall package lacks (x/sys/unix has them,
// but this module does not depend on it directly).
const (
	tcpUserTimeout  = 0x12 // TCP_USER_TIMEOUT
	tcpNotSentLowat = 0x19 // TCP_NOTSENT_LOWAT
)

// setTypicalByHand sets the typical options with raw setsockopt calls in
// one RawConn.Control: what a hand-written net.Dialer.Control does.
func setTypicalByHand(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, o := range [][3]int{
			{syscall.IPPROTO_TCP, tcpUserTimeout, 110000},
			{syscall.SOL_SOCKET, syscall.SO_RCVBUF, 256 << 10},
			{syscall.SOL_SOCKET, syscall.SO_SNDBUF, 256 << 10},
			{syscall.IPPROTO_TCP, tcpNotSentLowat, 16 << 10},
		} {
			if serr = syscall.SetsockoptInt(int(fd), o[0], o[1], o[2]); serr != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// BenchmarkOptionCost is the cost of setting the typical options on one
// socket, which is what they add to every dial, measured on a connected
// socket so that the noise of connects (tens of microseconds on a loaded
// machine) does not drown it. impl=syscall is four raw setsockopt calls;
// impl=nettune is sockopt.Apply, which also validates the set and, since
// TCP_USER_TIMEOUT is TCP-only, reads SO_PROTOCOL once to refuse a
// Multipath TCP socket.
func BenchmarkOptionCost(b *testing.B) {
	ln := server(b, "tcp4", "127.0.0.1:0")
	var nd net.Dialer
	nd.SetMultipathTCP(false)
	c, err := nd.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	b.Run("set=typical/impl=syscall", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := setTypicalByHand(tc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("set=typical/impl=nettune", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := sockopt.Apply(tc, typical...); err != nil {
				b.Fatal(err)
			}
		}
	})
}
