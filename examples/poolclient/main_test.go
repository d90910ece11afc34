package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nettune/nettune/examples/internal/cli"
	"github.com/nettune/nettune/examples/internal/echo"
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

// row matches a table row: title, samples, failed, then five durations.
var rowPattern = regexp.MustCompile(`(?m)^  (\S.*?)\s+(\d+)\s+(\d+)((?:\s+\S+){5})$`)

func rows(t *testing.T, out string) map[string][]time.Duration {
	t.Helper()
	got := map[string][]time.Duration{}
	for _, m := range rowPattern.FindAllStringSubmatch(out, -1) {
		var ds []time.Duration
		for _, f := range regexp.MustCompile(`\S+`).FindAllString(m[4], -1) {
			d, err := time.ParseDuration(f)
			require.NoError(t, err, "row %q: %q should be a duration", m[1], f)
			ds = append(ds, d)
		}
		n, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		assert.Positive(t, n, "row %q should have samples", m[1])
		got[m[1]] = ds
	}
	return got
}

func TestPooledAndFreshRequestsArePrintedSideBySideAndTheLivenessCheckFindsDeadConns(t *testing.T) {
	out, err := runClient(t, "-n", "60", "-workers", "3")
	require.NoError(t, err)
	got := rows(t, out)
	for _, title := range []string{"fresh connection per request", "pooled (pool.ConnPool, MaxSize 3)", "pooled, the first requests after"} {
		ds, ok := got[title]
		if assert.True(t, ok, "a row for %q in:\n%s", title, out) {
			assert.Positive(t, ds[0], "p50 of %q", title)
			assert.LessOrEqual(t, ds[0], ds[4], "p50 <= max for %q", title)
		}
	}
	assert.Contains(t, out, "speed-up:")
	m := regexp.MustCompile(`(\d+) requests failed, \d+ sent again on a new connection; the liveness check discarded (\d+) dead`).FindStringSubmatch(out)
	require.NotNil(t, m, "the restart section should say what happened:\n%s", out)
	assert.Equal(t, "0", m[1], "no request should fail after the server closed its connections")
}

func TestAGivenServerIsUsedInsteadOfTheEmbeddedOne(t *testing.T) {
	srv, err := echo.Start(context.Background(), 0, nil)
	require.NoError(t, err)
	defer srv.Close()
	out, err := runClient(t, "-addr", srv.Addr(), "-n", "20", "-workers", "2")
	require.NoError(t, err)
	assert.Contains(t, out, srv.Addr()+" (given server)")
	assert.NotContains(t, out, "after the server closed", "a given server is not restarted")
}

func TestAnUnreachableServerFailsWithExitStatusOne(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, err = runClient(t, "-addr", addr, "-n", "3", "-workers", "1")
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.Equal(t, 1, cli.ExitCode(err))
}

func TestBadFlagsFailWithExitStatusTwo(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"}, {"-workers", "0"}, {"-size", "0"}, {"-max-size", "-1"}, {"-timeout", "0s"},
		{"-addr", "no-port"}, {"-liveness", "1ms", "-max-size", "1", "-workers", "1", "-bogus"}, {"extra"},
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
	assert.True(t, strings.HasPrefix(stderr.String(), "usage: poolclient [flags]\n"), "help starts with the shared usage line:\n%s", stderr.String())
	assert.Contains(t, stderr.String(), "\n\nflags:\n  -", "help lists the flags under the shared heading")

	for name, value := range map[string]string{"n": "0", "workers": "all", "timeout": "5", "addr": "no-port", "liveness": "x"} {
		out, err := runClient(t, "-"+name, value)
		assert.Equal(t, 2, cli.ExitCode(err), "-%s %s", name, value)
		assert.Empty(t, out)
		want := fmt.Sprintf("-%s %q: want ", name, value)
		assert.True(t, strings.HasPrefix(err.Error(), want), "the error should start with %s, got: %v", want, err)
	}
}
