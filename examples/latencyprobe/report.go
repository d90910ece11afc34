package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/sockopt"
)

// report is everything one run measured.
type report struct {
	cfg         *config
	started     time.Time
	elapsed     time.Duration
	comparisons []*comparison // the comparison run
	path        *path         // where it ran
	emulation   *emulation    // what the lab's relay did (nil on loopback)
	target      *targetResult // -target
}

// allSeries lists the measured series in the order they were taken.
func (r *report) allSeries() []*series {
	var out []*series
	for _, c := range r.comparisons {
		for _, sd := range c.sides() {
			out = append(out, sd.s)
		}
	}
	if t := r.target; t != nil {
		for _, s := range []*series{t.connect, t.handshake, t.rtt, t.kernelRTT} {
			if s != nil {
				out = append(out, s)
			}
		}
	}
	return out
}

func (r *report) loop() string {
	if r.cfg.rate > 0 {
		return fmt.Sprintf("open loop at %g requests/s (latency from each request's intended start)", r.cfg.rate)
	}
	return "closed loop (one request after another)"
}

func (r *report) writeText(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "latencyprobe: %s %s/%s, %d CPUs, %s, timeout %v per sample\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), r.loop(), r.cfg.timeout)
	if r.target == nil {
		r.writeCompare(ew)
	} else {
		r.writeTarget(ew)
	}
	fmt.Fprintf(ew, "\nmeasured in %v\n", r.elapsed.Round(10*time.Millisecond))
	return ew.err
}

// writeTable prints one row per series: samples, failures, quantiles, max.
func writeTable(w io.Writer, ss []*series) {
	rows := make([]cli.LatencyRow, len(ss))
	for i, s := range ss {
		rows[i] = cli.LatencyRow{Title: s.title, Snap: s.snap, Failed: s.stats.Failures + s.stats.Timeouts}
	}
	cli.WriteLatencyTable(w, rows)
}

// writeHistogram prints the latency package's rendering, indented.
func writeHistogram(w io.Writer, s *series) {
	fmt.Fprintf(w, "\n  %s:\n", s.title)
	text := strings.TrimRight(fmt.Sprintf("%+v", s.snap), "\n")
	for line := range strings.SplitSeq(text, "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
}

func (r *report) writeTarget(w io.Writer) {
	t := r.target
	fmt.Fprintf(w, "Target %s: %d samples per measurement, each after %d unrecorded warm-up calls.\n", t.addr, r.cfg.n, r.cfg.warmup)
	fmt.Fprintf(w, "Dialer: %s\n", t.dialer)
	if !r.cfg.connectOnly {
		fmt.Fprintf(w, "Request: %d bytes written, the same %d bytes read back (the target must echo).\n", r.cfg.size, r.cfg.size)
	}

	fmt.Fprintf(w, "\n== System preflight: what this host will do with the options on the dialer's socket (sockopt.System.ExplainFor)\n")
	switch {
	case t.systemErr != nil:
		fmt.Fprintf(w, "  not available: %v\n", t.systemErr)
	default:
		for _, line := range hostSettings(t.system) {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	switch {
	case t.systemErr != nil:
	case len(t.preflight) == 0 && len(t.opts) == 0:
		fmt.Fprintf(w, "  no socket options given (-sockopt NAME=value, or -nodelay, -rcvbuf, …)\n")
	case len(t.preflight) == 0:
		fmt.Fprintf(w, "  nothing to report: the host applies every option as asked\n")
	default:
		indent(w, t.preflight.String())
	}

	fmt.Fprintf(w, "\n== Read-back: what the kernel applied on a live connection (sockopt.Verify)\n")
	switch {
	case len(t.opts) == 0:
		fmt.Fprintf(w, "  no socket options given\n")
	case t.verifyErr != nil:
		fmt.Fprintf(w, "  failed: %v\n", t.verifyErr)
	default:
		indent(w, t.verify.String())
		if !t.verify.OK() {
			fmt.Fprintf(w, "  WARNING: some options were not applied as asked (see above)\n")
		}
	}

	fmt.Fprintf(w, "\n== Latency\n")
	writeTable(w, r.allSeries())
	if r.cfg.hist {
		for _, s := range r.allSeries() {
			writeHistogram(w, s)
		}
	}

	fmt.Fprintf(w, "\n== Kernel view of the connection (TCP_INFO)\n")
	if t.tcpInfoErr != nil {
		fmt.Fprintf(w, "  not available: %v\n", t.tcpInfoErr)
		return
	}
	ti := t.tcpInfo
	fmt.Fprintf(w, "  state %v, smoothed RTT %v (var %v, min %v), RTO %v, ATO %v\n", ti.State, ti.RTT, ti.RTTVar, ti.MinRTT, ti.RTO, ti.ATO)
	fmt.Fprintf(w, "  MSS send/recv %d/%d, path MTU %d, cwnd %d segments, options %v, retransmits %d\n",
		ti.SendMSS, ti.RecvMSS, ti.PathMTU, ti.SendCwnd, ti.Options, ti.TotalRetrans)
	if t.rtt != nil && ti.RTT > 0 {
		fmt.Fprintf(w, "  measured p50 round trip %s vs kernel smoothed RTT %s: the difference is the time spent in both processes and the Go runtime\n",
			cli.Duration(t.rtt.snap.Quantile(0.5)), cli.Duration(ti.RTT))
	}
	fmt.Fprintf(w, "\n== What to change for this path\n")
	for _, a := range t.advice {
		indent(w, wrap("- "+a, 110))
	}
}

// wrap breaks text into lines of at most width runes, between words.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(text) {
		l := utf8.RuneCountInString(word)
		if i > 0 && n+1+l > width {
			b.WriteByte('\n')
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += l
	}
	return b.String()
}

func indent(w io.Writer, text string) {
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// JSON output. Field names are stable; durations are integer nanoseconds.

type jsonReport struct {
	Mode        string          `json:"mode"` // "compare" or "target"
	GoVersion   string          `json:"go_version"`
	OS          string          `json:"os"`
	Arch        string          `json:"arch"`
	CPUs        int             `json:"cpus"`
	Loop        string          `json:"loop"`                   // "closed" or "open"
	RatePerSec  float64         `json:"rate_per_sec,omitempty"` // open loop only
	TimeoutNS   int64           `json:"timeout_ns"`             // per sample
	RequestSize int             `json:"request_size"`           // bytes echoed per exchange
	ElapsedNS   int64           `json:"elapsed_ns"`             // whole run
	Series      []jsonSeries    `json:"series"`                 // every measurement
	Path        *jsonPath       `json:"path,omitempty"`         // compare mode
	Techniques  []jsonTechnique `json:"techniques,omitempty"`   // compare mode
	Target      *jsonTarget     `json:"target,omitempty"`       // target mode
}

type jsonSeries struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Samples     int    `json:"samples"`
	Failures    int    `json:"failures"`
	Timeouts    int    `json:"timeouts"`
	LastError   string `json:"last_error,omitempty"`
	MinNS       int64  `json:"min_ns"`
	MeanNS      int64  `json:"mean_ns"`
	P50NS       int64  `json:"p50_ns"`
	P90NS       int64  `json:"p90_ns"`
	P95NS       int64  `json:"p95_ns"`
	P99NS       int64  `json:"p99_ns"`
	P999NS      int64  `json:"p999_ns"`
	MaxNS       int64  `json:"max_ns"`
}

type jsonTarget struct {
	Address   string        `json:"address"`
	TLS       bool          `json:"tls"`
	Dialer    string        `json:"dialer"`
	Options   []string      `json:"options"`
	Preflight []jsonFinding `json:"preflight"`
	Host      *jsonHost     `json:"host,omitempty"` // this host's settings (nil when unreadable)
	Verify    []jsonVerify  `json:"verify"`
	TCPInfo   *jsonTCPInfo  `json:"tcp_info,omitempty"`
	Advice    []string      `json:"advice"` // what to change for this path
}

// jsonHost is this host's settings from sockopt.ReadSystem; Missing
// names those it could not read, whose fields are zero.
type jsonHost struct {
	RmemMax           int      `json:"rmem_max"`
	WmemMax           int      `json:"wmem_max"`
	RmemDefault       int      `json:"rmem_default"`
	WmemDefault       int      `json:"wmem_default"`
	TCPRmem           [3]int   `json:"tcp_rmem"` // min, default, max
	TCPWmem           [3]int   `json:"tcp_wmem"`
	Somaxconn         int      `json:"somaxconn"`
	TCPMaxSynBacklog  int      `json:"tcp_max_syn_backlog"`
	TCPFastOpen       int      `json:"tcp_fastopen"`
	CongestionControl string   `json:"congestion_control"`
	DefaultQdisc      string   `json:"default_qdisc"`
	ListenOverflows   uint64   `json:"listen_overflows"` // since boot
	ListenDrops       uint64   `json:"listen_drops"`
	Missing           []string `json:"missing,omitempty"`
}

func newJSONHost(s *sockopt.System) *jsonHost {
	if s == nil {
		return nil
	}
	return &jsonHost{RmemMax: s.RmemMax, WmemMax: s.WmemMax, RmemDefault: s.RmemDefault, WmemDefault: s.WmemDefault,
		TCPRmem: s.TCPRmem, TCPWmem: s.TCPWmem, Somaxconn: s.Somaxconn, TCPMaxSynBacklog: s.TCPMaxSynBacklog,
		TCPFastOpen: s.FastOpen, CongestionControl: s.DefaultCongestion, DefaultQdisc: s.DefaultQdisc,
		ListenOverflows: s.ListenOverflows, ListenDrops: s.ListenDrops, Missing: s.Missing}
}

type jsonFinding struct {
	Option  string `json:"option"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
}

type jsonVerify struct {
	Asked   string `json:"asked"`
	Got     string `json:"got"`
	Verdict string `json:"verdict"`
	OK      bool   `json:"ok"`
	Reason  string `json:"reason,omitempty"`
	Error   string `json:"error,omitempty"`
}

type jsonTCPInfo struct {
	State        string `json:"state"`
	RTTNS        int64  `json:"rtt_ns"`
	RTTVarNS     int64  `json:"rtt_var_ns"`
	MinRTTNS     int64  `json:"min_rtt_ns"`
	RTONS        int64  `json:"rto_ns"`
	SendMSS      int    `json:"send_mss"`
	SendCwnd     int    `json:"send_cwnd"`
	TotalRetrans int    `json:"total_retrans"`
}

func toJSONSeries(s *series) jsonSeries {
	sum := s.snap.Summary()
	js := jsonSeries{
		Name: s.name, Description: s.title,
		Samples: s.stats.Samples, Failures: s.stats.Failures, Timeouts: s.stats.Timeouts,
		MinNS: int64(sum.Min), MeanNS: int64(sum.Mean),
		P50NS: int64(sum.P50), P90NS: int64(sum.P90), P95NS: int64(sum.P95), P99NS: int64(sum.P99), P999NS: int64(sum.P999),
		MaxNS: int64(sum.Max),
	}
	if s.stats.LastErr != nil {
		js.LastError = s.stats.LastErr.Error()
	}
	return js
}

func (r *report) writeJSON(w io.Writer) error {
	jr := jsonReport{
		Mode: "compare", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		Loop: "closed", TimeoutNS: int64(r.cfg.timeout), RequestSize: r.cfg.size, ElapsedNS: int64(r.elapsed),
		Series: []jsonSeries{},
	}
	if r.cfg.rate > 0 {
		jr.Loop, jr.RatePerSec = "open", r.cfg.rate
	}
	for _, s := range r.allSeries() {
		jr.Series = append(jr.Series, toJSONSeries(s))
	}
	if r.path != nil {
		jr.Path, jr.Techniques = r.jsonCompare()
	}
	if t := r.target; t != nil {
		jr.Mode = "target"
		jt := &jsonTarget{Address: t.addr, TLS: r.cfg.tls, Dialer: t.dialer,
			Options: []string{}, Preflight: []jsonFinding{}, Host: newJSONHost(t.system), Verify: []jsonVerify{}, Advice: t.advice}
		for _, o := range t.opts {
			jt.Options = append(jt.Options, o.String())
		}
		for _, f := range t.preflight {
			jt.Preflight = append(jt.Preflight, jsonFinding{Option: f.Option.String(), Verdict: f.Verdict.String(), Reason: f.Reason})
		}
		for _, v := range t.verify {
			jv := jsonVerify{Asked: v.Asked.String(), Verdict: v.Verdict.String(), OK: v.OK(), Reason: v.Reason}
			if v.Got != nil {
				jv.Got = v.Got.String()
			}
			if v.Err != nil {
				jv.Error = v.Err.Error()
			}
			jt.Verify = append(jt.Verify, jv)
		}
		if ti := t.tcpInfo; ti != nil {
			jt.TCPInfo = &jsonTCPInfo{State: ti.State.String(), RTTNS: int64(ti.RTT), RTTVarNS: int64(ti.RTTVar),
				MinRTTNS: int64(ti.MinRTT), RTONS: int64(ti.RTO), SendMSS: ti.SendMSS, SendCwnd: ti.SendCwnd, TotalRetrans: ti.TotalRetrans}
		}
		jr.Target = jt
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jr)
}
