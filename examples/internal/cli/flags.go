package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// A FlagSet defines and parses the flags of one example program, so that
// every program prints the same -h layout and refuses a bad value with the
// same message: the flag, the value as given, and what the flag takes,
//
//	-rate "abc": want requests per second: a number from 0 to 1e9
//
// Each flag checks its value when it is parsed, so a program only ever
// sees values it can use; a check that involves two flags comes after
// Parse, as a Usagef error. Boolean flags are switches, as in the flag
// package: -json turns one on, -hist=false turns one off.
type FlagSet struct {
	fs       *flag.FlagSet
	about    string
	synopsis []string
	refused  error // the *UsageError of the value a Set refused
}

// NewFlagSet returns the FlagSet of the program name. Its -h text, written
// to output, is the synopsis lines, the about paragraph and the flags:
//
//	usage: name synopsis[0]
//	       name synopsis[1]
//
//	about
//
//	flags:
//	  -flag value
//	    	usage (default …)
func NewFlagSet(name string, output io.Writer, about string, synopsis ...string) *FlagSet {
	f := &FlagSet{fs: flag.NewFlagSet(name, flag.ContinueOnError), about: about, synopsis: synopsis}
	f.fs.SetOutput(output)
	f.fs.Usage = f.usage
	return f
}

// A FlagError is a flag value that was refused.
type FlagError struct {
	Flag  string // the flag's name, without the dash
	Value string // the value as given
	Want  string // what the flag takes
	Err   error  // why the value was refused, where that says more than Want; may be nil
}

// Error returns `-flag "value": want …`, followed by ": " and Err when
// there is one.
func (e *FlagError) Error() string {
	s := fmt.Sprintf("-%s %q: want %s", e.Flag, e.Value, e.Want)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err, such as a *sockopt.Error.
func (e *FlagError) Unwrap() error { return e.Err }

// errNoDetail is what a flag's set function returns when the flag's want
// text says all there is to say about a refused value.
var errNoDetail = errors.New("no detail")

// flagValue is the flag.Value of every flag a FlagSet defines.
type flagValue struct {
	f    *FlagSet
	name string
	arg  string             // what -h calls the value; "" for a switch
	want string             // what the flag takes
	set  func(string) error // parses and stores a value
	get  func() string      // the value stored
}

func (v *flagValue) String() string {
	if v == nil || v.get == nil {
		return ""
	}
	return v.get()
}

func (v *flagValue) Set(s string) error {
	err := v.set(s)
	if err == nil {
		return nil
	}
	if errors.Is(err, errNoDetail) {
		err = nil
	}
	v.f.refused = &UsageError{&FlagError{Flag: v.name, Value: s, Want: v.want, Err: err}}
	return v.f.refused
}

// IsBoolFlag tells the flag package that a switch needs no value.
func (v *flagValue) IsBoolFlag() bool { return v.arg == "" }

func (f *FlagSet) define(name, arg, want, usage string, set func(string) error, get func() string) {
	f.fs.Var(&flagValue{f: f, name: name, arg: arg, want: want, set: set, get: get}, name, usage)
}

// Int defines a flag for a whole number from lo to hi; hi math.MaxInt
// means no upper bound.
func (f *FlagSet) Int(p *int, name string, value, lo, hi int, usage string) {
	*p = value
	want := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	if hi == math.MaxInt {
		want = fmt.Sprintf("a whole number, %d or more", lo)
	}
	f.define(name, "int", want, usage, func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return errNoDetail
		}
		*p = n
		return nil
	}, func() string { return strconv.Itoa(*p) })
}

// Float defines a flag for a finite number that ok accepts; want says
// what the number is and which ones ok accepts.
func (f *FlagSet) Float(p *float64, name string, value float64, want string, ok func(float64) bool, usage string) {
	*p = value
	f.define(name, "float", want, usage, func(s string) error {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || !ok(x) {
			return errNoDetail
		}
		*p = x
		return nil
	}, func() string { return strconv.FormatFloat(*p, 'g', -1, 64) })
}

// AnyDuration, as the least value of a Duration flag, lets it take
// negative durations too.
const AnyDuration time.Duration = math.MinInt64

// Duration defines a flag for a duration, such as 5s or 250ms, of at least
// lo (0: not negative; 1: positive; AnyDuration: any).
func (f *FlagSet) Duration(p *time.Duration, name string, value, lo time.Duration, usage string) {
	*p = value
	want := "a duration such as 5s or 250ms"
	switch {
	case lo == 0:
		want += ", 0 or more"
	case lo == 1:
		want = "a positive duration such as 5s or 250ms"
	case lo != AnyDuration:
		want += ", " + lo.String() + " or more"
	}
	f.define(name, "duration", want, usage, func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < lo {
			return errNoDetail
		}
		*p = d
		return nil
	}, func() string { return p.String() })
}

// Bool defines a switch: -name turns it on, -name=false off.
func (f *FlagSet) Bool(p *bool, name string, value bool, usage string) {
	*p = value
	f.define(name, "", "true or false", usage, func(s string) error {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errNoDetail
		}
		*p = b
		return nil
	}, func() string { return strconv.FormatBool(*p) })
}

// String defines a flag for any string.
func (f *FlagSet) String(p *string, name, value, usage string) {
	*p = value
	f.define(name, "string", "a string", usage, func(s string) error {
		*p = s
		return nil
	}, func() string { return *p })
}

// DialAddr defines a flag for an address to connect to: host:port with a
// host, and a port number from 1 to 65535. The empty string, as a default,
// means none was given.
func (f *FlagSet) DialAddr(p *string, name, value, usage string) {
	f.addr(p, name, value, "host:port, with a port number from 1 to 65535", false, usage)
}

// ListenAddr defines a flag for an address to listen on: host:port or
// :port, with a port number from 0 (any free port) to 65535.
func (f *FlagSet) ListenAddr(p *string, name, value, usage string) {
	f.addr(p, name, value, "host:port or :port, with a port number from 0 (any free one) to 65535", true, usage)
}

func (f *FlagSet) addr(p *string, name, value, want string, listen bool, usage string) {
	*p = value
	f.define(name, "host:port", want, usage, func(s string) error {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return err
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || (!listen && (host == "" || n == 0)) {
			return errNoDetail
		}
		*p = s
		return nil
	}, func() string { return *p })
}

// Func defines a flag whose values go to set, which stores them and
// returns an error for a value it refuses: the flag's error then says
// what the flag wants, followed by set's error when it is not nil. arg
// names the value in -h; an empty arg makes the flag a switch, which set
// sees as "true" (-name) or as the value after = (-name=false).
func (f *FlagSet) Func(name, arg, want, usage string, set func(string) error) {
	f.define(name, arg, want, usage, set, nil)
}

// Sockopts defines a repeatable flag of socket options, each NAME=value
// as sockopt.Parse reads it, appended to p in the order given.
func (f *FlagSet) Sockopts(p *Sockopts, name, usage string) {
	f.define(name, "NAME=value", "NAME=value, as sockopt.Parse reads it (TCP_USER_TIMEOUT=5s, SO_RCVBUF=262144)",
		usage, p.Set, p.String)
}

// Given reports whether the command line set the flag name.
func (f *FlagSet) Given(name string) bool {
	given := false
	f.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == name })
	return given
}

// Parse parses args and refuses positional arguments. A bad flag or value
// is a *UsageError (one for a refused value wraps a *FlagError); -h prints
// the usage to the FlagSet's output and returns flag.ErrHelp. The flag
// package's own messages, which would repeat the whole usage, are not
// printed.
func (f *FlagSet) Parse(args []string) error {
	out := f.fs.Output()
	f.fs.SetOutput(io.Discard)
	err := f.fs.Parse(args)
	f.fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		f.fs.Usage()
		return err
	case err != nil && f.refused != nil:
		return f.refused
	case err != nil:
		return &UsageError{err}
	case f.fs.NArg() > 0:
		return f.positional(args)
	}
	return nil
}

// positional is the error for the first positional argument. After a
// switch, a true or false is a value given the way other flags take one:
// the error says how a switch takes it.
func (f *FlagSet) positional(args []string) error {
	arg := f.fs.Arg(0)
	if i := len(args) - f.fs.NArg(); i > 0 {
		if _, err := strconv.ParseBool(arg); err == nil {
			name := strings.TrimLeft(args[i-1], "-")
			if fl := f.fs.Lookup(name); fl != nil && strings.HasPrefix(args[i-1], "-") && fl.Value.(*flagValue).IsBoolFlag() {
				return Usagef("unexpected argument %q: -%s is a switch: write -%s=%s", arg, name, name, arg)
			}
		}
	}
	return Usagef("unexpected argument %q: flags start with -", arg)
}

// usage prints the -h text.
func (f *FlagSet) usage() {
	w := f.fs.Output()
	for i, s := range f.synopsis {
		lead := "usage:"
		if i > 0 {
			lead = "      "
		}
		fmt.Fprintf(w, "%s %s %s\n", lead, f.fs.Name(), s)
	}
	fmt.Fprintf(w, "\n%s\n\nflags:\n", f.about)
	f.fs.VisitAll(func(fl *flag.Flag) {
		arg, usage := flag.UnquoteUsage(fl)
		if arg == "value" { // no `name` in the usage: the value's kind
			arg = fl.Value.(*flagValue).arg
		}
		line := "  -" + fl.Name
		if arg != "" {
			line += " " + arg
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		switch fl.DefValue {
		case "", "0", "0s", "false":
		default:
			line += " (default " + fl.DefValue + ")"
		}
		fmt.Fprintln(w, line)
	})
}
