package nettuneprom_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nettune/nettune/latency"
	nettuneprom "github.com/nettune/nettune/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPrometheusMergesTwoProcessesAsTheSnapshotsMerge is the "many
// machines" story end to end: two exporters (two handlers standing for two
// processes) export the same native histogram, a real Prometheus scrapes
// both over loopback, and histogram_quantile(0.99, sum(rate(...))) over
// the merged series lands in the same bucket as the quantile of the merged
// Snapshot, so the two agree within one bucket (2^(2^-6)-1 = 1.09% at the
// default scale) and each is within that of the exact p99.
func TestPrometheusMergesTwoProcessesAsTheSnapshotsMerge(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no prometheus binary (apt-get install prometheus): %v", err)
		}
		t.Skipf("no prometheus binary (Debian: apt-get install prometheus); CI=true makes this a failure: %v", err)
	}

	// Two processes, each with its own histogram, registry and handler.
	// They start empty: the first scrapes see empty native histograms, the
	// values arrive after, so rate() over the window sees exactly them.
	var hs [2]*latency.Histogram
	var targets [2]string
	var servers [2]*httptest.Server
	for i := range hs {
		h, err := latency.New()
		require.NoError(t, err)
		hs[i] = h
		c, err := nettuneprom.NewHistogramCollector(nettuneprom.HistogramOpts{Name: "e2e_request_duration_seconds", Help: "Request latency."})
		require.NoError(t, err)
		require.NoError(t, c.Track(h.Snapshot))
		reg := prometheus.NewRegistry()
		require.NoError(t, reg.Register(c))
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
		t.Cleanup(srv.Close)
		servers[i] = srv
		targets[i] = srv.Listener.Addr().String()
	}

	api := startPrometheus(t, bin, targets[:])
	waitFor(t, "both targets scraped", func() (bool, error) {
		v, err := api.vector(`count(e2e_request_duration_seconds)`)
		return len(v) == 1 && v[0] == 2, err
	})

	// Each process sees its own latency distribution.
	procs := [2][]time.Duration{durations(30000, 1), durations(20000, 2)}
	for i, ds := range procs {
		for j, d := range ds {
			procs[i][j] = d * time.Duration(1+9*i) // the second is 10 times slower
			hs[i].Record(procs[i][j])
		}
	}
	merged, err := hs[0].Snapshot().Merge(hs[1].Snapshot())
	require.NoError(t, err)
	waitFor(t, "both targets scraped with the values", func() (bool, error) {
		v, err := api.vector(`sum(histogram_count(e2e_request_duration_seconds))`)
		return len(v) == 1 && v[0] == float64(merged.Count()), err
	})

	// rate() extrapolates each series by its own sampling: with the first
	// sample empty (a counter's zero point) and the last one more than 1.1
	// intervals before the evaluation time, series i is scaled by
	// 1 + 1/(2(n_i-1)) for its n_i samples. Taking many samples and then
	// stopping both targets together keeps those factors within a fraction
	// of a percent of each other, so that the merged rate weighs the two
	// processes as the merged Snapshot does.
	waitFor(t, "40 scrapes of each target", func() (bool, error) {
		v, err := api.vector(`min(count_over_time(up{job="nettune"}[10m]))`)
		return len(v) == 1 && v[0] >= 40, err
	})
	for _, srv := range servers {
		srv.Close()
	}
	waitFor(t, "both targets down", func() (bool, error) {
		v, err := api.vector(`max(up{job="nettune"})`)
		return len(v) == 1 && v[0] == 0, err
	})
	at := time.Now().Add(time.Second) // > 1.1 intervals after the last sample

	v, err := api.vectorAt(`histogram_quantile(0.99, sum(rate(e2e_request_duration_seconds[10m])))`, at)
	require.NoError(t, err)
	require.Len(t, v, 1)
	promP99 := v[0]
	snapP99 := merged.Quantile(0.99).Seconds()
	all := append(append([]time.Duration(nil), procs[0]...), procs[1]...)
	exact := exactQuantile(all, 0.99).Seconds()
	base := math.Exp2(math.Exp2(-latency.DefaultScale))
	t.Logf("p99: Prometheus %.6f s, merged Snapshot %.6f s, exact %.6f s", promP99, snapP99, exact)

	assert.InDelta(t, 1, snapP99/exact, latency.ErrorAtScale(latency.DefaultScale)+1e-9, "the Snapshot's stated error")
	// Both answers lie in the bucket holding the exact p99.
	hi := math.Exp2(math.Ceil(math.Log2(exact)*math.Exp2(latency.DefaultScale)) / math.Exp2(latency.DefaultScale))
	lo := hi / base
	assert.True(t, promP99 >= lo*(1-1e-12) && promP99 <= hi*(1+1e-12), "Prometheus's p99 %v in the exact p99's bucket (%v, %v]", promP99, lo, hi)
	assert.InDelta(t, 1, promP99/snapP99, base-1, "Prometheus and the merged Snapshot within one bucket")
}

func exactQuantile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[int(math.Ceil(q*float64(len(s))))-1]
}

// promAPI queries a Prometheus server's HTTP API.
type promAPI struct{ base string }

// vector evaluates an instant query now and returns the sample values.
func (a promAPI) vector(query string) ([]float64, error) {
	return a.vectorAt(query, time.Time{})
}

// vectorAt evaluates an instant query at time at (now if zero).
func (a promAPI) vectorAt(query string, at time.Time) (_ []float64, err error) {
	q := url.Values{"query": {query}}
	if !at.IsZero() {
		q.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1e3, 'f', 3, 64))
	}
	resp, err := http.Get(a.base + "/api/v1/query?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, resp.Body.Close()) }()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", query, r.Error)
	}
	var out []float64
	for _, s := range r.Data.Result {
		str, ok := s.Value[1].(string)
		if !ok {
			return nil, fmt.Errorf("query %s: value %v is not a float", query, s.Value[1])
		}
		f, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// startPrometheus runs bin scraping targets every 250 ms, on a free
// loopback port with its own config and storage in temporary directories,
// and stops it when the test ends.
func startPrometheus(t *testing.T, bin string, targets []string) promAPI {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 250ms
  scrape_timeout: 200ms
scrape_configs:
  - job_name: nettune
    static_configs:
      - targets: [%q, %q]
`, targets[0], targets[1])
	cfgFile := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(cfg), 0o600))

	// A free port: listen, note it, close. Another process could take it in
	// between; Prometheus then fails to start and says so.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	var logs syncBuffer
	cmd := exec.Command(bin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--enable-feature=native-histograms",
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.WaitDelay = 10 * time.Second
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if err := cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("prometheus: interrupt: %v", err)
		}
		var err error
		select {
		case err = <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("prometheus still running 30 s after SIGINT: killing it")
			if err := cmd.Process.Kill(); err != nil {
				t.Errorf("prometheus: kill: %v", err)
			}
			err = <-exited
		}
		if t.Failed() {
			t.Logf("prometheus logs:\n%s", logs.String())
		}
		if err != nil {
			t.Errorf("prometheus did not exit cleanly on SIGINT: %v", err)
		}
	})

	api := promAPI{base: "http://" + addr}
	waitFor(t, "prometheus ready", func() (bool, error) {
		select {
		case err := <-exited:
			exited <- err
			return false, fmt.Errorf("prometheus exited: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(api.base + "/-/ready")
		if err != nil {
			return false, nil // not listening yet
		}
		return resp.StatusCode == http.StatusOK, resp.Body.Close()
	})
	return api
}

// waitFor polls cond every 100 ms until it holds, fails, or 60 s pass.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		require.NoError(t, err, what)
		if ok {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the writes of a process's stdout
// and stderr copiers.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
