package sockopt_test

import (
	"fmt"
	"log"
	"net"

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
	rep, err := sockopt.Verify(conn.(*net.TCPConn), sockopt.ReceiveBuffer(64<<10), sockopt.TOS(0x13))
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
