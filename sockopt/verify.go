package sockopt

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is the read-back of one option by [Verify].
type Result struct {
	// Asked is the option as passed to Verify.
	Asked Option
	// Got is the value the socket holds, as the same type, or nil when it
	// could not be read (see Err).
	Got Option
	// Verdict is Applied when Got equals Asked; Adjusted when the kernel
	// holds a documented equivalent (a doubled buffer, a rounded
	// DEFER_ACCEPT, an MSS less the room for TCP options, TOS without ECN
	// bits); Clamped when it holds less than asked; NotApplied otherwise.
	Verdict Verdict
	// Reason says why Got differs from Asked, or is empty.
	Reason string
	// Err is the getsockopt error, if any.
	Err error
}

// OK reports whether the kernel applied the option as asked or as its
// documented equivalent.
func (r Result) OK() bool { return r.Verdict == Applied || r.Verdict == Adjusted }

// Report is the result of [Verify], one Result per option, in order. It
// prints as a table.
type Report []Result

// OK reports whether every option was applied as asked or as its
// documented equivalent.
func (r Report) OK() bool {
	for _, x := range r {
		if !x.OK() {
			return false
		}
	}
	return true
}

// String renders the report as an aligned table with a header line.
func (r Report) String() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPTION\tASKED\tGOT\tVERDICT\tWHY")
	for _, x := range r {
		got := "?"
		if x.Got != nil {
			got = value(x.Got)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.Asked.Name(), value(x.Asked), got, x.Verdict, x.Reason)
	}
	tw.Flush()
	return trimLines(b.String())
}

// value is the part of o.String() after "NAME=". (The name of a [Raw]
// option holds "=" itself.)
func value(o Option) string {
	return strings.TrimPrefix(o.String(), o.Name()+"=")
}

// Verify reads every option in opts back from c, a conn or listener as for
// [Apply] (a *tls.Conn too), and compares the value the
// kernel holds with the one asked for, explaining each difference. It is
// meant for start-up checks, tests and diagnostics, not for hot paths: it
// makes one getsockopt per option, and when a value differs it may read
// sysctls from /proc to say why.
//
// The error is for a bad option set or a socket that cannot be reached;
// a failed read of one option is reported in its Result.
func Verify(c any, opts ...Option) (Report, error) {
	if err := Validate(opts...); err != nil {
		return nil, err
	}
	rc, err := rawConnOf(c)
	if err != nil {
		return nil, err
	}
	rep := make(Report, len(opts))
	var mptcp bool
	var perr error
	cerr := rc.Control(func(fd uintptr) {
		s := socket{fd: fd}
		// Without the protocol, a TCP-only option that a Multipath TCP
		// socket ignored could be judged applied: fail instead.
		if mptcp, perr = s.isMPTCP(); perr != nil {
			return
		}
		for i, o := range opts {
			got, err := s.get(o)
			rep[i] = Result{Asked: o, Got: got, Err: err}
			if err != nil {
				rep[i].Got = nil
			}
		}
	})
	if cerr != nil {
		return nil, fmt.Errorf("sockopt: %w", cerr)
	}
	if perr != nil {
		return nil, perr
	}
	env := verifyEnv{mptcp: mptcp}
	for i := range rep {
		rep[i].Verdict, rep[i].Reason = env.judge(rep[i])
	}
	return rep, nil
}

// verifyEnv is what judge needs beyond the two values. The system
// settings are read at most once per Verify, only when a value differs.
type verifyEnv struct {
	mptcp  bool
	sys    *System
	sysErr error
	loaded bool
}

func (e *verifyEnv) system() *System {
	if !e.loaded {
		e.loaded = true
		e.sys, e.sysErr = ReadSystem()
	}
	return e.sys
}

func (e *verifyEnv) judge(r Result) (Verdict, string) {
	if r.Err != nil {
		if e.mptcp && TCPOnly(r.Asked) {
			return NotApplied, "Multipath TCP socket: " + mptcpWhat(r.Asked.info().mptcp)
		}
		return NotApplied, "cannot read it back: " + r.Err.Error()
	}
	switch a := r.Asked.(type) {
	// Linux reports buffer sizes doubled: equality is a coincidence.
	case ReceiveBuffer:
		return e.buffer(int(a), int(r.Got.(ReceiveBuffer)), "net.core.rmem_max", func(s *System) int { return s.RmemMax }, "ReceiveBufferForce")
	case SendBuffer:
		return e.buffer(int(a), int(r.Got.(SendBuffer)), "net.core.wmem_max", func(s *System) int { return s.WmemMax }, "SendBufferForce")
	case ReceiveBufferForce:
		return e.buffer(int(a), int(r.Got.(ReceiveBufferForce)), "", nil, "")
	case SendBufferForce:
		return e.buffer(int(a), int(r.Got.(SendBufferForce)), "", nil, "")
	}
	if r.Got == r.Asked {
		return Applied, ""
	}
	if e.mptcp && TCPOnly(r.Asked) {
		return NotApplied, "Multipath TCP " + mptcpWhat(r.Asked.info().mptcp)
	}
	switch a := r.Asked.(type) {
	case NoDelay, KeepAlive, KeepAliveIdle, KeepAliveInterval, KeepAliveCount:
		if !goSetsIt(r.Asked) {
			break
		}
		return NotApplied, "Go sets it on every connection it dials or accepts: apply it with Apply after Dial or Accept"
	case FastOpen:
		if !hasProcSys && a > 0 && r.Got.(FastOpen) == 1 {
			return Adjusted, "this platform takes an on/off switch; the queue is bounded by the listen backlog"
		}
	case QuickAck:
		return NotApplied, "the kernel clears and sets TCP_QUICKACK on its own: it is a hint for the next ACKs, not a mode"
	case DeferAccept:
		if eff := deferAcceptEffective(time.Duration(a)); time.Duration(r.Got.(DeferAccept)) == eff {
			return Adjusted, "rounded up to the SYN-ACK retransmit schedule (1s, doubling)"
		}
	case TOS:
		if r.Got.(TOS) == a&^3 {
			return Adjusted, "TCP manages the ECN bits itself and strips them"
		}
	case MaxSegment:
		g := int(r.Got.(MaxSegment))
		switch {
		case g < int(a) && g >= int(a)-40:
			return Adjusted, fmt.Sprintf("less %d bytes of room for TCP options (timestamps take 12)", int(a)-g)
		case g < int(a):
			return Clamped, "the peer announced a smaller MSS, or the path MTU is lower"
		}
	case WindowClamp:
		if int(a) < minWindowClamp && int(r.Got.(WindowClamp)) == minWindowClamp {
			return Adjusted, fmt.Sprintf("raised to the kernel minimum %d", minWindowClamp)
		}
	case Priority:
		return NotApplied, "accepted sockets do not inherit SO_PRIORITY from the listener: apply it after Accept"
	case NotSentLowat, BusyPoll:
		return NotApplied, "not inherited by connections that a Multipath TCP listener accepts from plain TCP clients, nor kept on an MPTCP dial that fell back: apply it after Accept or turn MPTCP off"
	case Congestion:
		return NotApplied, fmt.Sprintf("the socket uses %s: set it before connect or listen, or after Accept", r.Got)
	}
	return NotApplied, "the socket holds " + value(r.Got)
}

// goSetsIt is true for the options Go overwrites on new connections.
func goSetsIt(o Option) bool { return o.info().afterConnect }

// buffer judges SO_RCVBUF/SO_SNDBUF read-backs.
func (e *verifyEnv) buffer(asked, got int, sysctl string, max func(*System) int, force string) (Verdict, string) {
	switch {
	case got == asked && !hasProcSys: // only Linux doubles
		return Applied, ""
	case got == 2*asked:
		return Adjusted, "the kernel doubles the value to leave room for its bookkeeping"
	case got > 2*asked:
		return Adjusted, "raised to the kernel minimum"
	}
	if max != nil {
		if s := e.system(); s != nil && !s.missing(sysctl) && asked > max(s) && got == 2*max(s) {
			return Clamped, fmt.Sprintf("clamped at 2×%s (%d); %s (CAP_NET_ADMIN) or a larger %s lifts it", sysctl, max(s), force, sysctl)
		}
		return Clamped, "clamped by " + sysctl
	}
	return NotApplied, fmt.Sprintf("the socket holds %d", got)
}

// trimLines removes the padding tabwriter leaves after a last empty column.
func trimLines(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString(strings.TrimRight(line, " \n"))
		b.WriteByte('\n')
	}
	return b.String()
}
