package main

import (
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The dialer turns Multipath TCP off for TCP-only options, so the
// preflight must not warn about MPTCP for them (it did, with Explain).
func TestPreflightHasNoMPTCPCaveatForOptionsOnADialerWithMPTCPOff(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the preflight reads Linux sysctls")
	}
	addr := startTestEcho(t, false)
	out, stderr, err := runProbe(t, "-target", addr, "-n", "2", "-warmup", "0", "-json", "-quiet",
		"-sockopt", "TCP_USER_TIMEOUT=5s", "-sockopt", "TCP_QUICKACK=true", "-sockopt", "IP_TOS=0xb8")
	require.NoError(t, err, "stderr: %s", stderr)
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.NotNil(t, rep.Target)
	for _, f := range rep.Target.Preflight {
		assert.NotContains(t, f.Reason, "Multipath", "%s: a false alarm on a plain TCP dialer", f.Option)
	}
}

// Over TLS too, a raw option from -sockopt is set and read back like the
// others.
func TestTargetReadsBackARawOptionOverTLS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_SYNCNT is a Linux option")
	}
	addr := startTestEcho(t, true)
	out, stderr, err := runProbe(t, "-target", addr, "-tls", "-insecure", "-n", "2", "-warmup", "0", "-json", "-quiet",
		"-sockopt", "RAW(level=6,name=7)=3", "-sockopt", "TCP_USER_TIMEOUT=5s")
	require.NoError(t, err, "stderr: %s", stderr)
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.NotNil(t, rep.Target)
	require.Len(t, rep.Target.Verify, 2)
	for _, v := range rep.Target.Verify {
		assert.True(t, v.OK, "%s: %s %s", v.Asked, v.Reason, v.Error)
	}
	assert.True(t, strings.HasPrefix(rep.Target.Verify[0].Asked, "RAW(level=6,name=7)"), "%+v", rep.Target.Verify[0])
}

// The preflight shows this host's buffer, listen-queue and congestion
// settings, as text and in the JSON.
func TestPreflightShowsThisHostsBufferQueueAndCongestionSettings(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the preflight reads Linux sysctls")
	}
	cc, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	require.NoError(t, err)
	qdisc, err := os.ReadFile("/proc/sys/net/core/default_qdisc")
	require.NoError(t, err)
	lines := []string{
		"  buffers: net.ipv4.tcp_rmem=",
		"  listen queues: net.ipv4.tcp_max_syn_backlog=",
		"  congestion control: net.ipv4.tcp_congestion_control=" + strings.TrimSpace(string(cc)) +
			", net.core.default_qdisc=" + strings.TrimSpace(string(qdisc)) + "\n",
	}

	var b strings.Builder
	(&report{}).writePreflight(&b)
	for _, line := range lines {
		assert.Contains(t, b.String(), line, "the compare run's preflight")
	}

	addr := startTestEcho(t, false)
	out, stderr, err := runProbe(t, "-target", addr, "-n", "2", "-warmup", "0", "-quiet")
	require.NoError(t, err, "stderr: %s", stderr)
	for _, line := range lines {
		assert.Contains(t, out, line, "the target run's preflight")
	}

	out, stderr, err = runProbe(t, "-target", addr, "-n", "2", "-warmup", "0", "-json", "-quiet")
	require.NoError(t, err, "stderr: %s", stderr)
	var rep jsonReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.NotNil(t, rep.Target)
	require.NotNil(t, rep.Target.Host, "the JSON carries the host's settings")
	h := rep.Target.Host
	assert.Equal(t, strings.TrimSpace(string(cc)), h.CongestionControl)
	assert.Equal(t, strings.TrimSpace(string(qdisc)), h.DefaultQdisc)
	assert.Positive(t, h.TCPRmem[2], "tcp_rmem max")
	assert.Positive(t, h.TCPWmem[2], "tcp_wmem max")
	assert.Positive(t, h.TCPMaxSynBacklog)
	assert.NotContains(t, h.Missing, "TcpExt.ListenOverflows")
}
