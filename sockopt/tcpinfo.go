package sockopt

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// TCPInfo is the kernel's view of a live TCP connection: Linux TCP_INFO in
// Go types. Durations are time.Duration, sizes are bytes, rates are bytes
// per second, and windows counted by the kernel in segments say so.
//
// On Linux every field is filled (fields a kernel is too old to report
// stay zero). On darwin, from TCP_CONNECTION_INFO, only State, Options,
// SendWScale, RecvWScale, RTO, SendMSS, SendSsthresh, SendCwnd, SendWnd,
// RecvWnd, RTT, RTTVar, TotalRetrans, BytesSent, BytesRetrans,
// BytesReceived, SegsOut and SegsIn. Elsewhere [ReadTCPInfo] fails with
// errors.ErrUnsupported.
//
// A TCPInfo is a plain value.
type TCPInfo struct {
	State   TCPState
	CAState CongestionState
	// Options are the TCP options negotiated in the handshake.
	Options TCPOptions
	// SendWScale and RecvWScale are the window scale shifts.
	SendWScale, RecvWScale int
	// DeliveryRateAppLimited is set when DeliveryRate was measured while
	// the application, not the network, limited sending.
	DeliveryRateAppLimited bool

	Retransmits int // retransmissions of the oldest unacknowledged segment
	Probes      int // unanswered zero-window or keepalive probes
	Backoff     int // RTO backoff exponent

	RTO    time.Duration // retransmission timeout
	ATO    time.Duration // delayed-ACK timeout
	RTT    time.Duration // smoothed round-trip time
	RTTVar time.Duration // round-trip time variance
	MinRTT time.Duration // lowest RTT seen (windowed)
	// RecvRTT is the receiver's RTT estimate, used for autotuning.
	RecvRTT time.Duration

	SendMSS int // bytes
	RecvMSS int // bytes
	AdvMSS  int // bytes advertised
	PathMTU int // bytes

	Unacked int // segments sent and not yet acknowledged
	Sacked  int // segments selectively acknowledged
	Lost    int // segments presumed lost
	Retrans int // segments retransmitted and not yet acknowledged
	Fackets int

	LastDataSent time.Duration // since the last data segment was sent
	LastDataRecv time.Duration // since the last data segment was received
	LastAckRecv  time.Duration // since the last ACK was received

	SendSsthresh int // slow-start threshold, in segments
	SendCwnd     int // congestion window, in segments
	RecvSsthresh int // bytes
	RecvSpace    int // bytes: receive buffer autotuning target
	Reordering   int // reordering metric, in segments
	SendWnd      int // bytes: peer's advertised window
	RecvWnd      int // bytes: window this side advertises

	TotalRetrans       int // segments retransmitted over the connection's life
	TotalRTO           int // retransmission timeouts
	TotalRTORecoveries int
	TotalRTOTime       time.Duration // time spent in RTO recovery

	PacingRate    uint64 // bytes per second
	MaxPacingRate uint64 // bytes per second (SO_MAX_PACING_RATE)
	DeliveryRate  uint64 // bytes per second, most recent sample

	BytesSent     uint64 // including retransmissions
	BytesRetrans  uint64
	BytesAcked    uint64
	BytesReceived uint64
	NotSentBytes  int // written but not yet sent

	SegsOut     uint64
	SegsIn      uint64
	DataSegsOut uint64
	DataSegsIn  uint64
	Delivered   uint64 // segments delivered
	DeliveredCE uint64 // of which marked CE
	DSackDups   uint64
	ReordSeen   uint64
	RecvOOOPack uint64 // out-of-order packets received
	Rehash      uint64

	BusyTime      time.Duration // time with unacknowledged data in flight
	RwndLimited   time.Duration // time limited by the peer's receive window
	SndbufLimited time.Duration // time limited by the send buffer
}

// ReadTCPInfo reads TCP_INFO (darwin: TCP_CONNECTION_INFO) from a live TCP
// connection c: a *net.TCPConn, or any conn [Apply] accepts (a *tls.Conn
// over TCP, a syscall.Conn). It is cheap enough to sample periodically:
// one getsockopt, and on Linux no allocation when c is a *net.TCPConn
// (through any other type, Go's syscall.RawConn and the function handed to
// it cost a few).
func ReadTCPInfo(c any) (TCPInfo, error) {
	if tc, ok := c.(*net.TCPConn); ok {
		// With the concrete type the compiler sees through SyscallConn
		// and Control, and keeps the RawConn, the closure and what it
		// writes to on the stack.
		rc, err := tc.SyscallConn()
		if err != nil {
			return TCPInfo{}, fmt.Errorf("sockopt: %w", err)
		}
		var ti TCPInfo
		cerr := rc.Control(func(fd uintptr) { ti, err = readTCPInfo(fd) })
		return tcpInfoResult(ti, err, cerr)
	}
	rc, err := rawConnOf(c)
	if err != nil {
		return TCPInfo{}, err
	}
	var ti TCPInfo
	cerr := rc.Control(func(fd uintptr) { ti, err = readTCPInfo(fd) })
	return tcpInfoResult(ti, err, cerr)
}

// tcpInfoResult is what ReadTCPInfo returns after Control: the error of
// Control, else the error of the read, else ti.
func tcpInfoResult(ti TCPInfo, err, cerr error) (TCPInfo, error) {
	if cerr != nil {
		return TCPInfo{}, fmt.Errorf("sockopt: %w", cerr)
	}
	if err != nil {
		return TCPInfo{}, err
	}
	return ti, nil
}

// TCPState is the state of a TCP connection, numbered as Linux does.
type TCPState uint8

// TCP states.
const (
	StateEstablished TCPState = iota + 1
	StateSynSent
	StateSynRecv
	StateFinWait1
	StateFinWait2
	StateTimeWait
	StateClose
	StateCloseWait
	StateLastAck
	StateListen
	StateClosing
)

var stateNames = [...]string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}

// String returns the state as netstat prints it, such as "ESTABLISHED".
func (s TCPState) String() string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return "TCPState(" + strconv.Itoa(int(s)) + ")"
}

// CongestionState is the sender's congestion-avoidance state (Linux
// tcpi_ca_state).
type CongestionState uint8

// Congestion states.
const (
	CAOpen CongestionState = iota
	CADisorder
	CACWR
	CARecovery
	CALoss
)

// String returns the state in lower case, such as "recovery".
func (s CongestionState) String() string {
	switch s {
	case CAOpen:
		return "open"
	case CADisorder:
		return "disorder"
	case CACWR:
		return "cwr"
	case CARecovery:
		return "recovery"
	case CALoss:
		return "loss"
	}
	return "CongestionState(" + strconv.Itoa(int(s)) + ")"
}

// TCPOptions is the set of TCP options a connection negotiated.
type TCPOptions uint8

// TCP options, as Linux numbers them in tcpi_options.
const (
	OptTimestamps  TCPOptions = 1 << iota // RFC 7323 timestamps
	OptSACK                               // selective acknowledgements
	OptWindowScale                        // window scaling
	OptECN                                // ECN negotiated
	OptECNSeen                            // at least one ECT packet received
	OptSYNData                            // SYN carried data (Fast Open)
	OptUsecTS                             // microsecond timestamps
)

// String lists the options, comma-separated, or "none".
func (o TCPOptions) String() string {
	names := []string{"timestamps", "sack", "wscale", "ecn", "ecn-seen", "syn-data", "usec-ts"}
	var parts []string
	for i, n := range names {
		if o&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if rest := o &^ (1<<len(names) - 1); rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint8(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// tcpInfoOption names TCP_INFO in errors. It is not an option one can set:
// Validate refuses it and no set or get case matches it.
type tcpInfoOption struct{}

func (tcpInfoOption) Name() string   { return "TCP_INFO" }
func (tcpInfoOption) String() string { return "TCP_INFO" }
func (o tcpInfoOption) Validate() error {
	return invalid(o, "is read-only")
}
func (tcpInfoOption) info() info { return info{} }
