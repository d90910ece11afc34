package sockopt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nettune/nettune/internal/procnet"
)

// System holds the host settings that decide what the kernel does with
// socket options: Linux sysctls under /proc/sys and the process's effective
// capabilities. Read it once with [ReadSystem] (or [ReadSystemFS] in
// tests), never on a hot path, and ask [System.Explain] about an option
// set. A System is a plain value, safe for concurrent reads.
type System struct {
	RmemMax   int // net.core.rmem_max: SO_RCVBUF clamps at twice this
	WmemMax   int // net.core.wmem_max: SO_SNDBUF clamps at twice this
	Somaxconn int // net.core.somaxconn: listen backlogs are truncated to it
	// RmemDefault and WmemDefault are net.core.rmem_default and
	// wmem_default: the buffer sizes of sockets other than TCP (UDP,
	// Unix) that do not set their own.
	RmemDefault int
	WmemDefault int
	// TCPRmem and TCPWmem are net.ipv4.tcp_rmem and tcp_wmem: min,
	// default and max of a TCP socket's receive and send buffer under
	// autotuning. [1] is the size a new connection starts with; [2] is the
	// most autotuning will grow a buffer to, so a path whose
	// bandwidth-delay product needs more than about half of it is only
	// filled with a fixed size (see [BufferFor]). [0] is what the kernel
	// keeps under memory pressure.
	TCPRmem [3]int
	TCPWmem [3]int
	// TCPMaxSynBacklog is net.ipv4.tcp_max_syn_backlog: how many
	// connections may wait for the last ACK of their handshake; beyond it
	// the kernel answers with SYN cookies or drops SYNs.
	TCPMaxSynBacklog int
	// DefaultCongestion is net.ipv4.tcp_congestion_control, the algorithm
	// of sockets that do not set [Congestion]; DefaultQdisc is
	// net.core.default_qdisc, the queueing discipline an interface gets
	// (fq lets the kernel pace, which bbr relies on).
	DefaultCongestion string
	DefaultQdisc      string
	// ListenOverflows counts the SYNs and handshake ACKs dropped because
	// a listener's accept queue was full (the application did not accept
	// fast enough, or the backlog is too short); ListenDrops counts every
	// connection dropped at a listener, overflows included. Both are the
	// TcpExt counters of /proc/net/netstat since boot, for this network
	// namespace: read them twice and compare to see whether they grow.
	ListenOverflows uint64
	ListenDrops     uint64
	// BusyPoll is net.core.busy_poll: raising SO_BUSY_POLL above it
	// needs CAP_NET_ADMIN.
	BusyPoll time.Duration
	// FastOpen is the net.ipv4.tcp_fastopen bit mask: 1 enables the
	// client side (TCP_FASTOPEN_CONNECT), 2 the server side (TCP_FASTOPEN).
	FastOpen int
	// AvailableCongestion lists net.ipv4.tcp_available_congestion_control;
	// AllowedCongestion lists tcp_allowed_congestion_control, the names a
	// process without CAP_NET_ADMIN may pick.
	AvailableCongestion []string
	AllowedCongestion   []string
	// MigrateReq is net.ipv4.tcp_migrate_req: whether connections queued
	// on a closing SO_REUSEPORT listener move to another one rather than
	// being reset.
	MigrateReq bool
	// MPTCPEnabled is net.mptcp.enabled: whether Multipath TCP sockets can
	// be created (Go then makes listeners MPTCP by default).
	MPTCPEnabled bool
	// KeepAliveTime, KeepAliveInterval and KeepAliveProbes are the
	// net.ipv4.tcp_keepalive_* defaults for sockets that do not set their own.
	KeepAliveTime     time.Duration
	KeepAliveInterval time.Duration
	KeepAliveProbes   int
	// CapEff is the effective capability set of the process, from
	// /proc/self/status.
	CapEff uint64
	// Interfaces are the network interface names under /sys/class/net,
	// or nil when that directory could not be read.
	Interfaces []string
	// Missing names the settings that could not be read; their fields
	// are zero and Explain does not reason from them.
	Missing []string
}

// Linux capability numbers (linux/capability.h).
const (
	capNetRaw   = 13
	capNetAdmin = 12
)

// CapNetAdmin reports whether the process has CAP_NET_ADMIN in effect.
func (s *System) CapNetAdmin() bool { return s.CapEff&(1<<capNetAdmin) != 0 }

// CapNetRaw reports whether the process has CAP_NET_RAW in effect.
func (s *System) CapNetRaw() bool { return s.CapEff&(1<<capNetRaw) != 0 }

// ReadSystemFS reads the settings from fsys, a file system laid out like
// the root directory (proc/sys/net/core/rmem_max, proc/self/status,
// proc/net/netstat, sys/class/net). os.DirFS("/") is the real host; tests pass an
// fstest.MapFS. Settings it cannot read are listed in [System.Missing];
// it fails only when none can be read.
func ReadSystemFS(fsys fs.FS) (*System, error) {
	s := &System{}
	r := sysReader{fsys: fsys, s: s}
	s.RmemMax = r.int("net.core.rmem_max")
	s.WmemMax = r.int("net.core.wmem_max")
	s.Somaxconn = r.int("net.core.somaxconn")
	s.RmemDefault = r.int("net.core.rmem_default")
	s.WmemDefault = r.int("net.core.wmem_default")
	s.TCPRmem = r.triple("net.ipv4.tcp_rmem")
	s.TCPWmem = r.triple("net.ipv4.tcp_wmem")
	s.TCPMaxSynBacklog = r.int("net.ipv4.tcp_max_syn_backlog")
	s.DefaultCongestion = r.word("net.ipv4.tcp_congestion_control")
	s.DefaultQdisc = r.word("net.core.default_qdisc")
	s.BusyPoll = time.Duration(r.int("net.core.busy_poll")) * time.Microsecond
	s.FastOpen = r.int("net.ipv4.tcp_fastopen")
	s.AvailableCongestion = r.words("net.ipv4.tcp_available_congestion_control")
	s.AllowedCongestion = r.words("net.ipv4.tcp_allowed_congestion_control")
	s.MigrateReq = r.int("net.ipv4.tcp_migrate_req") != 0
	s.MPTCPEnabled = r.int("net.mptcp.enabled") != 0
	s.KeepAliveTime = time.Duration(r.int("net.ipv4.tcp_keepalive_time")) * time.Second
	s.KeepAliveInterval = time.Duration(r.int("net.ipv4.tcp_keepalive_intvl")) * time.Second
	s.KeepAliveProbes = r.int("net.ipv4.tcp_keepalive_probes")
	s.CapEff = r.capEff()
	r.listenCounters()
	if ents, err := fs.ReadDir(fsys, "sys/class/net"); err == nil {
		for _, e := range ents {
			s.Interfaces = append(s.Interfaces, e.Name())
		}
	} else {
		s.Missing = append(s.Missing, "/sys/class/net")
	}
	if r.read == 0 {
		return nil, fmt.Errorf("sockopt: no system setting readable (%s): %w", strings.Join(s.Missing, ", "), r.firstErr)
	}
	return s, nil
}

// ReadSystem reads the settings of this host from /proc and /sys. Outside
// Linux it returns an error wrapping errors.ErrUnsupported.
func ReadSystem() (*System, error) {
	if !hasProcSys {
		return nil, fmt.Errorf("sockopt: reading system settings: %w", errors.ErrUnsupported)
	}
	return ReadSystemFS(os.DirFS("/"))
}

type sysReader struct {
	fsys     fs.FS
	s        *System
	read     int
	firstErr error
}

func (r *sysReader) raw(name string) (string, bool) {
	p := "proc/sys/" + strings.ReplaceAll(name, ".", "/")
	b, err := fs.ReadFile(r.fsys, p)
	if err != nil {
		r.s.Missing = append(r.s.Missing, name)
		if r.firstErr == nil {
			r.firstErr = err
		}
		return "", false
	}
	r.read++
	return strings.TrimSpace(string(b)), true
}

func (r *sysReader) int(name string) int {
	v, ok := r.raw(name)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.read--
		r.s.Missing = append(r.s.Missing, name)
		return 0
	}
	return n
}

func (r *sysReader) words(name string) []string {
	v, ok := r.raw(name)
	if !ok {
		return nil
	}
	return strings.Fields(v)
}

// word reads a sysctl holding one name; an empty value is missing.
func (r *sysReader) word(name string) string {
	v, ok := r.raw(name)
	if !ok {
		return ""
	}
	if len(strings.Fields(v)) != 1 {
		r.read--
		r.s.Missing = append(r.s.Missing, name)
		return ""
	}
	return v
}

// triple reads a sysctl holding three integers (tcp_rmem, tcp_wmem).
func (r *sysReader) triple(name string) [3]int {
	var out [3]int
	v, ok := r.raw(name)
	if !ok {
		return out
	}
	f := strings.Fields(v)
	ok = len(f) == 3
	for i := 0; ok && i < 3; i++ {
		var err error
		out[i], err = strconv.Atoi(f[i])
		ok = err == nil
	}
	if !ok {
		r.read--
		r.s.Missing = append(r.s.Missing, name)
		return [3]int{}
	}
	return out
}

// listenCounters reads ListenOverflows and ListenDrops from
// /proc/net/netstat; either one missing or malformed goes to Missing.
func (r *sysReader) listenCounters() {
	const overflows, drops = "TcpExt.ListenOverflows", "TcpExt.ListenDrops"
	b, err := fs.ReadFile(r.fsys, "proc/net/netstat")
	var c map[string]uint64
	if err == nil {
		c, err = procnet.Parse(string(b), "TcpExt")
	}
	if err != nil {
		r.s.Missing = append(r.s.Missing, overflows, drops)
		return
	}
	for _, k := range []struct {
		name string
		dst  *uint64
	}{{overflows, &r.s.ListenOverflows}, {drops, &r.s.ListenDrops}} {
		v, ok := c[strings.TrimPrefix(k.name, "TcpExt.")]
		if !ok {
			r.s.Missing = append(r.s.Missing, k.name)
			continue
		}
		*k.dst = v
		r.read++
	}
}

func (r *sysReader) capEff() uint64 {
	b, err := fs.ReadFile(r.fsys, "proc/self/status")
	if err != nil {
		r.s.Missing = append(r.s.Missing, "CapEff")
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				break
			}
			r.read++
			return n
		}
	}
	r.s.Missing = append(r.s.Missing, "CapEff")
	return 0
}

func (s *System) missing(name string) bool { return slices.Contains(s.Missing, name) }

// Verdict is what the host does, or will do, with an option: the answer
// of [System.Explain] before the fact and of [Verify] after it.
type Verdict uint8

const (
	// Applied: the kernel holds the value asked for ([Verify] only).
	Applied Verdict = iota + 1
	// Clamped: the kernel applies a smaller value than asked, silently.
	Clamped
	// Refused: setsockopt will fail.
	Refused
	// Ignored: setsockopt succeeds but the option has no effect.
	Ignored
	// Adjusted: the kernel rounds or rewrites the value, silently.
	Adjusted
	// Caveat: applied as asked, with a consequence worth knowing.
	Caveat
	// NotApplied: the socket holds another value ([Verify] only).
	NotApplied
)

// String returns the verdict in lower case, except "NOT APPLIED", which
// stands out in a report.
func (v Verdict) String() string {
	switch v {
	case Applied:
		return "applied"
	case NotApplied:
		return "NOT APPLIED"
	case Clamped:
		return "clamped"
	case Refused:
		return "refused"
	case Ignored:
		return "ignored"
	case Adjusted:
		return "adjusted"
	case Caveat:
		return "caveat"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Finding is what [System.Explain] says about one option.
type Finding struct {
	Option  Option
	Verdict Verdict
	Reason  string
}

// String returns "OPTION=value: verdict: reason".
func (f Finding) String() string {
	return f.Option.String() + ": " + f.Verdict.String() + ": " + f.Reason
}

// Findings is the result of [System.Explain]. It prints as a table.
type Findings []Finding

// String renders the findings as an aligned table with a header line.
func (fs Findings) String() string {
	if len(fs) == 0 {
		return "no option is clamped, refused or ignored by this host\n"
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPTION\tVERDICT\tREASON")
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Option, f.Verdict, f.Reason)
	}
	tw.Flush()
	return trimLines(b.String())
}

// Explain says, for each option in opts that this host will clamp,
// refuse, ignore or rewrite, what will happen and why, from the settings
// in s alone (no system call). Options the host applies as asked are not
// listed. It does not know the socket: it assumes plain TCP, and notes the
// options that Multipath TCP would mistreat when the host has MPTCP on
// (Go makes listeners MPTCP by default). [System.ExplainFor] knows the
// socket and says only what applies to it.
func (s *System) Explain(opts ...Option) Findings {
	return s.explain(explainFor{mptcp: mptcpMaybe}, opts)
}

// ExplainFor is [System.Explain] for a socket whose role and protocol the
// caller knows: r is where opts are set ([Dialing], [Listening],
// [Accepted] or a combination), and mptcp whether the socket is Multipath
// TCP, which for a net.Dialer or net.ListenConfig is what its
// MultipathTCP method returns. With mptcp false there is no Multipath TCP
// caveat; with mptcp true, one for each option that MPTCP mistreats in
// role r (when the host has MPTCP on). An option that has no effect in
// role r ([Check]) is reported ignored.
//
//	sys.ExplainFor(sockopt.Dialing, d.MultipathTCP(), opts...) // d is a net.Dialer
func (s *System) ExplainFor(r Role, mptcp bool, opts ...Option) Findings {
	use := mptcpOff
	if mptcp {
		use = mptcpOn
	}
	return s.explain(explainFor{role: r, mptcp: use}, opts)
}

// explainFor is what Explain knows of the socket.
type explainFor struct {
	role  Role     // 0: unknown
	mptcp mptcpUse // whether the socket is Multipath TCP
}

type mptcpUse uint8

const (
	mptcpMaybe mptcpUse = iota // unknown: MPTCP if the host has it on and Go picks it
	mptcpOff
	mptcpOn
)

// explain runs the steps of Explain over every option, then looks at the
// set as a whole.
func (s *System) explain(at explainFor, opts []Option) Findings {
	var out Findings
	for _, o := range opts {
		if o == nil {
			continue
		}
		if at.role != 0 && o.info().roles&at.role == 0 {
			out = append(out, Finding{Option: o, Verdict: Ignored,
				Reason: fmt.Sprintf("%s has no effect on a %s socket", o.Name(), at.role)})
			continue
		}
		for _, step := range []func(Option) (Verdict, string){
			s.explainBuffer, s.explainPrivilege, s.explainFastOpen, s.explainCongestion,
			explainRewrite, s.explainPlacement, func(o Option) (Verdict, string) { return s.explainMPTCP(at, o) },
		} {
			if v, why := step(o); v != 0 {
				out = append(out, Finding{Option: o, Verdict: v, Reason: why})
			}
		}
	}
	return append(out, s.explainKeepAlive(opts)...)
}

// admin and raw report whether the process has CAP_NET_ADMIN and
// CAP_NET_RAW, giving the benefit of the doubt when CapEff is unknown.
func (s *System) admin() bool { return s.CapNetAdmin() || s.missing("CapEff") }
func (s *System) raw() bool   { return s.CapNetRaw() || s.missing("CapEff") }

// explainBuffer: SO_RCVBUF and SO_SNDBUF clamp at twice the sysctl.
func (s *System) explainBuffer(o Option) (Verdict, string) {
	switch o := o.(type) {
	case ReceiveBuffer:
		if !s.missing("net.core.rmem_max") && int(o) > s.RmemMax {
			return Clamped, fmt.Sprintf("net.core.rmem_max is %d: the kernel keeps 2×%d = %d instead of 2×%d (ReceiveBufferForce needs CAP_NET_ADMIN)", s.RmemMax, s.RmemMax, 2*s.RmemMax, int(o))
		}
	case SendBuffer:
		if !s.missing("net.core.wmem_max") && int(o) > s.WmemMax {
			return Clamped, fmt.Sprintf("net.core.wmem_max is %d: the kernel keeps 2×%d = %d instead of 2×%d (SendBufferForce needs CAP_NET_ADMIN)", s.WmemMax, s.WmemMax, 2*s.WmemMax, int(o))
		}
	}
	return 0, ""
}

// explainPrivilege: the options that need a capability.
func (s *System) explainPrivilege(o Option) (Verdict, string) {
	switch o := o.(type) {
	case ReceiveBufferForce, SendBufferForce:
		if !s.admin() {
			return Refused, "needs CAP_NET_ADMIN, which the process does not have (EPERM)"
		}
	case Mark:
		if !s.admin() && !s.raw() {
			return Refused, "needs CAP_NET_ADMIN or CAP_NET_RAW, which the process does not have (EPERM)"
		}
	case Priority:
		if o > 6 && !s.admin() && !s.raw() {
			return Refused, "priorities above 6 need CAP_NET_ADMIN or CAP_NET_RAW, which the process does not have (EPERM)"
		}
	case BusyPoll:
		if !s.admin() && !s.missing("net.core.busy_poll") && time.Duration(o) > s.BusyPoll {
			return Caveat, fmt.Sprintf("above net.core.busy_poll (%v) without CAP_NET_ADMIN: older kernels refuse it (EPERM)", s.BusyPoll)
		}
	}
	return 0, ""
}

// explainFastOpen: each side of TCP Fast Open needs its bit of
// net.ipv4.tcp_fastopen.
func (s *System) explainFastOpen(o Option) (Verdict, string) {
	if s.missing("net.ipv4.tcp_fastopen") {
		return 0, ""
	}
	switch o := o.(type) {
	case FastOpen:
		if s.FastOpen&2 == 0 && o > 0 {
			return Ignored, fmt.Sprintf("net.ipv4.tcp_fastopen is %d, without bit 2 (server): SYN data is not accepted, connections fall back to a normal handshake", s.FastOpen)
		}
	case FastOpenConnect:
		if s.FastOpen&1 == 0 && bool(o) {
			return Ignored, fmt.Sprintf("net.ipv4.tcp_fastopen is %d, without bit 1 (client): connections use a normal handshake", s.FastOpen)
		}
	}
	return 0, ""
}

// explainCongestion: the algorithm must be available, and allowed
// without CAP_NET_ADMIN.
func (s *System) explainCongestion(o Option) (Verdict, string) {
	c, ok := o.(Congestion)
	if !ok {
		return 0, ""
	}
	name := string(c)
	switch {
	case !s.missing("net.ipv4.tcp_available_congestion_control") && !slices.Contains(s.AvailableCongestion, name):
		if s.admin() {
			return Refused, fmt.Sprintf("not in net.ipv4.tcp_available_congestion_control [%s]: ENOENT unless the kernel can load module tcp_%s", strings.Join(s.AvailableCongestion, " "), name)
		}
		return Refused, fmt.Sprintf("not in net.ipv4.tcp_available_congestion_control [%s] (ENOENT)", strings.Join(s.AvailableCongestion, " "))
	case !s.admin() && !s.missing("net.ipv4.tcp_allowed_congestion_control") && !slices.Contains(s.AllowedCongestion, name):
		return Refused, fmt.Sprintf("not in net.ipv4.tcp_allowed_congestion_control [%s] and no CAP_NET_ADMIN (EPERM)", strings.Join(s.AllowedCongestion, " "))
	}
	return 0, ""
}

// explainRewrite: values every Linux rounds or rewrites, whatever the
// settings.
func explainRewrite(o Option) (Verdict, string) {
	switch o := o.(type) {
	case DeferAccept:
		if eff := deferAcceptEffective(time.Duration(o)); eff != time.Duration(o) {
			return Adjusted, fmt.Sprintf("rounded up to the SYN-ACK retransmit schedule: reads back as %v", eff)
		}
	case TOS:
		if o&3 != 0 {
			return Adjusted, fmt.Sprintf("TCP strips the ECN bits: reads back as 0x%x", int(o)&^3)
		}
	case WindowClamp:
		if o < minWindowClamp {
			return Adjusted, fmt.Sprintf("raised to the kernel minimum %d", minWindowClamp)
		}
	}
	return 0, ""
}

// explainPlacement: where connections go, SO_REUSEPORT and
// SO_BINDTODEVICE.
func (s *System) explainPlacement(o Option) (Verdict, string) {
	switch o := o.(type) {
	case ReusePort:
		if bool(o) && !s.missing("net.ipv4.tcp_migrate_req") && !s.MigrateReq {
			return Caveat, "net.ipv4.tcp_migrate_req is 0: closing one listener of the group resets the connections queued on it"
		}
	case BindToDevice:
		if s.Interfaces != nil && !slices.Contains(s.Interfaces, string(o)) {
			return Refused, fmt.Sprintf("no interface %q under /sys/class/net (ENODEV)", string(o))
		}
	}
	return 0, ""
}

// explainMPTCP: the options a Multipath TCP socket refuses or drops, when
// the socket may be one.
func (s *System) explainMPTCP(at explainFor, o Option) (Verdict, string) {
	hostOff := !s.missing("net.mptcp.enabled") && !s.MPTCPEnabled
	switch {
	case at.mptcp == mptcpOff || hostOff:
		return 0, ""
	case at.mptcp == mptcpMaybe:
		if TCPOnly(o) && s.MPTCPEnabled {
			return Caveat, fmt.Sprintf("Multipath TCP (enabled here, and Go's default for listeners, not dialers) %s: on an MPTCP socket sockopt fails with ErrMPTCP and Go retries with plain TCP; SetMultipathTCP(false) avoids the retry", mptcpWhat(o.info().mptcp))
		}
	default:
		if q := o.info().mptcp & forbidden(at.role); q != 0 {
			return Caveat, fmt.Sprintf("the socket is Multipath TCP, which %s: sockopt's Control fails with ErrMPTCP and Go retries the dial or listen with plain TCP, Apply fails with ErrMPTCP; SetMultipathTCP(false) avoids both", mptcpWhat(q))
		}
	}
	return 0, ""
}

// explainKeepAlive checks keepalive against TCP_USER_TIMEOUT: probes do
// not go out while sent data is unacknowledged, so only a user timeout
// bounds that case; and a user timeout also cuts keepalive short. Timers
// missing from opts come from the net.ipv4.tcp_keepalive_* defaults.
func (s *System) explainKeepAlive(opts []Option) Findings {
	var (
		first    Option
		off      bool
		user     UserTimeout
		hasUser  bool
		idle     = s.KeepAliveTime
		interval = s.KeepAliveInterval
		count    = s.KeepAliveProbes
	)
	for _, o := range opts {
		switch o := o.(type) {
		case KeepAlive:
			off = !bool(o)
		case KeepAliveIdle:
			idle = time.Duration(o)
		case KeepAliveInterval:
			interval = time.Duration(o)
		case KeepAliveCount:
			count = int(o)
		case UserTimeout:
			user, hasUser = o, true
			continue
		default:
			continue
		}
		if first == nil {
			first = o
		}
	}
	if first == nil || off {
		return nil
	}
	total := idle + interval*time.Duration(count)
	switch {
	case idle == 0 || interval == 0 || count == 0:
		return nil // a timer is unknown: nothing sound to say
	case !hasUser:
		return Findings{{Option: first, Verdict: Caveat, Reason: fmt.Sprintf(
			"keepalive probes do not go out while sent data is unacknowledged; add UserTimeout(%v) (idle + interval × count) to bound that case too", total)}}
	case user > 0 && time.Duration(user) < total:
		return Findings{{Option: user, Verdict: Caveat, Reason: fmt.Sprintf(
			"shorter than keepalive's idle + interval × count (%v): it also ends keepalive early, after %v", total, time.Duration(user))}}
	}
	return nil
}

func mptcpWhat(q mptcpQuirk) string {
	var parts []string
	if q&mptcpRefused != 0 {
		parts = append(parts, "refuses it")
	}
	if q&mptcpRefusedV6 != 0 {
		parts = append(parts, "refuses it on IPv6 sockets")
	}
	if q&mptcpNoEffect != 0 {
		parts = append(parts, "drops it when a dial falls back to TCP")
	}
	if q&mptcpNotInherited != 0 {
		parts = append(parts, "does not pass it to accepted connections")
	}
	return strings.Join(parts, ", ")
}

// minWindowClamp is what Linux raises a smaller TCP_WINDOW_CLAMP to:
// SOCK_MIN_RCVBUF/2 on 64-bit kernels (measured: 100 reads back as 1152).
const minWindowClamp = 1152

// deferAcceptEffective is the value TCP_DEFER_ACCEPT reads back as: the
// kernel turns seconds into a number of SYN-ACK retransmissions (initial
// timeout 1s, doubling up to 120s) and back.
func deferAcceptEffective(d time.Duration) time.Duration {
	secs := int(d / time.Second)
	if secs <= 0 {
		return 0
	}
	const initial, max = 1, 120
	// secs_to_retrans
	timeout, period, retrans := initial, initial, 1
	for secs > period && retrans < 255 {
		retrans++
		timeout <<= 1
		if timeout > max {
			timeout = max
		}
		period += timeout
	}
	// retrans_to_secs
	timeout, period = initial, initial
	for range retrans - 1 {
		timeout <<= 1
		if timeout > max {
			timeout = max
		}
		period += timeout
	}
	return time.Duration(period) * time.Second
}
