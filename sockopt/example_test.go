package sockopt_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"testing/fstest"
	"time"

	"github.com/nettune/nettune/sockopt"
)

// Options print as the kernel names them, with Go values.
func ExampleOption() {
	opts := []sockopt.Option{
		sockopt.UserTimeout(30 * time.Second),
		sockopt.ReceiveBuffer(1 << 20),
		sockopt.Congestion("bbr"),
		sockopt.TOS(0xb8),
		sockopt.LingerOff,
	}
	for _, o := range opts {
		fmt.Println(o)
	}
	// Output:
	// TCP_USER_TIMEOUT=30s
	// SO_RCVBUF=1048576
	// TCP_CONGESTION=bbr
	// IP_TOS=0xb8
	// SO_LINGER=off
}

// Bad values are caught before any socket exists, naming option and limit.
func ExampleValidate() {
	err := sockopt.Validate(
		sockopt.NoDelay(true),
		sockopt.KeepAliveIdle(1500*time.Millisecond),
	)
	fmt.Println(err)
	var se *sockopt.Error
	fmt.Println(errors.As(err, &se), se.Option.Name())
	// Output:
	// sockopt TCP_KEEPIDLE=1.5s: must be a whole number of seconds (the kernel counts seconds)
	// true TCP_KEEPIDLE
}

// DialControl goes into net.Dialer; options Go would overwrite after
// connect (AfterConnect) are applied to the conn instead.
func ExampleDialControl() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	d := net.Dialer{Control: sockopt.DialControl(
		sockopt.ReceiveBuffer(256<<10),
		sockopt.SendBuffer(256<<10),
	)}
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if err := sockopt.Apply(conn, sockopt.KeepAliveIdle(30*time.Second)); err != nil {
		log.Fatal(err)
	}
	got, err := sockopt.Get(conn, sockopt.KeepAliveIdle(0))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got)
	// Output: TCP_KEEPIDLE=30s
}

// System.Explain predicts, from sysctls and capabilities alone, what the
// host will do. ReadSystem reads this host; ReadSystemFS reads any root.
func ExampleSystem_Explain() {
	host := fstest.MapFS{
		"proc/sys/net/core/rmem_max":     {Data: []byte("4194304\n")},
		"proc/sys/net/ipv4/tcp_fastopen": {Data: []byte("1\n")},
		"proc/self/status":               {Data: []byte("CapEff:\t0000000000000000\n")},
	}
	sys, err := sockopt.ReadSystemFS(host)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(sys.Explain(
		sockopt.ReceiveBuffer(16<<20),
		sockopt.FastOpen(64),
		sockopt.Mark(42),
	))
	// Output:
	// OPTION              VERDICT  REASON
	// SO_RCVBUF=16777216  clamped  net.core.rmem_max is 4194304: the kernel keeps 2×4194304 = 8388608 instead of 2×16777216 (ReceiveBufferForce needs CAP_NET_ADMIN)
	// TCP_FASTOPEN=64     ignored  net.ipv4.tcp_fastopen is 1, without bit 2 (server): SYN data is not accepted, connections fall back to a normal handshake
	// SO_MARK=42          refused  needs CAP_NET_ADMIN or CAP_NET_RAW, which the process does not have (EPERM)
}

// System.ExplainFor knows the socket: here a dialer with Multipath TCP off
// (Go's default for dialers), so the options that MPTCP would refuse are
// fine, while a listening socket ignores TCP_FASTOPEN_CONNECT.
func ExampleSystem_ExplainFor() {
	host := fstest.MapFS{
		"proc/sys/net/mptcp/enabled":     {Data: []byte("1\n")},
		"proc/sys/net/ipv4/tcp_fastopen": {Data: []byte("1\n")},
	}
	sys, err := sockopt.ReadSystemFS(host)
	if err != nil {
		log.Fatal(err)
	}
	var d net.Dialer
	opts := []sockopt.Option{sockopt.UserTimeout(5 * time.Second), sockopt.FastOpenConnect(true)}
	fmt.Print(sys.ExplainFor(sockopt.Dialing, d.MultipathTCP(), opts...))
	fmt.Print(sys.ExplainFor(sockopt.Listening, true, opts...))
	// Output:
	// no option is clamped, refused or ignored by this host
	// OPTION                     VERDICT  REASON
	// TCP_USER_TIMEOUT=5s        caveat   the socket is Multipath TCP, which refuses it: sockopt's Control fails with ErrMPTCP and Go retries the dial or listen with plain TCP, Apply fails with ErrMPTCP; SetMultipathTCP(false) avoids both
	// TCP_FASTOPEN_CONNECT=true  ignored  TCP_FASTOPEN_CONNECT has no effect on a listening socket
}

// ReadTCPInfo samples the kernel's view of a live connection.
func ExampleReadTCPInfo() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ti, err := sockopt.ReadTCPInfo(conn)
	if errors.Is(err, errors.ErrUnsupported) {
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ti.State, ti.RTT < time.Second)
	// Output: ESTABLISHED true
}
