package sockopt_test

import (
	"fmt"
	"log"
	"net"

	"golang.org/x/sys/unix"

	"github.com/nettune/nettune/sockopt"
)

// Verify reads options back and says why the kernel holds something else:
// here Linux doubles the buffer size and strips the ECN bits of the TOS
// byte, both documented equivalents of what was asked.
func ExampleVerify() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: sockopt.DialControl(sockopt.ReceiveBuffer(64<<10), sockopt.TOS(0x13))}
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	rep, err := sockopt.Verify(conn, sockopt.ReceiveBuffer(64<<10), sockopt.TOS(0x13))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(rep)
	fmt.Println("all applied:", rep.OK())
	// Output:
	// OPTION     ASKED  GOT     VERDICT   WHY
	// SO_RCVBUF  65536  131072  adjusted  the kernel doubles the value to leave room for its bookkeeping
	// IP_TOS     0x13   0x10    adjusted  TCP manages the ECN bits itself and strips them
	// all applied: true
}

// RawInt sets an option this package has no type for, here IP_FREEBIND,
// and keeps what the typed options have: validation, errors naming the
// option, read-back, and a printed form that Parse reads.
func ExampleRawInt() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	freebind := sockopt.RawInt(unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
	d := net.Dialer{Control: sockopt.DialControl(freebind)}
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	got, err := sockopt.Get(conn, freebind)
	if err != nil {
		log.Fatal(err)
	}
	v, _ := got.Int()
	fmt.Println(freebind, "reads back as", v)

	// TCP_SYNCNT=3, as a flag or a configuration file would give it.
	o, err := sockopt.Parse("RAW(level=6,name=7)=3")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(o == sockopt.RawInt(unix.IPPROTO_TCP, unix.TCP_SYNCNT, 3))
	// Output:
	// RAW(level=0,name=15)=1 reads back as 1
	// true
}
