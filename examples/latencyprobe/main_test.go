package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nettune/nettune/internal/servetest"
	"github.com/nettune/nettune/internal/tlstest"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/examples/internal/echo"
	"github.com/nettune/nettune/netlab"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tiny keeps every run quick: a handful of samples per measurement, on
// loopback.
var tiny = []string{"-loopback", "-n", "30", "-tls-n", "5", "-nagle-n", "2", "-warmup", "1"}

// quick is tiny without the techniques that wait out a timeout (eyeballs,
// backlog), for the tests of the plot file.
var quick = append([]string{"-techniques", "pool,tls,nagle,dns,http2"}, tiny...)

// loopbackSeries are the series a loopback run measures (each technique's
// without, with, then its extras), TCP Fast Open's
// aside (it runs only where this host's net.ipv4.tcp_fastopen is 3).
var loopbackSeries = []string{"tcp_fresh", "tcp_pooled", "tls_full", "tls_pooled", "tls_resumed",
	"nagle_on", "nagle_off", "nagle_writev", "dns_lookup", "dns_cached",
	"eyeballs_serial", "eyeballs_dialer", "backlog_4", "backlog_1024", "http1", "http2"}

// seriesNames lists the series of a JSON report, without tfo's.
func seriesNames(rep jsonReport) []string {
	var names []string
	for _, s := range rep.Series {
		if s.Name != "tfo" {
			names = append(names, s.Name)
		}
	}
	return names
}

func runProbe(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// rowPattern matches a table row: a title, samples, failures and five
// durations (p50, p95, p99, p99.9, max).
var rowPattern = regexp.MustCompile(`^  (\S.*?)\s+(\d+)\s+(\d+)((?:\s+\S+){5})$`)

// tableRows returns the durations of each table row, by title.
func tableRows(t *testing.T, out string) map[string][]time.Duration {
	t.Helper()
	rows := map[string][]time.Duration{}
	for line := range strings.SplitSeq(out, "\n") {
		m := rowPattern.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var ds []time.Duration
		for _, f := range strings.Fields(m[4]) {
			d, err := time.ParseDuration(f)
			if !assert.NoError(t, err, "row %q: %q is not a duration", m[1], f) {
				return rows
			}
			ds = append(ds, d)
		}
		rows[m[1]] = ds
	}
	return rows
}

func TestTheComparisonRunPrintsEveryTechniqueWithPercentilesThatParse(t *testing.T) {
	out, stderr, err := runProbe(t, tiny...)
	require.NoError(t, err, "stderr: %s", stderr)

	for _, section := range []string{
		"== Summary", "== Preflight", "== pool: ", "== tls: ", "== nagle: ", "== dns: ",
		"speed-up:", "DNS queries sent:", "resolver outage",
	} {
		assert.Contains(t, out, section, "the output should have the section %q", section)
	}
	assert.Less(t, strings.Index(out, "== Summary"), strings.Index(out, "== pool: "), "the summary comes first")
	rows := tableRows(t, out)
	for _, title := range []string{
		"fresh TCP connection per request", "pooled TCP connection",
		"fresh TLS connection, full handshake", "fresh TLS connection, resumed session", "pooled TLS connection",
		"Nagle on (TCP_NODELAY=false), two writes", "Nagle off (Go's default), two writes", "Nagle on, one writev (net.Buffers)",
		"DNS lookup on every dial", "DNS cache hit (dnscache)",
		"cached addresses one after the other", "nettune dialer over the cache",
		"32 connects at once, backlog 4", "32 connects at once, backlog 1024",
		"HTTP/1.1 (http.Transport defaults)", "HTTP/2, one multiplexed connection",
	} {
		ds, ok := rows[title]
		if !assert.True(t, ok, "the output should have a table row for %q", title) {
			continue
		}
		for i := 1; i < len(ds); i++ {
			assert.LessOrEqual(t, ds[i-1], ds[i], "%q: percentiles and max should not decrease: %v", title, ds)
		}
		assert.Positive(t, ds[0], "%q: p50 should be positive", title)
	}
	for _, name := range []string{"deadpeer", "buffers", "congestion"} {
		assert.Regexp(t, "(?m)^  "+name+" +\\S", out[strings.Index(out, "Not measured"):], "%s is listed as not measured, with the reason", name)
	}
	assert.NotContains(t, out, "count=30 ", "histograms only with -hist")
	assert.Contains(t, stderr, "] fresh TCP connection per request", "progress should go to stderr")
	assert.NotContains(t, out, "[1/", "progress should never go to stdout")

	out, stderr, err = runProbe(t, append([]string{"-hist", "-techniques", "pool"}, tiny...)...)
	require.NoError(t, err, "stderr: %s", stderr)
	assert.Contains(t, out, "count=30 ", "-hist prints the histograms with their counts")
}

func TestTheComparisonRunWithJSONPrintsOnlyValidJSONWithTheStableFields(t *testing.T) {
	out, stderr, err := runProbe(t, append([]string{"-json"}, tiny...)...)
	require.NoError(t, err, "stderr: %s", stderr)

	var rep jsonReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&rep), "stdout should be one JSON document:\n%s", out)
	assert.False(t, dec.More(), "stdout should hold nothing after the JSON document")

	assert.Equal(t, "compare", rep.Mode)
	assert.Equal(t, "closed", rep.Loop)
	for _, s := range rep.Series {
		assert.Positive(t, s.Samples, "%s should have samples", s.Name)
		assert.Positive(t, s.P50NS, "%s should have a p50", s.Name)
		assert.LessOrEqual(t, s.P50NS, s.P99NS, "%s: p50 <= p99", s.Name)
		assert.LessOrEqual(t, s.P999NS, s.MaxNS, "%s: p99.9 <= max", s.Name)
	}
	assert.Equal(t, loopbackSeries, seriesNames(rep))
	checkJSONShape(t, out, false)
	for _, jt := range rep.Techniques {
		if jt.Name == "dns" {
			require.NotNil(t, jt.Outage, "dns reports the resolver outage")
			assert.Equal(t, jt.Outage.Lookups, jt.Outage.FailedWithout, "without the cache every lookup fails while the resolver is down")
			assert.Zero(t, jt.Outage.FailedWith, "serve-stale answers every lookup")
		}
	}
}

// checkJSONShape checks the document's path and techniques by their raw
// field names, which are the contract other tools read.
func checkJSONShape(t *testing.T, out string, lab bool) map[string]map[string]any {
	t.Helper()
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	for _, key := range []string{"mode", "series", "path", "techniques", "go_version", "timeout_ns", "elapsed_ns"} {
		assert.Contains(t, raw, key)
	}
	path := raw["path"].(map[string]any)
	for _, key := range []string{"rtt_ns", "loss", "rate_bps", "lab"} {
		assert.Contains(t, path, key, "path")
	}
	assert.Equal(t, lab, path["lab"], "path.lab")
	byName := map[string]map[string]any{}
	var names []string
	for _, item := range raw["techniques"].([]any) {
		tech := item.(map[string]any)
		name := tech["name"].(string)
		names = append(names, name)
		byName[name] = tech
		require.Contains(t, tech, "skipped", name)
		if tech["skipped"] != "" {
			assert.Nil(t, tech["without"], "%s: skipped, so no figures", name)
			continue
		}
		_, latencyFloor := tech["floor_ns"]
		_, rateFloor := tech["floor_bps"]
		assert.True(t, latencyFloor != rateFloor, "%s has floor_ns or floor_bps: %v", name, tech)
		for _, s := range []string{"without", "with"} {
			side, ok := tech[s].(map[string]any)
			if !assert.True(t, ok, "%s.%s is an object", name, s) {
				continue
			}
			for _, key := range []string{"p50_ns", "p99_ns"} {
				assert.Contains(t, side, key, "%s.%s", name, s)
			}
			if rateFloor {
				assert.Contains(t, side, "bps", "%s.%s: a throughput technique", name, s)
			}
		}
	}
	assert.Equal(t, techniqueNames, names, "every technique is listed, in order, run or skipped with the reason")
	return byName
}

func TestWithoutTheLabTheRunFallsBackToLoopbackAndSaysWhyInOneLine(t *testing.T) {
	noLab := func(...netlab.Option) (*netlab.Lab, error) {
		return nil, fmt.Errorf("%w: run as root", netlab.ErrNoPrivilege)
	}
	args := []string{"-n", "5", "-tls-n", "2", "-nagle-n", "2", "-warmup", "1", "-techniques", "pool,deadpeer"}
	var out, stderr bytes.Buffer
	require.NoError(t, runWith(context.Background(), args, &out, &stderr, noLab), "stderr: %s", stderr.String())
	var why []string
	for line := range strings.SplitSeq(out.String(), "\n") {
		if strings.Contains(line, "lab was not available") {
			why = append(why, line)
		}
	}
	require.Len(t, why, 1, "one line says why:\n%s", out.String())
	assert.Contains(t, why[0], netlab.ErrNoPrivilege.Error(), "it quotes netlab's error")
	assert.Contains(t, why[0], "run as root", "it says how to get the lab")
	assert.Contains(t, out.String(), "Path: loopback")
	assert.Contains(t, out.String(), "== pool: ")
	assert.Contains(t, out.String(), "deadpeer   needs the lab")

	out.Reset()
	require.NoError(t, runWith(context.Background(), append([]string{"-json", "-quiet"}, args...), &out, io.Discard, noLab))
	var rep jsonReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	require.NotNil(t, rep.Path)
	assert.False(t, rep.Path.Lab)
	assert.Contains(t, rep.Path.Why, netlab.ErrNoPrivilege.Error())
	assert.Zero(t, rep.Path.RTTNS, "loopback has no configured RTT")

	// Asking for a path, the run needs the lab and fails without it.
	err := runWith(context.Background(), append([]string{"-rtt", "50ms"}, args...), io.Discard, io.Discard, noLab)
	assert.ErrorIs(t, err, netlab.ErrNoPrivilege)
	assert.Equal(t, 1, cli.ExitCode(err))
}

func TestAnOpenLoopRunWhoseGeneratorFallsBehindSaysSoAndDrawsNoConclusion(t *testing.T) {
	// A million requests a second: no fresh TLS connection keeps up.
	args := []string{"-loopback", "-rate", "1000000", "-techniques", "tls", "-n", "20", "-tls-n", "20", "-warmup", "1", "-quiet"}
	out, _, err := runProbe(t, args...)
	require.NoError(t, err)
	assert.Contains(t, out, "WARNING: at -rate 1e+06/s the load generator fell behind")
	assert.Contains(t, out, "no conclusion")
	out, _, err = runProbe(t, append([]string{"-json"}, args...)...)
	require.NoError(t, err)
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Len(t, rep.Techniques, 1)
	assert.True(t, rep.Techniques[0].Behind, "generator_behind is set")
}

func TestTheComparisonRunsOpenLoopWithRate(t *testing.T) {
	out, stderr, err := runProbe(t, append([]string{"-json", "-rate", "5000", "-quiet"}, tiny...)...)
	require.NoError(t, err, "stderr: %s", stderr)
	assert.Empty(t, stderr, "-quiet prints no progress")
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, "open", rep.Loop)
	assert.Equal(t, 5000.0, rep.RatePerSec)
	assert.Equal(t, loopbackSeries, seriesNames(rep))
	for _, s := range rep.Series {
		assert.Positive(t, s.Samples, "%s should have samples in open loop too", s.Name)
	}
}

func TestPlotWritesAWellFormedSVGWithOneLinePerMeasurement(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plot.svg")
	out, stderr, err := runProbe(t, append([]string{"-plot", path, "-json"}, quick...)...)
	require.NoError(t, err, "stderr: %s", stderr)
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	dec := xml.NewDecoder(f)
	var root string
	lines := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "the SVG should be well-formed XML")
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
				assert.Equal(t, "http://www.w3.org/2000/svg", se.Name.Space)
			}
			if se.Name.Local == "polyline" {
				lines++
			}
		}
	}
	assert.Equal(t, "svg", root)
	assert.Equal(t, len(rep.Series), lines, "one line per measured series")
}

func TestBadFlagsFailWithExitStatusTwoAndNothingOnStdout(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"},
		{"-no-such-flag"},
		{"-sockopt", "TCP_NO_SUCH_OPTION=1"},
		{"-sockopt", "TCP_USER_TIMEOUT=-1s"},
		{"-tls"},
		{"-rcvbuf", "1024"},
		{"-target", "no-port"},
		{"-target", "127.0.0.1:0"},
		{"-target", "127.0.0.1:70000"},
		{"-target", "127.0.0.1:9", "-rcvbuf", "-5"},
		{"-target", "127.0.0.1:9", "-sockopt", "TCP_DEFER_ACCEPT=1s"}, // a listening-socket option
		{"-target", "127.0.0.1:9", "-nagle-n", "3"},
		{"-target", "127.0.0.1:9", "-insecure"},
		{"-rate", "-1"},
		{"-timeout", "0s"},
		{"-size", "1"},
		{"-plot", filepath.Join(t.TempDir(), "no-such-dir", "plot.svg")}, // refused before measuring
		{"-preset", "moon"},
		{"-loss", "2"},
		{"-bandwidth", "fast"},
		{"-rtt", "-5ms"},
		{"-techniques", "pool,teleport"},
		{"-loopback", "-rtt", "10ms"},
		{"-jitter", "40ms"}, // more than the preset's 30 ms delay
		{"-target", "127.0.0.1:9", "-preset", "lan"},
		{"-target", "127.0.0.1:9", "-techniques", "pool"},
		{"extra"},
	} {
		out, stderr, err := runProbe(t, args...)
		var ue *cli.UsageError
		assert.ErrorAs(t, err, &ue, "%v should be refused as bad usage", args)
		assert.Equal(t, 2, cli.ExitCode(err), "%v: exit status", args)
		assert.Empty(t, out, "%v: nothing on stdout", args)
		assert.NotContains(t, stderr, "goroutine ", "%v: no stack trace", args)
	}
}

func TestHelpExitsZero(t *testing.T) {
	_, stderr, err := runProbe(t, "-h")
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, cli.ExitCode(err))
	assert.Contains(t, stderr, "-target", "help should list the flags")
	assert.True(t, strings.HasPrefix(stderr, "usage: latencyprobe [flags]\n"), "help starts with the shared usage line:\n%s", stderr)
	assert.Contains(t, stderr, "\n\nflags:\n  -", "help lists the flags under the shared heading:\n%s", stderr)
}

func TestEveryBooleanFlagIsASwitch(t *testing.T) {
	for _, args := range [][]string{
		{"-nodelay"}, {"-quickack"}, {"-fastopen"}, {"-mptcp"}, {"-tls"}, {"-tls", "-insecure"}, {"-connect-only"},
		{"-json"}, {"-quiet"}, {"-hist"},
		{"-nodelay=false"}, {"-quickack=false"}, {"-fastopen=false"}, {"-mptcp=false"}, {"-hist=false"},
	} {
		_, err := parseFlags(append([]string{"-target", "127.0.0.1:9"}, args...), io.Discard)
		assert.NoError(t, err, "%v should be a switch, needing no value", args)
	}
	// A value after a switch, as other flags take it, is refused with the
	// way to write it.
	_, err := parseFlags([]string{"-target", "127.0.0.1:9", "-nodelay", "false"}, io.Discard)
	var ue *cli.UsageError
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), "-nodelay=false", "the error shows how a switch takes a value")
}

func TestSwitchShortcutsSetTheirSocketOptionOnOrOff(t *testing.T) {
	addr := startTestEcho(t, false)
	out, stderr, err := runProbe(t, "-target", addr, "-n", "3", "-warmup", "0", "-json", "-quiet",
		"-nodelay", "-quickack=false", "-fastopen=false")
	require.NoError(t, err, "stderr: %s", stderr)
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.NotNil(t, rep.Target)
	assert.Equal(t, []string{"TCP_NODELAY=true", "TCP_QUICKACK=false", "TCP_FASTOPEN_CONNECT=false"}, rep.Target.Options)
}

func TestABadFlagValueSaysTheFlagTheValueAndWhatTheFlagWants(t *testing.T) {
	for _, args := range [][]string{
		{"-rate", "abc"}, {"-rate", "-1"}, {"-rate", "NaN"}, {"-n", "0"}, {"-n", "many"}, {"-tls-n", "0"},
		{"-nagle-n", "x"}, {"-warmup", "-1"}, {"-timeout", "0s"}, {"-timeout", "5"}, {"-size", "0"},
		{"-size", "2MB"}, {"-hist=maybe"}, {"-target", "no-port"}, {"-target", "127.0.0.1:0"},
		{"-target", "127.0.0.1:99999"}, {"-target", ":80"},
		{"-target", "127.0.0.1:9", "-rcvbuf", "lots"}, {"-target", "127.0.0.1:9", "-user-timeout", "-1s"},
		{"-target", "127.0.0.1:9", "-nodelay=maybe"}, {"-target", "127.0.0.1:9", "-sockopt", "TCP_NO_SUCH=1"},
	} {
		_, err := parseFlags(args, io.Discard)
		var ue *cli.UsageError
		if !assert.ErrorAs(t, err, &ue, "%v", args) {
			continue
		}
		last := args[len(args)-1]
		name, value, ok := strings.Cut(strings.TrimPrefix(last, "-"), "=")
		if !ok || !strings.HasPrefix(last, "-") {
			name, value = strings.TrimPrefix(args[len(args)-2], "-"), last
		}
		want := fmt.Sprintf("-%s %q: want ", name, value)
		assert.True(t, strings.HasPrefix(err.Error(), want), "%v: the error should start with %s, got: %v", args, want, err)
	}
}

func TestTLSAgainstATargetThatDoesNotSpeakTLSSaysSo(t *testing.T) {
	// An echo server sends the ClientHello back; a plain-text server
	// answers with something that is not a TLS record at all.
	for name, addr := range map[string]string{"echo": startTestEcho(t, false), "plain text": plainTextServer(t)} {
		_, _, err := runProbe(t, "-target", addr, "-tls", "-n", "2", "-warmup", "0", "-quiet", "-timeout", "1s")
		assert.ErrorIs(t, err, errNotTLS, "%s: the error should say the target does not speak TLS", name)
		assert.ErrorContains(t, err, "drop -tls", "%s: the error should say what to do", name)
		assert.Equal(t, 1, cli.ExitCode(err), name)
	}
}

// plainTextServer answers every connection with an HTTP error and closes it.
func plainTextServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	return l.Addr().String()
}

func TestASuccessfulRunWithPlotSaysWhereThePlotWasWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plot.svg")
	out, stderr, err := runProbe(t, append([]string{"-plot", path, "-json", "-quiet"}, quick...)...)
	require.NoError(t, err, "stderr: %s", stderr)
	assert.Equal(t, "latencyprobe: plot written to "+path+"\n", stderr, "one line on stderr, even with -quiet")
	assert.NotContains(t, out, path, "stdout holds only the JSON document")
}

func TestAnUnreachableTargetFailsWithExitStatusOneAndSaysWhy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now

	plot := filepath.Join(t.TempDir(), "plot.svg")
	out, _, err := runProbe(t, "-target", addr, "-n", "3", "-warmup", "1", "-quiet", "-plot", plot)
	require.Error(t, err)
	assert.NoFileExists(t, plot, "a failed run leaves no empty plot behind")
	assert.Equal(t, 1, cli.ExitCode(err))
	if runtime.GOOS != "windows" {
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	}
	assert.Empty(t, out)
}

// unreachable returns an address where nothing listens.
func unreachable(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// entries lists the names in dir, to see that a run leaves nothing behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestAFailedOrInterruptedRunLeavesAnExistingPlotUnchanged(t *testing.T) {
	dir := t.TempDir()
	plot := filepath.Join(dir, "plot.svg")
	old := []byte("<svg>the plot of an earlier run</svg>\n")
	require.NoError(t, os.WriteFile(plot, old, 0o640))

	_, _, err := runProbe(t, "-target", unreachable(t), "-n", "3", "-warmup", "1", "-quiet", "-plot", plot)
	require.Error(t, err)
	assert.Equal(t, 1, cli.ExitCode(err))
	got, rerr := os.ReadFile(plot)
	require.NoError(t, rerr, "a failed run must not remove a plot that was there before")
	assert.Equal(t, old, got, "a failed run must not change a plot that was there before")

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // interrupted before the first sample
	err = run(ctx, append([]string{"-plot", plot, "-quiet"}, quick...), io.Discard, io.Discard)
	require.Error(t, err)
	got, rerr = os.ReadFile(plot)
	require.NoError(t, rerr, "an interrupted run must not remove a plot that was there before")
	assert.Equal(t, old, got, "an interrupted run must not change a plot that was there before")
	assert.Equal(t, []string{"plot.svg"}, entries(t, dir), "no temporary file is left behind")
}

func TestASuccessfulRunReplacesAnExistingPlotKeepingItsModeAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	plot := filepath.Join(dir, "plot.svg")
	require.NoError(t, os.WriteFile(plot, []byte("old"), 0o640))
	require.NoError(t, os.Chmod(plot, 0o640)) // whatever the umask
	_, stderr, err := runProbe(t, append([]string{"-plot", plot, "-quiet"}, quick...)...)
	require.NoError(t, err, "stderr: %s", stderr)
	got, err := os.ReadFile(plot)
	require.NoError(t, err)
	assert.Contains(t, string(got), "<svg", "the new plot replaced the old one")
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(plot)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "the plot keeps the mode of the file it replaces")
	}
	assert.Equal(t, []string{"plot.svg"}, entries(t, dir), "no temporary file is left behind")
}

func startTestEcho(t *testing.T, tlsOn bool) string {
	t.Helper()
	var cfg *tls.Config
	if tlsOn {
		var err error
		cfg, _, err = tlstest.Configs()
		require.NoError(t, err)
	}
	s, err := echo.Start(context.Background(), 64, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s.Addr()
}

func TestTargetModeMeasuresAnEchoServerAndShowsWhatTheKernelApplied(t *testing.T) {
	addr := startTestEcho(t, false)
	out, stderr, err := runProbe(t, "-target", addr, "-n", "20", "-warmup", "1",
		"-sockopt", "SO_KEEPALIVE=true", "-rcvbuf", "65536", "-nodelay")
	require.NoError(t, err, "stderr: %s", stderr)
	for _, section := range []string{"== System preflight", "== Read-back", "== Latency", "== Kernel view", "== What to change for this path"} {
		assert.Contains(t, out, section)
	}
	for _, item := range []string{"- dead peers: ", "- congestion control: "} {
		assert.Contains(t, out, item, "the advice for this path")
	}
	assert.Contains(t, out, "SO_RCVBUF", "the read-back should list the options")
	rows := tableRows(t, out)
	assert.Contains(t, rows, "connect (dial + close)")
	assert.Contains(t, rows, "request/response round trip")

	out, stderr, err = runProbe(t, "-target", addr, "-n", "20", "-warmup", "1", "-json", "-rcvbuf", "65536", "-sockopt", "TCP_USER_TIMEOUT=3s")
	require.NoError(t, err, "stderr: %s", stderr)
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, "target", rep.Mode)
	require.NotNil(t, rep.Target)
	assert.Equal(t, addr, rep.Target.Address)
	// -sockopt flags first, in order, then the convenience flags.
	assert.Equal(t, []string{"TCP_USER_TIMEOUT=3s", "SO_RCVBUF=65536"}, rep.Target.Options)
	require.Len(t, rep.Target.Verify, 2)
	if runtime.GOOS == "linux" {
		assert.Equal(t, "TCP_USER_TIMEOUT=3s", rep.Target.Verify[0].Got)
		// Linux doubles SO_RCVBUF: the read-back says so rather than hide it.
		rcv := rep.Target.Verify[1]
		assert.Equal(t, "SO_RCVBUF=131072", rcv.Got)
		assert.True(t, rcv.OK, "a doubled SO_RCVBUF is applied as documented: %+v", rcv)
		assert.NotEmpty(t, rcv.Reason, "the read-back should say why the value differs")
		require.NotNil(t, rep.Target.TCPInfo)
		assert.Positive(t, rep.Target.TCPInfo.RTTNS, "TCP_INFO should report an RTT")
	}
	var names []string
	for _, s := range rep.Series {
		names = append(names, s.Name)
	}
	assert.Subset(t, names, []string{"connect", "rtt"})
	if runtime.GOOS == "linux" {
		require.NotEmpty(t, rep.Target.Advice)
		assert.True(t, strings.HasPrefix(rep.Target.Advice[0], "buffers: smoothed RTT "), "the buffer advice comes from TCP_INFO: %q", rep.Target.Advice[0])
	}
}

func TestTargetModeSpeaksTLSAndRunsOpenLoop(t *testing.T) {
	addr := startTestEcho(t, true)
	out, stderr, err := runProbe(t, "-target", addr, "-tls", "-insecure", "-n", "10", "-warmup", "1", "-rate", "2000", "-json")
	require.NoError(t, err, "stderr: %s", stderr)
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, "open", rep.Loop)
	assert.Equal(t, 2000.0, rep.RatePerSec)
	var names []string
	for _, s := range rep.Series {
		names = append(names, s.Name)
	}
	assert.Subset(t, names, []string{"connect", "tls_handshake", "rtt"})

	// Without -insecure the self-signed certificate is refused.
	_, _, err = runProbe(t, "-target", addr, "-tls", "-n", "2", "-warmup", "0", "-quiet")
	assert.Error(t, err)
	assert.Equal(t, 1, cli.ExitCode(err))
}

// silentServer accepts connections and reads from them without answering.
func silentServer(t *testing.T) string { return servetest.Loopback(t, servetest.Discard) }

func TestATargetThatDoesNotEchoGetsAClearErrorUnlessConnectOnly(t *testing.T) {
	addr := silentServer(t)
	_, _, err := runProbe(t, "-target", addr, "-n", "3", "-warmup", "0", "-timeout", "300ms", "-quiet")
	assert.ErrorIs(t, err, errNoEcho)
	assert.Equal(t, 1, cli.ExitCode(err))

	out, stderr, err := runProbe(t, "-target", addr, "-n", "3", "-warmup", "0", "-connect-only", "-quiet")
	require.NoError(t, err, "stderr: %s", stderr)
	rows := tableRows(t, out)
	assert.Contains(t, rows, "connect (dial + close)")
	assert.NotContains(t, rows, "request/response round trip")
}

func TestThePathFlagsChangeThePresetsFigures(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, netlab.CrossContinent(), cfg.profile, "the default path is netlab's CrossContinent")
	assert.False(t, cfg.pathGiven, "the default path falls back to loopback where the lab cannot run")

	cfg, err = parseFlags([]string{"-preset", "lan", "-rtt", "10ms", "-loss", "0.001", "-bandwidth", "50M", "-jitter", "1ms"}, io.Discard)
	require.NoError(t, err)
	want := netlab.LAN()
	want.Delay, want.Jitter, want.Loss, want.Rate = 5*time.Millisecond, time.Millisecond, 0.001, 50e6
	assert.Equal(t, want, cfg.profile)
	assert.True(t, cfg.pathGiven, "a path asked for needs the lab")

	for in, bps := range map[string]int64{"0": 0, "1500": 1500, "64k": 64e3, "50M": 50e6, "1.5G": 1.5e9, "100Mbit/s": 100e6} {
		got, err := parseBandwidth(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, bps, got, in)
		}
	}
	for _, in := range []string{"", "fast", "-1M", "5T", "NaN"} {
		_, err := parseBandwidth(in)
		assert.Error(t, err, in)
	}

	cfg, err = parseFlags([]string{"-techniques", "tfo, pool,tfo"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"pool", "tfo"}, cfg.techniques, "in the program's order, once each")
}
