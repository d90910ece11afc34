package main

import (
	"encoding/json"
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
