package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runClient(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, args, &out, io.Discard)
	return out.String(), err
}

var rowPattern = regexp.MustCompile(`(?m)^  (\S.*?)\s+(\d+)\s+(\d+)((?:\s+\S+){5})$`)

// samples returns each table row's sample count, checking that its
// durations parse.
func samples(t *testing.T, out string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, m := range rowPattern.FindAllStringSubmatch(out, -1) {
		n, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		if n > 0 {
			for _, f := range regexp.MustCompile(`\S+`).FindAllString(m[4], -1) {
				_, err := time.ParseDuration(f)
				assert.NoError(t, err, "row %q: %q should be a duration", m[1], f)
			}
		}
		got[m[1]] = n
	}
	return got
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

func TestTheEmbeddedRunPrintsRequestAndConnectPercentilesAndTheCacheSavesDNSQueries(t *testing.T) {
	out, err := runClient(t, "-n", "40", "-workers", "2")
	require.NoError(t, err)
	got := samples(t, out)
	assert.Equal(t, 40, got["request, keep-alive off"], "every request should succeed:\n%s", out)
	assert.Equal(t, 40, got["request, keep-alive on"], "every request should succeed:\n%s", out)
	assert.Equal(t, 40, got["connect (dialer.RecordConnectTime), keep-alive off"], "without keep-alive every request dials")
	assert.Less(t, got["connect (dialer.RecordConnectTime), keep-alive on"], 40, "with keep-alive connections are reused")

	m := regexp.MustCompile(`dnscache: (\d+) hits, (\d+) misses, (\d+) lookups at the source`).FindStringSubmatch(out)
	require.NotNil(t, m, "the cache statistics should be printed:\n%s", out)
	assert.Positive(t, atoi(t, m[1]), "the cache should serve hits")
	m = regexp.MustCompile(`DNS server: (\d+) queries received for (\d+) connections dialed`).FindStringSubmatch(out)
	require.NotNil(t, m, "the DNS server's query count should be printed:\n%s", out)
	assert.Less(t, atoi(t, m[1]), atoi(t, m[2]), "the cache should send fewer queries than there were dials")
}

func TestAGivenURLIsFetched(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	out, err := runClient(t, "-url", srv.URL, "-n", "10", "-workers", "2")
	require.NoError(t, err)
	assert.Contains(t, out, srv.URL+" (given server")
	assert.Equal(t, 10, samples(t, out)["request, keep-alive on"])
	assert.NotContains(t, out, "DNS server:", "there is no embedded DNS server with -url")
}

func TestAServerThatAnswersWithAnErrorStatusFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := runClient(t, "-url", srv.URL, "-n", "3", "-workers", "1")
	assert.ErrorIs(t, err, errStatus)
	assert.Equal(t, 1, cli.ExitCode(err))
}

func TestAnUnreachableURLFailsWithExitStatusOne(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, err = runClient(t, "-url", "http://"+addr+"/", "-n", "2", "-workers", "1")
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.Equal(t, 1, cli.ExitCode(err))
}

func TestBadFlagsFailWithExitStatusTwo(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"}, {"-workers", "0"}, {"-timeout", "-1s"}, {"-url", "ftp://127.0.0.1/"}, {"-url", "127.0.0.1:80"},
		{"-url", "http://[::1"}, {"-bogus"}, {"extra"},
	} {
		out, err := runClient(t, args...)
		var ue *cli.UsageError
		assert.ErrorAs(t, err, &ue, "%v", args)
		assert.Equal(t, 2, cli.ExitCode(err), "%v", args)
		assert.Empty(t, out, "%v: nothing on stdout", args)
	}
}

func TestHelpAndABadValueUseTheSharedFormat(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, io.Discard, &stderr)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, cli.ExitCode(err))
	assert.True(t, strings.HasPrefix(stderr.String(), "usage: httpclient [flags]\n"), "help starts with the shared usage line:\n%s", stderr.String())
	assert.Contains(t, stderr.String(), "\n\nflags:\n  -", "help lists the flags under the shared heading")

	for name, value := range map[string]string{"n": "0", "workers": "all", "timeout": "-1s", "url": "ftp://127.0.0.1/"} {
		out, err := runClient(t, "-"+name, value)
		assert.Equal(t, 2, cli.ExitCode(err), "-%s %s", name, value)
		assert.Empty(t, out)
		want := fmt.Sprintf("-%s %q: want ", name, value)
		assert.True(t, strings.HasPrefix(err.Error(), want), "the error should start with %s, got: %v", want, err)
	}
}
