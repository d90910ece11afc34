package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/netlab"
	"github.com/nettune/nettune/sockopt"
)

// sides lists the measured sides: without, with, then the extras.
func (c *comparison) sides() []side {
	if c.skipped != "" {
		return nil
	}
	return append([]side{c.without, c.with}, c.extra...)
}

// behind names the open-loop series whose generator fell behind.
func (c *comparison) behind() []string {
	var out []string
	for _, sd := range c.sides() {
		if r, ok := sd.s.behind(); ok {
			out = append(out, fmt.Sprintf("%s (its calls needed %.2g× the schedule's time)", sd.s.title, r))
		}
	}
	return out
}

// floorDuration is what physics allows "with" on this path: the round
// trips the exchange needs × the RTT, or the stated floor.
func (c *comparison) floorDuration(rtt time.Duration) time.Duration {
	if c.floor > 0 {
		return c.floor
	}
	return time.Duration(c.floorRTT * float64(rtt))
}

func p50(s *series) time.Duration { return s.snap.Quantile(0.5) }
func p99(s *series) time.Duration { return s.snap.Quantile(0.99) }

// loopbackWhy is the one line that says why the run is on loopback and
// how to get the lab. netlab's whole error, which lists every way to
// the privilege, is in the JSON document's path.why.
func loopbackWhy(pa *path) string {
	switch {
	case pa.why == "-loopback":
		return "-loopback was given: no emulated path, so no round trips to save; run without it for the lab."
	case errors.Is(pa.labErr, netlab.ErrNoPrivilege):
		return fmt.Sprintf("The lab was not available (%v): run as root to measure on an emulated cross-continent path "+
			"(netlab's doc lists the other ways: file capabilities, a user namespace).", netlab.ErrNoPrivilege)
	case errors.Is(pa.labErr, errors.ErrUnsupported):
		return fmt.Sprintf("The lab was not available (%s): netlab needs Linux.", pa.why)
	}
	return fmt.Sprintf("The lab was not available (%s): run as root to measure on an emulated cross-continent path.", pa.why)
}

func (r *report) writeCompare(w io.Writer) {
	pa := r.path
	fmt.Fprintf(w, "Path: %s.\n", pa.describe())
	if pa.lab == nil {
		fmt.Fprintln(w, loopbackWhy(pa))
	}
	fmt.Fprintf(w, "Samples: %d per measurement (fresh TLS: %d, Nagle on: %d), each after %d unrecorded warm-up calls.\n",
		r.cfg.n, r.cfg.tlsN, r.cfg.nagleN, r.cfg.warmup)
	var behind []string
	for _, c := range r.comparisons {
		behind = append(behind, c.behind()...)
	}
	if len(behind) > 0 {
		fmt.Fprintf(w, "\nWARNING: at -rate %g/s the load generator fell behind its schedule on: %s. Those latencies include the wait in "+
			"the generator's own queue, not the technique's cost: no conclusion is drawn from them; lower -rate.\n",
			r.cfg.rate, strings.Join(behind, "; "))
	}

	rtt := pa.rtt()
	fmt.Fprintf(w, "\n== Summary: p50 / p99 without and with each technique; the floor is what physics allows \"with\" on this path\n")
	rows := [][]string{{"technique", "without", "with", "saves (p50)", "round trips", "floor", "with÷floor"}}
	var skipped, hows []string
	for _, c := range r.comparisons {
		if c.skipped != "" {
			skipped = append(skipped, fmt.Sprintf("  %-10s %s", c.name, c.skipped))
			continue
		}
		how := c.how
		if c.throughput() {
			how = fmt.Sprintf("(%s vs %s) %s", c.without.label, c.with.label, how)
		}
		hows = append(hows, fmt.Sprintf("  %-10s %s", c.name, how))
		if c.throughput() {
			rows = append(rows, []string{c.name, bitRate(c.without.bps), bitRate(c.with.bps),
				fmt.Sprintf("%.2g× the rate", c.with.bps/c.without.bps), "-",
				"link " + bitRate(c.floorBps), fmt.Sprintf("%.0f%%", 100*c.with.bps/c.floorBps)})
			continue
		}
		without := cli.Duration(p50(c.without.s)) + " / " + cli.Duration(p99(c.without.s))
		if c.without.capped {
			without = "> " + cli.Duration(p50(c.without.s)) + " (cap)"
		}
		row := []string{c.name, without, cli.Duration(p50(c.with.s)) + " / " + cli.Duration(p99(c.with.s)), "", "-", "-", "-"}
		saved := p50(c.without.s) - p50(c.with.s)
		if len(c.behind()) > 0 {
			row[3] = "no conclusion"
		} else {
			row[3] = cli.Duration(saved)
			if c.without.capped {
				row[3] = "> " + row[3]
			}
			if rtt > 0 && c.floor == 0 {
				row[4] = fmt.Sprintf("%.1f RTT", float64(saved)/float64(rtt))
			}
		}
		if f := c.floorDuration(rtt); f > 0 {
			row[5] = cli.Duration(f)
			if c.floor == 0 {
				row[5] += fmt.Sprintf(" (%g RTT)", c.floorRTT)
			}
			row[6] = fmt.Sprintf("%.2f×", float64(p50(c.with.s))/float64(f))
		}
		rows = append(rows, row)
	}
	cli.WriteTable(w, rows)
	if e := r.emulation; e != nil && e.delivered > 0 {
		fmt.Fprintf(w, "Emulation check, before the bulk downloads: the relay delivered %d packets between client and server, late by %s at p50 and %s at p99 "+
			"(its error, on top of the path's delay); it dropped %d by the path's loss and %d at a full queue.\n",
			e.delivered, cli.Duration(e.lateP50), cli.Duration(e.lateP99), e.lost, e.overflowed)
		if e.late(rtt) {
			fmt.Fprintf(w, "WARNING: the relay ran late (this machine is busy): the figures above overstate the path's cost; run again on a quieter machine.\n")
		}
	}
	if len(hows) > 0 {
		fmt.Fprintf(w, "\nWhat gives \"with\":\n%s\n", strings.Join(hows, "\n"))
	}
	if len(skipped) > 0 {
		fmt.Fprintf(w, "\nNot measured on this path:\n%s\n", strings.Join(skipped, "\n"))
	}
	r.writePreflight(w)
	for _, c := range r.comparisons {
		if c.skipped == "" {
			r.writeSection(w, c)
		}
	}
}

// recommended are the socket options the summary recommends, by role.
func (r *report) recommended() (dialing, listening []sockopt.Option) {
	dialing = []sockopt.Option{sockopt.FastOpenConnect(true), sockopt.UserTimeout(2 * time.Second)}
	if pa := r.path; pa != nil && pa.profile.Rate > 0 && pa.rtt() > 0 {
		dialing = append(dialing, sockopt.ReceiveBuffer(sockopt.BufferFor(pa.rtt(), pa.profile.Rate, nil).Size))
	}
	listening = []sockopt.Option{sockopt.FastOpen(1024), sockopt.Congestion("bbr")}
	return dialing, listening
}

// writePreflight says what this host (not the lab's namespaces) would do
// with the recommended settings.
func (r *report) writePreflight(w io.Writer) {
	fmt.Fprintf(w, "\n== Preflight: what this host would do with the recommended settings (sockopt.System.ExplainFor)\n")
	sys, err := sockopt.ReadSystem()
	if err != nil {
		fmt.Fprintf(w, "  not available: %v\n", err)
		return
	}
	for _, line := range hostSettings(sys) {
		fmt.Fprintf(w, "  %s\n", line)
	}
	dialing, listening := r.recommended()
	for _, role := range []struct {
		name string
		role sockopt.Role
		opts []sockopt.Option
	}{{"dialing", sockopt.Dialing, dialing}, {"listening", sockopt.Listening | sockopt.Accepted, listening}} {
		f := sys.ExplainFor(role.role, false, role.opts...)
		var names []string
		for _, o := range role.opts {
			names = append(names, o.String())
		}
		if len(f) == 0 {
			fmt.Fprintf(w, "  %s socket, %s: applied as asked\n", role.name, strings.Join(names, " "))
			continue
		}
		fmt.Fprintf(w, "  %s socket, %s:\n", role.name, strings.Join(names, " "))
		indent(w, "  "+strings.ReplaceAll(strings.TrimRight(f.String(), "\n"), "\n", "\n  "))
	}
}

func (r *report) writeSection(w io.Writer, c *comparison) {
	fmt.Fprintf(w, "\n== %s: %s\n", c.name, c.title)
	indent(w, wrap(c.note, 100))
	if c.throughput() {
		for _, sd := range c.sides() {
			fmt.Fprintf(w, "  %-28s %s over %v\n", sd.label, bitRate(sd.bps), sd.s.snap.Quantile(0.5).Round(time.Millisecond))
		}
	} else {
		var ss []*series
		for _, sd := range c.sides() {
			ss = append(ss, sd.s)
		}
		writeTable(w, ss)
		fmt.Fprintf(w, "  speed-up: %s at p50, %s at p99\n", cli.Ratio(c.speedup(0.5)), cli.Ratio(c.speedup(0.99)))
	}
	for _, d := range c.detail {
		indent(w, wrap(d, 100))
	}
	if r.cfg.hist && !c.throughput() {
		for _, sd := range c.sides() {
			writeHistogram(w, sd.s)
		}
	}
}

// JSON of the comparison run: the shape other tools read.

type jsonPath struct {
	RTTNS    int64   `json:"rtt_ns"`
	Loss     float64 `json:"loss"`
	RateBPS  int64   `json:"rate_bps"` // 0: unlimited
	Lab      bool    `json:"lab"`      // emulated by netlab
	JitterNS int64   `json:"jitter_ns"`
	Preset   string  `json:"preset,omitempty"`
	Why      string  `json:"why,omitempty"` // on loopback: why the lab was not used
	// The relay's lateness at p99, its error on top of the path's delay
	// (lab only); relay_late is set when it distorts the figures.
	RelayLateP99NS int64 `json:"relay_late_p99_ns,omitempty"`
	RelayLate      bool  `json:"relay_late,omitempty"`
}

type jsonSide struct {
	Label  string   `json:"label"`
	Series string   `json:"series"` // the name in series
	P50NS  int64    `json:"p50_ns"`
	P99NS  int64    `json:"p99_ns"`
	BPS    *float64 `json:"bps,omitempty"`    // throughput techniques
	Capped bool     `json:"capped,omitempty"` // stopped at a bound: the real figure is larger
}

type jsonTechnique struct {
	Name     string      `json:"name"`
	Title    string      `json:"title"`
	Without  *jsonSide   `json:"without"` // null when skipped
	With     *jsonSide   `json:"with"`
	Extra    []jsonSide  `json:"extra,omitempty"`
	FloorNS  *int64      `json:"floor_ns,omitempty"`  // latency techniques (0: no floor, as on loopback)
	FloorBPS *float64    `json:"floor_bps,omitempty"` // throughput techniques: the link's rate
	How      string      `json:"how,omitempty"`
	Skipped  string      `json:"skipped"`                    // why it did not run; "" when it ran
	Behind   bool        `json:"generator_behind,omitempty"` // open loop fell behind: no conclusion
	Outage   *jsonOutage `json:"outage,omitempty"`           // dns: lookups while the resolver was down
}

// jsonOutage is how n lookups fared while the resolver was down and the
// cached answer had expired: without the cache, and with serve-stale.
type jsonOutage struct {
	Lookups        int   `json:"lookups"`
	FailedWithout  int   `json:"failed_without"`
	FailedWith     int   `json:"failed_with"`
	WorstWithoutNS int64 `json:"worst_without_ns"`
	WorstWithNS    int64 `json:"worst_with_ns"`
}

func toJSONSide(sd side) *jsonSide {
	js := &jsonSide{Label: sd.label, Series: sd.s.name, P50NS: int64(p50(sd.s)), P99NS: int64(p99(sd.s)), Capped: sd.capped}
	if sd.bps > 0 {
		js.BPS = &sd.bps
	}
	return js
}

func (r *report) jsonCompare() (*jsonPath, []jsonTechnique) {
	pa := r.path
	jp := &jsonPath{RTTNS: int64(pa.rtt()), Loss: pa.profile.Loss, RateBPS: pa.profile.Rate, Lab: pa.lab != nil, JitterNS: int64(pa.profile.Jitter)}
	if e := r.emulation; e != nil && e.delivered > 0 {
		jp.RelayLateP99NS, jp.RelayLate = int64(e.lateP99), e.late(pa.rtt())
	}
	if pa.lab != nil {
		if !r.cfg.pathGiven || r.cfg.preset != defaultPreset {
			jp.Preset = r.cfg.preset
		}
	} else {
		jp.Why = pa.why
	}
	ts := []jsonTechnique{}
	for _, c := range r.comparisons {
		jt := jsonTechnique{Name: c.name, Title: c.title, Skipped: c.skipped, How: c.how}
		if c.skipped == "" {
			jt.Without, jt.With = toJSONSide(c.without), toJSONSide(c.with)
			for _, sd := range c.extra {
				jt.Extra = append(jt.Extra, *toJSONSide(sd))
			}
			jt.Behind = len(c.behind()) > 0
			if o := c.outage; o != nil {
				jt.Outage = &jsonOutage{Lookups: o.n, FailedWithout: o.failedWithout, FailedWith: o.failedWith,
					WorstWithoutNS: int64(o.worstWithout), WorstWithNS: int64(o.worstWith)}
			}
			if c.throughput() {
				jt.FloorBPS = &c.floorBps
			} else {
				f := int64(c.floorDuration(pa.rtt()))
				jt.FloorNS = &f
			}
		}
		ts = append(ts, jt)
	}
	return jp, ts
}
