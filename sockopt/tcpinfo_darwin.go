package sockopt

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// darwinStates maps darwin's TCPS_* numbers to TCPState.
var darwinStates = [...]TCPState{StateClose, StateListen, StateSynSent, StateSynRecv,
	StateEstablished, StateCloseWait, StateFinWait1, StateClosing, StateLastAck,
	StateFinWait2, StateTimeWait}

func readTCPInfo(fd uintptr) (TCPInfo, error) {
	ci, err := unix.GetsockoptTCPConnectionInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_CONNECTION_INFO)
	if err != nil {
		return TCPInfo{}, &Error{Option: tcpInfoOption{}, Op: "getsockopt", Err: os.NewSyscallError("getsockopt", err)}
	}
	var st TCPState
	if int(ci.State) < len(darwinStates) {
		st = darwinStates[ci.State]
	}
	mss := int(ci.Maxseg)
	segs := func(bytes uint32) int {
		if mss == 0 {
			return 0
		}
		return int(bytes) / mss
	}
	ms := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
	return TCPInfo{
		State:         st,
		Options:       TCPOptions(ci.Options & 0x0f),
		SendWScale:    int(ci.Snd_wscale),
		RecvWScale:    int(ci.Rcv_wscale),
		RTO:           ms(ci.Rto),
		SendMSS:       mss,
		SendSsthresh:  segs(ci.Snd_ssthresh),
		SendCwnd:      segs(ci.Snd_cwnd),
		SendWnd:       int(ci.Snd_wnd),
		RecvWnd:       int(ci.Rcv_wnd),
		RTT:           ms(ci.Srtt),
		RTTVar:        ms(ci.Rttvar),
		TotalRetrans:  int(ci.Txretransmitpackets),
		BytesSent:     ci.Txbytes,
		BytesRetrans:  ci.Txretransmitbytes,
		BytesReceived: ci.Rxbytes,
		SegsOut:       ci.Txpackets,
		SegsIn:        ci.Rxpackets,
	}, nil
}
