package sockopt_test

import (
	"errors"
	"io/fs"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nettune/nettune/sockopt"
)

// fakeHost is a /proc and /sys laid out for ReadSystemFS. capEff is the
// CapEff line of /proc/self/status.
func fakeHost(capEff string, sysctls map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{
		"proc/self/status":   {Data: []byte("Name:\tnettune\nCapInh:\t0000000000000000\nCapEff:\t" + capEff + "\n")},
		"sys/class/net/lo":   {Mode: fs.ModeDir},
		"sys/class/net/eth0": {Mode: fs.ModeDir},
		"proc/net/netstat": {Data: []byte("TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPFastOpenActive\n" +
			"TcpExt: 0 17 21 3\nIpExt: InNoRoutes\nIpExt: 0\n")},
	}
	defaults := map[string]string{
		"net/core/rmem_max":                         "4194304",
		"net/core/wmem_max":                         "1048576",
		"net/core/rmem_default":                     "212992",
		"net/core/wmem_default":                     "212993",
		"net/ipv4/tcp_rmem":                         "4096\t131072\t6291456",
		"net/ipv4/tcp_wmem":                         "4096\t16384\t4194304",
		"net/ipv4/tcp_max_syn_backlog":              "512",
		"net/ipv4/tcp_congestion_control":           "cubic",
		"net/core/default_qdisc":                    "fq_codel",
		"net/core/somaxconn":                        "4096",
		"net/core/busy_poll":                        "0",
		"net/ipv4/tcp_fastopen":                     "1",
		"net/ipv4/tcp_available_congestion_control": "reno bbr cubic",
		"net/ipv4/tcp_allowed_congestion_control":   "reno bbr",
		"net/ipv4/tcp_migrate_req":                  "0",
		"net/mptcp/enabled":                         "1",
		"net/ipv4/tcp_keepalive_time":               "7200",
		"net/ipv4/tcp_keepalive_intvl":              "75",
		"net/ipv4/tcp_keepalive_probes":             "9",
	}
	for k, v := range sysctls {
		defaults[k] = v
	}
	for k, v := range defaults {
		if v != "" {
			fsys["proc/sys/"+k] = &fstest.MapFile{Data: []byte(v + "\n")}
		}
	}
	return fsys
}

const (
	capsNone = "0000000000000000"
	capsRoot = "000001ffffffffff"
)

func TestReadSystemFSParsesEverySetting(t *testing.T) {
	sys, err := sockopt.ReadSystemFS(fakeHost(capsRoot, nil))
	require.NoError(t, err)
	assert.Equal(t, 4194304, sys.RmemMax)
	assert.Equal(t, 1048576, sys.WmemMax)
	assert.Equal(t, 4096, sys.Somaxconn)
	assert.Equal(t, 212992, sys.RmemDefault)
	assert.Equal(t, 212993, sys.WmemDefault)
	assert.Equal(t, [3]int{4096, 131072, 6291456}, sys.TCPRmem)
	assert.Equal(t, [3]int{4096, 16384, 4194304}, sys.TCPWmem)
	assert.Equal(t, 512, sys.TCPMaxSynBacklog)
	assert.Equal(t, "cubic", sys.DefaultCongestion)
	assert.Equal(t, "fq_codel", sys.DefaultQdisc)
	assert.Equal(t, uint64(17), sys.ListenOverflows)
	assert.Equal(t, uint64(21), sys.ListenDrops)
	assert.Equal(t, 1, sys.FastOpen)
	assert.Equal(t, []string{"reno", "bbr", "cubic"}, sys.AvailableCongestion)
	assert.Equal(t, []string{"reno", "bbr"}, sys.AllowedCongestion)
	assert.False(t, sys.MigrateReq)
	assert.True(t, sys.MPTCPEnabled)
	assert.Equal(t, 2*time.Hour, sys.KeepAliveTime)
	assert.Equal(t, 75*time.Second, sys.KeepAliveInterval)
	assert.Equal(t, 9, sys.KeepAliveProbes)
	assert.True(t, sys.CapNetAdmin())
	assert.True(t, sys.CapNetRaw())
	assert.ElementsMatch(t, []string{"lo", "eth0"}, sys.Interfaces)
	assert.Empty(t, sys.Missing)
}

func TestReadSystemFSListsWhatItCouldNotRead(t *testing.T) {
	sys, err := sockopt.ReadSystemFS(fakeHost(capsNone, map[string]string{"net/mptcp/enabled": "", "net/core/somaxconn": "lots"}))
	require.NoError(t, err)
	assert.Contains(t, sys.Missing, "net.mptcp.enabled")
	assert.Contains(t, sys.Missing, "net.core.somaxconn", "an unparsable value is missing, not zero")
	_, err = sockopt.ReadSystemFS(fstest.MapFS{})
	assert.ErrorIs(t, err, fs.ErrNotExist, "an empty root is an error")
}

func TestReadSystemFSListsMalformedBufferAndQueueSettingsAsMissing(t *testing.T) {
	for name, tc := range map[string]struct {
		sysctls map[string]string
		netstat string // "" leaves the file out
		missing []string
	}{
		"tcp_rmem with two fields": {sysctls: map[string]string{"net/ipv4/tcp_rmem": "4096 131072"}, missing: []string{"net.ipv4.tcp_rmem"}},
		"tcp_wmem not a number":    {sysctls: map[string]string{"net/ipv4/tcp_wmem": "4096 lots 4194304"}, missing: []string{"net.ipv4.tcp_wmem"}},
		"rmem_default empty":       {sysctls: map[string]string{"net/core/rmem_default": ""}, missing: []string{"net.core.rmem_default"}},
		"qdisc blank":              {sysctls: map[string]string{"net/core/default_qdisc": " "}, missing: []string{"net.core.default_qdisc"}},
		"syn backlog not a number": {sysctls: map[string]string{"net/ipv4/tcp_max_syn_backlog": "x"}, missing: []string{"net.ipv4.tcp_max_syn_backlog"}},
		"no netstat":               {netstat: "-", missing: []string{"TcpExt.ListenOverflows", "TcpExt.ListenDrops"}},
		"netstat without values":   {netstat: "TcpExt: ListenOverflows ListenDrops\n", missing: []string{"TcpExt.ListenOverflows", "TcpExt.ListenDrops"}},
		"netstat values short":     {netstat: "TcpExt: ListenOverflows ListenDrops\nTcpExt: 5\n", missing: []string{"TcpExt.ListenOverflows", "TcpExt.ListenDrops"}},
		"netstat value negative":   {netstat: "TcpExt: ListenOverflows ListenDrops\nTcpExt: -5 7\n", missing: []string{"TcpExt.ListenOverflows"}},
		"netstat without counters": {netstat: "TcpExt: TW\nTcpExt: 5\n", missing: []string{"TcpExt.ListenOverflows", "TcpExt.ListenDrops"}},
		"netstat binary junk":      {netstat: "\x00\xffTcpExt:", missing: []string{"TcpExt.ListenOverflows", "TcpExt.ListenDrops"}},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := fakeHost(capsNone, tc.sysctls)
			switch tc.netstat {
			case "":
			case "-":
				delete(fsys, "proc/net/netstat")
			default:
				fsys["proc/net/netstat"] = &fstest.MapFile{Data: []byte(tc.netstat)}
			}
			sys, err := sockopt.ReadSystemFS(fsys)
			require.NoError(t, err, "a malformed setting is missing, not an error")
			assert.ElementsMatch(t, tc.missing, sys.Missing)
		})
	}
}

func TestExplainPredictsClampsRefusalsAndNoOps(t *testing.T) {
	unpriv, err := sockopt.ReadSystemFS(fakeHost(capsNone, nil))
	require.NoError(t, err)
	opts := []sockopt.Option{
		sockopt.ReceiveBuffer(8 << 20),       // > rmem_max: clamped
		sockopt.ReceiveBuffer(1 << 20),       // fine
		sockopt.SendBuffer(2 << 20),          // > wmem_max: clamped
		sockopt.ReceiveBufferForce(1 << 20),  // no CAP_NET_ADMIN: refused
		sockopt.Mark(1),                      // refused
		sockopt.Priority(7),                  // refused
		sockopt.Priority(6),                  // fine
		sockopt.FastOpen(16),                 // tcp_fastopen=1 lacks bit 2: ignored
		sockopt.FastOpenConnect(true),        // bit 1 set: fine
		sockopt.Congestion("cubic"),          // available, not allowed: refused
		sockopt.Congestion("vegas"),          // not available: refused
		sockopt.Congestion("bbr"),            // fine
		sockopt.DeferAccept(5 * time.Second), // adjusted to 7s
		sockopt.TOS(0x13),                    // adjusted
		sockopt.ReusePort(true),              // caveat: migrate_req 0
		sockopt.BindToDevice("wlan9"),        // no such interface
		sockopt.BindToDevice("eth0"),         // fine
		sockopt.UserTimeout(time.Second),     // caveat: MPTCP
	}
	got := map[string]sockopt.Verdict{}
	for _, f := range unpriv.Explain(opts...) {
		if _, dup := got[f.Option.String()]; !dup { // the first finding per option
			got[f.Option.String()] = f.Verdict
		}
	}
	want := map[string]sockopt.Verdict{
		"SO_RCVBUF=8388608":      sockopt.Clamped,
		"SO_SNDBUF=2097152":      sockopt.Clamped,
		"SO_RCVBUFFORCE=1048576": sockopt.Refused,
		"SO_MARK=1":              sockopt.Refused,
		"SO_PRIORITY=7":          sockopt.Refused,
		"TCP_FASTOPEN=16":        sockopt.Ignored,
		"TCP_CONGESTION=cubic":   sockopt.Refused,
		"TCP_CONGESTION=vegas":   sockopt.Refused,
		"TCP_DEFER_ACCEPT=5s":    sockopt.Adjusted,
		"IP_TOS=0x13":            sockopt.Adjusted,
		"SO_REUSEPORT=true":      sockopt.Caveat,
		"SO_BINDTODEVICE=wlan9":  sockopt.Refused,
		"TCP_USER_TIMEOUT=1s":    sockopt.Caveat,
	}
	assert.Equal(t, want, got)

	root, err := sockopt.ReadSystemFS(fakeHost(capsRoot, map[string]string{"net/ipv4/tcp_fastopen": "3", "net/ipv4/tcp_migrate_req": "1", "net/mptcp/enabled": "0"}))
	require.NoError(t, err)
	fs := root.Explain(sockopt.ReceiveBufferForce(1<<20), sockopt.Mark(1), sockopt.Congestion("cubic"),
		sockopt.FastOpen(16), sockopt.ReusePort(true), sockopt.UserTimeout(time.Second))
	assert.Empty(t, fs, "with CAP_NET_ADMIN, TFO on and tcp_migrate_req=1 nothing is refused: %s", fs)
}

func TestExplainSaysWhatDeferAcceptReadsBackAs(t *testing.T) {
	sys, err := sockopt.ReadSystemFS(fakeHost(capsRoot, nil))
	require.NoError(t, err)
	for secs, want := range map[int]string{5: "7s", 1: "", 3: "", 4: "7s", 8: "15s", 200: "4m7s"} {
		fs := sys.Explain(sockopt.DeferAccept(time.Duration(secs) * time.Second))
		if want == "" {
			assert.Empty(t, fs, "%ds is on the schedule", secs)
			continue
		}
		require.Len(t, fs, 1)
		assert.Contains(t, fs[0].Reason, "reads back as "+want, "%ds", secs)
	}
}

func TestReadSystemReadsThisHost(t *testing.T) {
	sys, err := sockopt.ReadSystem()
	if runtime.GOOS != "linux" {
		assert.ErrorIs(t, err, errors.ErrUnsupported)
		return
	}
	require.NoError(t, err)
	assert.Positive(t, sys.RmemMax)
	assert.Positive(t, sys.Somaxconn)
	assert.NotEmpty(t, sys.AvailableCongestion, "a Linux host has at least one congestion control")
	assert.Subset(t, sys.AvailableCongestion, sys.AllowedCongestion, "allowed names are available names")
	assert.Contains(t, sys.Interfaces, "lo")
	assert.NotContains(t, sys.Missing, "CapEff")
	t.Logf("this host:\n%s", sys.Explain(sockopt.ReceiveBuffer(16<<20), sockopt.FastOpen(16), sockopt.Congestion("cubic")))
}

func TestExplainPairsKeepaliveWithAUserTimeout(t *testing.T) {
	// tcp_keepalive_* = 7200s, 75s, 9; MPTCP off so that only keepalive findings remain.
	sys, err := sockopt.ReadSystemFS(fakeHost(capsRoot, map[string]string{"net/mptcp/enabled": "0"}))
	require.NoError(t, err)
	ka := []sockopt.Option{sockopt.KeepAliveIdle(30 * time.Second), sockopt.KeepAliveInterval(10 * time.Second), sockopt.KeepAliveCount(3)}

	fs := sys.Explain(ka...)
	require.Len(t, fs, 1, "%s", fs)
	assert.Equal(t, sockopt.KeepAliveIdle(30*time.Second), fs[0].Option)
	assert.Equal(t, sockopt.Caveat, fs[0].Verdict)
	assert.Contains(t, fs[0].Reason, "UserTimeout(1m0s)", "idle + interval × count = 30s + 3×10s")

	fs = sys.Explain(append(ka, sockopt.UserTimeout(20*time.Second))...)
	require.Len(t, fs, 1, "%s", fs)
	assert.Equal(t, sockopt.UserTimeout(20*time.Second), fs[0].Option)
	assert.Contains(t, fs[0].Reason, "ends keepalive early")

	assert.Empty(t, sys.Explain(append(ka, sockopt.UserTimeout(time.Minute))...), "a matching user timeout is the advice itself")
	assert.Empty(t, sys.Explain(sockopt.KeepAlive(false), sockopt.KeepAliveIdle(time.Minute)), "keepalive is off")

	fs = sys.Explain(sockopt.KeepAlive(true))
	require.Len(t, fs, 1)
	assert.Contains(t, fs[0].Reason, "UserTimeout(2h11m15s)", "the host defaults fill the missing timers: 7200s + 9×75s")
}

// mptcpFindings returns the findings that are about Multipath TCP.
func mptcpFindings(fs sockopt.Findings) sockopt.Findings {
	var out sockopt.Findings
	for _, f := range fs {
		if strings.Contains(f.Reason, "Multipath TCP") {
			out = append(out, f)
		}
	}
	return out
}

// The latencyprobe -target preflight: a dialer that turned Multipath TCP
// off (as nettune's dialer does for TCP-only options) got an MPTCP caveat
// for each of them from Explain, which does not know the socket.
func TestExplainForADialerWithMultipathTCPOffHasNoMPTCPCaveat(t *testing.T) {
	sys, err := sockopt.ReadSystemFS(fakeHost(capsNone, nil)) // net.mptcp.enabled=1
	require.NoError(t, err)
	opts := []sockopt.Option{sockopt.UserTimeout(5 * time.Second), sockopt.QuickAck(true), sockopt.TOS(0xb8),
		sockopt.NotSentLowat(16 << 10), sockopt.WindowClamp(65535)}
	require.NotEmpty(t, mptcpFindings(sys.Explain(opts...)), "Explain, not knowing the socket, warns")

	assert.Empty(t, sys.ExplainFor(sockopt.Dialing, false, opts...), "dialing socket, MPTCP off: nothing to say")
	for _, r := range []sockopt.Role{sockopt.Listening, sockopt.Accepted, sockopt.Connected} {
		assert.Empty(t, mptcpFindings(sys.ExplainFor(r, false, opts...)), "%v socket, MPTCP off: no MPTCP caveat", r)
	}
}

func TestExplainForAMultipathSocketNamesWhatMPTCPDoesInThatRole(t *testing.T) {
	sys, err := sockopt.ReadSystemFS(fakeHost(capsNone, nil))
	require.NoError(t, err)
	fs := sys.ExplainFor(sockopt.Listening, true, sockopt.UserTimeout(time.Second), sockopt.NotSentLowat(1<<14), sockopt.BusyPoll(0))
	require.Len(t, fs, 3, "%s", fs)
	for _, f := range fs {
		assert.Equal(t, sockopt.Caveat, f.Verdict)
		assert.Contains(t, f.Reason, "Multipath TCP")
	}
	assert.Contains(t, fs[0].Reason, "refuses it")
	assert.Contains(t, fs[1].Reason, "does not pass it to accepted connections")

	// A dialing socket: NOTSENT_LOWAT is dropped on fallback; SO_BUSY_POLL,
	// which only a listener fails to pass on, is fine.
	fs = sys.ExplainFor(sockopt.Dialing, true, sockopt.NotSentLowat(1<<14), sockopt.BusyPoll(0))
	require.Len(t, fs, 1, "%s", fs)
	assert.Contains(t, fs[0].Reason, "drops it when a dial falls back to TCP")

	// MPTCP off on the host: the socket cannot be MPTCP, whatever Go asks.
	off, err := sockopt.ReadSystemFS(fakeHost(capsNone, map[string]string{"net/mptcp/enabled": "0"}))
	require.NoError(t, err)
	assert.Empty(t, off.ExplainFor(sockopt.Listening, true, sockopt.UserTimeout(time.Second)))
}

func TestExplainForReportsAnOptionWithNoEffectInTheRole(t *testing.T) {
	sys, err := sockopt.ReadSystemFS(fakeHost(capsNone, nil))
	require.NoError(t, err)
	fs := sys.ExplainFor(sockopt.Dialing, false, sockopt.DeferAccept(5*time.Second), sockopt.FastOpenConnect(true))
	require.Len(t, fs, 1, "%s", fs)
	assert.Equal(t, sockopt.Ignored, fs[0].Verdict)
	assert.Equal(t, sockopt.DeferAccept(5*time.Second), fs[0].Option)
	assert.Contains(t, fs[0].Reason, "no effect on a dialing socket", "the rounding of DEFER_ACCEPT is beside the point")
}
