package sockopt

import (
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func readTCPInfo(fd uintptr) (TCPInfo, error) {
	// Not unix.GetsockoptTCPInfo: it returns a pointer, so the struct
	// would be allocated on every call.
	var k unix.TCPInfo
	ki := &k
	n := uint32(unix.SizeofTCPInfo)
	if err := getsockopt(fd, unix.IPPROTO_TCP, unix.TCP_INFO, unsafe.Pointer(ki), &n); err != nil {
		return TCPInfo{}, &Error{Option: tcpInfoOption{}, Op: "getsockopt", Err: os.NewSyscallError("getsockopt", err)}
	}
	// unix.TCPInfo leaves out the two bit-field bytes that follow
	// tcpi_options: snd_wscale:4 rcv_wscale:4, then
	// delivery_rate_app_limited:1 fastopen_client_fail:2.
	raw := (*[8]byte)(unsafe.Pointer(ki))
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	ms := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
	return TCPInfo{
		State:                  TCPState(ki.State),
		CAState:                CongestionState(ki.Ca_state),
		Options:                TCPOptions(ki.Options),
		SendWScale:             int(raw[6] & 0x0f),
		RecvWScale:             int(raw[6] >> 4),
		DeliveryRateAppLimited: raw[7]&1 != 0,
		Retransmits:            int(ki.Retransmits),
		Probes:                 int(ki.Probes),
		Backoff:                int(ki.Backoff),
		RTO:                    us(ki.Rto),
		ATO:                    us(ki.Ato),
		RTT:                    us(ki.Rtt),
		RTTVar:                 us(ki.Rttvar),
		MinRTT:                 us(ki.Min_rtt),
		RecvRTT:                us(ki.Rcv_rtt),
		SendMSS:                int(ki.Snd_mss),
		RecvMSS:                int(ki.Rcv_mss),
		AdvMSS:                 int(ki.Advmss),
		PathMTU:                int(ki.Pmtu),
		Unacked:                int(ki.Unacked),
		Sacked:                 int(ki.Sacked),
		Lost:                   int(ki.Lost),
		Retrans:                int(ki.Retrans),
		Fackets:                int(ki.Fackets),
		LastDataSent:           ms(ki.Last_data_sent),
		LastDataRecv:           ms(ki.Last_data_recv),
		LastAckRecv:            ms(ki.Last_ack_recv),
		SendSsthresh:           int(ki.Snd_ssthresh),
		SendCwnd:               int(ki.Snd_cwnd),
		RecvSsthresh:           int(ki.Rcv_ssthresh),
		RecvSpace:              int(ki.Rcv_space),
		Reordering:             int(ki.Reordering),
		SendWnd:                int(ki.Snd_wnd),
		RecvWnd:                int(ki.Rcv_wnd),
		TotalRetrans:           int(ki.Total_retrans),
		TotalRTO:               int(ki.Total_rto),
		TotalRTORecoveries:     int(ki.Total_rto_recoveries),
		TotalRTOTime:           ms(ki.Total_rto_time),
		PacingRate:             ki.Pacing_rate,
		MaxPacingRate:          ki.Max_pacing_rate,
		DeliveryRate:           ki.Delivery_rate,
		BytesSent:              ki.Bytes_sent,
		BytesRetrans:           ki.Bytes_retrans,
		BytesAcked:             ki.Bytes_acked,
		BytesReceived:          ki.Bytes_received,
		NotSentBytes:           int(ki.Notsent_bytes),
		SegsOut:                uint64(ki.Segs_out),
		SegsIn:                 uint64(ki.Segs_in),
		DataSegsOut:            uint64(ki.Data_segs_out),
		DataSegsIn:             uint64(ki.Data_segs_in),
		Delivered:              uint64(ki.Delivered),
		DeliveredCE:            uint64(ki.Delivered_ce),
		DSackDups:              uint64(ki.Dsack_dups),
		ReordSeen:              uint64(ki.Reord_seen),
		RecvOOOPack:            uint64(ki.Rcv_ooopack),
		Rehash:                 uint64(ki.Rehash),
		BusyTime:               time.Duration(ki.Busy_time) * time.Microsecond,
		RwndLimited:            time.Duration(ki.Rwnd_limited) * time.Microsecond,
		SndbufLimited:          time.Duration(ki.Sndbuf_limited) * time.Microsecond,
	}, nil
}
