// Package opterr formats the OptionError of every nettune package the same
// way, so that a refused option reads alike whichever package refused it.
package opterr

import (
	"fmt"
	"strings"
)

// Message is the text of an OptionError: "<option>: <err>" and, with
// conflicts, " (conflicts with <a>, <b>)". The option prints itself as the
// call that made it, package included ("pool.MaxSize(0)"), so no further
// prefix is added; pkg ("dialer") stands in for the option when there is
// none to name (isNil).
func Message[O fmt.Stringer](pkg string, option O, isNil bool, conflicts []O, err error) string {
	var b strings.Builder
	if isNil {
		b.WriteString(pkg)
	} else {
		b.WriteString(option.String())
	}
	b.WriteString(": ")
	if err != nil {
		b.WriteString(err.Error())
	}
	if len(conflicts) > 0 {
		b.WriteString(" (conflicts with ")
		b.WriteString(List(conflicts))
		b.WriteString(")")
	}
	return b.String()
}

// List prints opts separated by ", ".
func List[O fmt.Stringer](opts []O) string {
	s := make([]string, len(opts))
	for i, o := range opts {
		s[i] = o.String()
	}
	return strings.Join(s, ", ")
}
