//go:build linux

package dialerbench

import (
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/nettune/nettune/sockopt"
	"golang.org/x/sys/unix"
)

// setTypicalByHand sets the typical options with raw setsockopt calls in
// one RawConn.Control: what a hand-written net.Dialer.Control does.
func setTypicalByHand(c syscall.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, o := range [][3]int{
			{syscall.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 110000},
			{syscall.SOL_SOCKET, syscall.SO_RCVBUF, 256 << 10},
			{syscall.SOL_SOCKET, syscall.SO_SNDBUF, 256 << 10},
			{syscall.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 16 << 10},
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
// socket, which is what they add to every dial, measured without connects
// so that their noise (tens of microseconds on a loaded machine) does not
// drown it. state=fresh is a new, unconnected socket, where a dialer's
// Control sets them; state=connected is an established connection, where
// setting buffer sizes costs more. impl=syscall is four raw setsockopt
// calls; impl=nettune is the sockopt.DialControl function a Dialer runs
// on every socket, which (since TCP_USER_TIMEOUT is TCP-only) also reads
// SO_PROTOCOL once to refuse a Multipath TCP socket.
func BenchmarkOptionCost(b *testing.B) {
	ln := server(b, "tcp4", "127.0.0.1:0")
	var nd net.Dialer
	nd.SetMultipathTCP(false)
	c, err := nd.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		b.Fatal(err)
	}
	fresh := os.NewFile(uintptr(fd), "fresh socket")
	defer fresh.Close()

	for _, s := range []struct {
		state string
		conn  syscall.Conn
	}{{"fresh", fresh}, {"connected", c.(*net.TCPConn)}} {
		b.Run("state="+s.state+"/impl=syscall", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := setTypicalByHand(s.conn); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("state="+s.state+"/impl=nettune", func(b *testing.B) {
			control := sockopt.DialControl(typical...) // what a Dialer runs per dial
			rc, err := s.conn.SyscallConn()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := control("tcp4", "127.0.0.1:1", rc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
