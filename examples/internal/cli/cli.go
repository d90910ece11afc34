// Package cli holds what the example programs share: the main wrapper
// with its exit statuses, flag parsing that tells bad usage apart, a
// repeatable socket-option flag, and aligned latency tables.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/sockopt"
)

// UsageError is an error in the command line: bad flags or option values.
// Programs exit with status 2 for it.
type UsageError struct{ Err error }

// Error returns the message of the underlying error.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error, such as a *sockopt.Error.
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// ExitCode is the exit status for run's error: 0 for success and -h, 2 for
// a *UsageError, 1 for anything else.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}

// Main runs run with the process's arguments and a context cancelled by
// SIGINT or SIGTERM, reports its error with Exit, and exits with Exit's
// status.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(Exit(os.Stderr, name, err))
}

// Exit writes run's error to w the way every example program reports one,
// on one line and without a stack trace, and returns the exit status for
// it (see ExitCode):
//
//	name: -rate "abc": want requests per second, … (see name -h)   a *UsageError: status 2
//	name: target 127.0.0.1:7: dial tcp …: connection refused        any other error: status 1
//
// It writes nothing for nil, nor for flag.ErrHelp, after which the usage
// was printed.
func Exit(w io.Writer, name string, err error) int {
	code := ExitCode(err)
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
	case code == 2:
		fmt.Fprintf(w, "%s: %v (see %s -h)\n", name, err, name)
	default:
		fmt.Fprintf(w, "%s: %v\n", name, err)
	}
	return code
}

// Sockopts is a repeatable flag of socket options, each NAME=value as
// sockopt.Parse reads it.
type Sockopts []sockopt.Option

// String lists the options, comma-separated.
func (f *Sockopts) String() string {
	if f == nil {
		return ""
	}
	s := make([]string, len(*f))
	for i, o := range *f {
		s[i] = o.String()
	}
	return strings.Join(s, ",")
}

// Set parses one option and appends it.
func (f *Sockopts) Set(v string) error {
	o, err := sockopt.Parse(v)
	if err != nil {
		return err
	}
	*f = append(*f, o)
	return nil
}

// Duration prints d with three significant digits: 812ns, 21.3µs, 1.25ms.
// Values are rounded before the unit and the decimals are chosen, so that
// 999.6µs prints as 1.00ms and 99.96ms as 100ms.
func Duration(d time.Duration) string {
	var v float64
	var unit string
	switch {
	case d < 1000:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < 999_500:
		v, unit = float64(d)/1e3, "µs"
	case d < 999_500_000:
		v, unit = float64(d)/1e6, "ms"
	default:
		v, unit = float64(d)/1e9, "s"
	}
	switch {
	case v < 9.995:
		return strconv.FormatFloat(v, 'f', 2, 64) + unit
	case v < 99.95:
		return strconv.FormatFloat(v, 'f', 1, 64) + unit
	default:
		return strconv.FormatFloat(v, 'f', 0, 64) + unit
	}
}

// Ratio prints x as a speed-up factor ("4.2×"), or "-" for 0.
func Ratio(x float64) string {
	if x == 0 {
		return "-"
	}
	return strconv.FormatFloat(x, 'f', 1, 64) + "×"
}

// Speedup is base/with at quantile q, or 0 when with is 0 there.
func Speedup(base, with *latency.Snapshot, q float64) float64 {
	b, w := base.Quantile(q), with.Quantile(q)
	if w <= 0 {
		return 0
	}
	return float64(b) / float64(w)
}

// Quantiles are the columns of a latency table.
var Quantiles = []struct {
	Label string
	Q     float64
}{{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}, {"p99.9", 0.999}}

// LatencyRow is one row of a latency table.
type LatencyRow struct {
	Title  string
	Snap   *latency.Snapshot
	Failed int
}

// WriteLatencyTable prints samples, failures, p50, p95, p99, p99.9 and max
// for each row.
func WriteLatencyTable(w io.Writer, rows []LatencyRow) {
	head := []string{"", "samples", "failed"}
	for _, q := range Quantiles {
		head = append(head, q.Label)
	}
	table := [][]string{append(head, "max")}
	for _, r := range rows {
		row := []string{r.Title, strconv.FormatUint(r.Snap.Count(), 10), strconv.Itoa(r.Failed)}
		for _, q := range Quantiles {
			row = append(row, cell(r.Snap, r.Snap.Quantile(q.Q)))
		}
		table = append(table, append(row, cell(r.Snap, r.Snap.Max())))
	}
	WriteTable(w, table)
}

func cell(s *latency.Snapshot, d time.Duration) string {
	if s.Count() == 0 {
		return "-"
	}
	return Duration(d)
}

// WriteTable prints rows aligned, indented by two spaces: the first column
// left-aligned, the others right-aligned.
func WriteTable(w io.Writer, rows [][]string) {
	var width []int
	for _, row := range rows {
		for i, c := range row {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		b.WriteString("  ")
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
