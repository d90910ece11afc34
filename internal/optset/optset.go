// Package optset holds what the option sets of dialer and listener check
// alike: the keepalive configuration, the socket options that conflict with
// it or with Multipath TCP, repeated socket options, and the message of
// their OptionError types. Each package keeps its own Option and error
// types; optset works on the socket options and on a caller's type O for
// the option that gave each one.
package optset

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/nettune/nettune/sockopt"
)

// Entry is a socket option of a set and the package option it came from,
// such as sockopt.NoDelay(true) from listener.ConnSockopt(...).
type Entry[O comparable] struct {
	Sockopt sockopt.Option
	From    O
}

// Apply calls apply for each of opts in order and returns the first
// error, or nilErr for a nil option.
func Apply[O comparable](opts []O, nilErr error, apply func(O) error) error {
	var zero O
	for _, o := range opts {
		if o == zero {
			return nilErr
		}
		if err := apply(o); err != nil {
			return err
		}
	}
	return nil
}

// ControlFunc is the signature of the Control field of net.Dialer and
// net.ListenConfig.
type ControlFunc = func(network, address string, c syscall.RawConn) error

// Sockopts returns control(opts...) (sockopt.DialControl or
// ListenControl), or nil when opts is empty.
func Sockopts(control func(...sockopt.Option) ControlFunc, opts []sockopt.Option) ControlFunc {
	if len(opts) == 0 {
		return nil
	}
	return control(opts...)
}

// Chain returns a ControlFunc that runs first (if not nil) and then each of
// then, in order, stopping at the first error; nil when there is nothing
// to run.
func Chain(first ControlFunc, then []ControlFunc) ControlFunc {
	if len(then) == 0 {
		return first
	}
	return func(network, address string, c syscall.RawConn) error {
		if first != nil {
			if err := first(network, address, c); err != nil {
				return err
			}
		}
		for _, f := range then {
			if err := f(network, address, c); err != nil {
				return err
			}
		}
		return nil
	}
}

// Dedupe drops repeats of an identical option, keeping the first (Validate
// has already refused two values for one socket option).
func Dedupe(opts []sockopt.Option) []sockopt.Option {
	var out []sockopt.Option
	for _, o := range opts {
		if !contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

func contains(opts []sockopt.Option, o sockopt.Option) bool {
	for _, p := range opts {
		if p == o {
			return true
		}
	}
	return false
}

// Validate runs sockopt.Validate on the socket options of set and, when it
// fails, returns the entry's option that the *sockopt.Error names (the zero
// O if none does) with the error.
func Validate[O comparable](set []Entry[O]) (O, error) {
	var zero O
	all := make([]sockopt.Option, len(set))
	for i, e := range set {
		all[i] = e.Sockopt
	}
	err := sockopt.Validate(all...)
	if err == nil {
		return zero, nil
	}
	var se *sockopt.Error
	if errors.As(err, &se) {
		// The last entry with that option: the one that disagreed.
		for i := len(set) - 1; i >= 0; i-- {
			if set[i].Sockopt == se.Option {
				return set[i].From, err
			}
		}
	}
	return zero, err
}

// Matching returns the options of set whose socket option satisfies pred,
// once each, in order.
func Matching[O comparable](set []Entry[O], pred func(sockopt.Option) bool) []O {
	var out []O
	for _, e := range set {
		if pred(e.Sockopt) && !slicesContains(out, e.From) {
			out = append(out, e.From)
		}
	}
	return out
}

func slicesContains[O comparable](s []O, o O) bool {
	for _, x := range s {
		if x == o {
			return true
		}
	}
	return false
}

// ErrMPTCPConflict is the Err of MultipathTCP(true) refused for TCP-only
// socket options.
var ErrMPTCPConflict = errors.New("a Multipath TCP socket refuses these options, ignores them or does not pass them on to accepted connections " +
	"(drop them, or leave MultipathTCP out so that plain TCP is used)")

// ErrKeepAliveConflict is the Err of KeepAliveConfig refused together with
// keepalive socket options.
var ErrKeepAliveConflict = errors.New("keep-alive configured two ways: use KeepAliveConfig alone")

// IsKeepAlive reports whether o is one of the socket options that a
// net.KeepAliveConfig stands for: SO_KEEPALIVE, TCP_KEEPIDLE,
// TCP_KEEPINTVL, TCP_KEEPCNT.
func IsKeepAlive(o sockopt.Option) bool {
	switch o.(type) {
	case sockopt.KeepAlive, sockopt.KeepAliveIdle, sockopt.KeepAliveInterval, sockopt.KeepAliveCount:
		return true
	}
	return false
}

// Limits Linux puts on keepalive settings (MAX_TCP_KEEPIDLE,
// MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT), applied on every platform so that a
// configuration behaves the same wherever it runs.
const (
	maxKeepAliveSeconds = 32767
	maxKeepAliveCount   = 127
)

// CheckKeepAlive checks cfg as KeepAliveConfig takes it: Enable false with
// a field set is refused (net would keep keep-alive on with its defaults
// and ignore the fields, which is never what the caller meant), and the
// fields must fit the kernel's units and limits.
func CheckKeepAlive(cfg net.KeepAliveConfig) error {
	if !cfg.Enable {
		if cfg.Idle != 0 || cfg.Interval != 0 || cfg.Count != 0 {
			//lint:ignore ST1005 the message starts with the name of net.KeepAliveConfig's field
			return errors.New("Enable is false but Idle/Interval/Count are set: " +
				"set Enable: true to use them, or leave them zero to turn keep-alive off")
		}
		return nil
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"Idle", cfg.Idle}, {"Interval", cfg.Interval}} {
		switch {
		case f.d <= 0:
		case f.d%time.Second != 0:
			return fmt.Errorf("%s %v is not a whole number of seconds (the kernel counts seconds)", f.name, f.d)
		case f.d > maxKeepAliveSeconds*time.Second:
			return fmt.Errorf("%s %v exceeds the kernel's maximum %v", f.name, f.d, maxKeepAliveSeconds*time.Second)
		}
	}
	if cfg.Count > maxKeepAliveCount {
		//lint:ignore ST1005 the message starts with the name of net.KeepAliveConfig's field
		return fmt.Errorf("Count %d exceeds the kernel's maximum %d", cfg.Count, maxKeepAliveCount)
	}
	return nil
}

// Go's keepalive defaults, documented at net.KeepAliveConfig.
const (
	goKeepAliveIdle     = 15 * time.Second
	goKeepAliveInterval = 15 * time.Second
	goKeepAliveCount    = 9
)

// KeepAliveOptions returns the socket options that cfg (checked by
// CheckKeepAlive) stands for, with net's meaning: SO_KEEPALIVE off when
// Enable is false; otherwise SO_KEEPALIVE on, zero fields taking Go's
// defaults (15s, 15s, 9) and negative ones leaving the system's value.
func KeepAliveOptions(cfg net.KeepAliveConfig) []sockopt.Option {
	if !cfg.Enable {
		return []sockopt.Option{sockopt.KeepAlive(false)}
	}
	opts := []sockopt.Option{sockopt.KeepAlive(true)}
	if cfg.Idle >= 0 {
		opts = append(opts, sockopt.KeepAliveIdle(cmp.Or(cfg.Idle, goKeepAliveIdle)))
	}
	if cfg.Interval >= 0 {
		opts = append(opts, sockopt.KeepAliveInterval(cmp.Or(cfg.Interval, goKeepAliveInterval)))
	}
	if cfg.Count >= 0 {
		opts = append(opts, sockopt.KeepAliveCount(cmp.Or(cfg.Count, goKeepAliveCount)))
	}
	return opts
}

// KeepAliveString prints cfg for an option's String, in Go's composite
// literal syntax: "net.KeepAliveConfig{Enable:true, Idle:30s, …}".
func KeepAliveString(cfg net.KeepAliveConfig) string {
	return fmt.Sprintf("net.KeepAliveConfig{Enable:%t, Idle:%v, Interval:%v, Count:%d}", cfg.Enable, cfg.Idle, cfg.Interval, cfg.Count)
}
