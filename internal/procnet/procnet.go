// Package procnet reads the counter tables of Linux's /proc/net/netstat and
// /proc/net/snmp: each section is a line of names and then a line of as many
// values, both starting with the section's name and a colon ("TcpExt:").
//
// sockopt's System report, the examples' lab reports and the tests that
// count TCP events read their counters through it, so that one parser, fuzzed
// once, serves them all.
package procnet

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Parse returns the counters of section (such as "TcpExt", without the
// colon) of the contents of a /proc/net/netstat or /proc/net/snmp file. A
// value that does not parse as an unsigned integer is left out; a section
// that is missing, has no line of values, or has more or fewer values than
// names is an error naming the section.
func Parse(data, section string) (map[string]uint64, error) {
	prefix := section + ":"
	lines := strings.Split(data, "\n")
	for i, line := range lines {
		names, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		if i+1 >= len(lines) {
			return nil, fmt.Errorf("procnet: %s names without a line of values", prefix)
		}
		values, ok := strings.CutPrefix(lines[i+1], prefix)
		if !ok {
			return nil, fmt.Errorf("procnet: %s names without a line of values", prefix)
		}
		n, v := strings.Fields(names), strings.Fields(values)
		if len(n) != len(v) {
			return nil, fmt.Errorf("procnet: %s has %d names and %d values", prefix, len(n), len(v))
		}
		out := make(map[string]uint64, len(n))
		for j := range n {
			if x, err := strconv.ParseUint(v[j], 10, 64); err == nil {
				out[n[j]] = x
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("procnet: no %s section", prefix)
}

// Counter reads one counter, such as ("TcpExt", "ListenOverflows"), from
// the file at path. The network namespace is the one of the file: a
// goroutine locked to a thread that entered another namespace reads
// /proc/thread-self/net/netstat, since /proc/net is the thread group
// leader's.
func Counter(path, section, name string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	c, err := Parse(string(b), section)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	v, ok := c[name]
	if !ok {
		return 0, fmt.Errorf("procnet: %s: no %s %s counter", path, section, name)
	}
	return v, nil
}
