package nettuneprom_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nettune/nettune/dnscache"
	"github.com/nettune/nettune/latency"
	"github.com/nettune/nettune/pool"
	nettuneprom "github.com/nettune/nettune/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPoolCollectorExportsEveryStat(t *testing.T) {
	st := pool.Stats{
		MaxSize: 10, InUse: 3, Idle: 2, Dialing: 1, Waiting: 4,
		Gets: 100, Hits: 90, Misses: 10, Waits: 5, WaitTime: 1500 * time.Millisecond, Timeouts: 2,
		Dials: 12, DialErrors: 1,
		Closed: pool.ClosedStats{Idle: 1, Lifetime: 2, Health: 3, Discarded: 4, Excess: 5, Reset: 6, PoolClosed: 7},
	}
	c := nettuneprom.NewPoolCollector(nettuneprom.StatsOpts{ConstLabels: prometheus.Labels{"pool": "db"}}, func() pool.Stats { return st })
	want := `
# HELP nettune_pool_closed_total Resources closed by the pool, by reason.
# TYPE nettune_pool_closed_total counter
nettune_pool_closed_total{pool="db",reason="discarded"} 4
nettune_pool_closed_total{pool="db",reason="excess"} 5
nettune_pool_closed_total{pool="db",reason="health"} 3
nettune_pool_closed_total{pool="db",reason="idle"} 1
nettune_pool_closed_total{pool="db",reason="lifetime"} 2
nettune_pool_closed_total{pool="db",reason="pool_closed"} 7
nettune_pool_closed_total{pool="db",reason="reset"} 6
# HELP nettune_pool_dial_errors_total Dials that failed.
# TYPE nettune_pool_dial_errors_total counter
nettune_pool_dial_errors_total{pool="db"} 1
# HELP nettune_pool_dials_in_flight Dials in progress now.
# TYPE nettune_pool_dials_in_flight gauge
nettune_pool_dials_in_flight{pool="db"} 1
# HELP nettune_pool_dials_total Dials started.
# TYPE nettune_pool_dials_total counter
nettune_pool_dials_total{pool="db"} 12
# HELP nettune_pool_gets_total Get and TryGet calls.
# TYPE nettune_pool_gets_total counter
nettune_pool_gets_total{pool="db"} 100
# HELP nettune_pool_hits_total Gets served from the idle set at once.
# TYPE nettune_pool_hits_total counter
nettune_pool_hits_total{pool="db"} 90
# HELP nettune_pool_idle_resources Idle resources now.
# TYPE nettune_pool_idle_resources gauge
nettune_pool_idle_resources{pool="db"} 2
# HELP nettune_pool_in_use_resources Resources checked out now.
# TYPE nettune_pool_in_use_resources gauge
nettune_pool_in_use_resources{pool="db"} 3
# HELP nettune_pool_max_resources Maximum number of resources the pool holds (its MaxSize).
# TYPE nettune_pool_max_resources gauge
nettune_pool_max_resources{pool="db"} 10
# HELP nettune_pool_misses_total Gets that found no idle resource.
# TYPE nettune_pool_misses_total counter
nettune_pool_misses_total{pool="db"} 10
# HELP nettune_pool_timeouts_total Gets ended by their context.
# TYPE nettune_pool_timeouts_total counter
nettune_pool_timeouts_total{pool="db"} 2
# HELP nettune_pool_wait_seconds_total Total time Gets waited for a resource, in seconds.
# TYPE nettune_pool_wait_seconds_total counter
nettune_pool_wait_seconds_total{pool="db"} 1.5
# HELP nettune_pool_waiting_gets Gets waiting for a resource now.
# TYPE nettune_pool_waiting_gets gauge
nettune_pool_waiting_gets{pool="db"} 4
# HELP nettune_pool_waits_total Gets that waited and got a resource.
# TYPE nettune_pool_waits_total counter
nettune_pool_waits_total{pool="db"} 5
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestDNSCacheCollectorExportsEveryStat(t *testing.T) {
	st := dnscache.Stats{Hits: 1, Misses: 2, StaleServed: 3, NegativeHits: 4, Prefetches: 5, Evictions: 6, Expired: 7,
		Lookups: 8, LookupErrors: 9, InFlight: 10, Entries: 11, Bytes: 12}
	c := nettuneprom.NewDNSCacheCollector(nettuneprom.StatsOpts{Namespace: "app", Subsystem: "dns"}, func() dnscache.Stats { return st })
	want := `
# HELP app_dns_entries Cached answers now.
# TYPE app_dns_entries gauge
app_dns_entries 11
# HELP app_dns_evictions_total Entries dropped to hold the size limits.
# TYPE app_dns_evictions_total counter
app_dns_evictions_total 6
# HELP app_dns_expired_total Entries dropped by the sweeper, no longer servable.
# TYPE app_dns_expired_total counter
app_dns_expired_total 7
# HELP app_dns_hits_total Answers served fresh from the cache.
# TYPE app_dns_hits_total counter
app_dns_hits_total 1
# HELP app_dns_lookup_errors_total Lookups at the source ended by a transient failure.
# TYPE app_dns_lookup_errors_total counter
app_dns_lookup_errors_total 9
# HELP app_dns_lookups_in_flight Lookups at the source in progress now.
# TYPE app_dns_lookups_in_flight gauge
app_dns_lookups_in_flight 10
# HELP app_dns_lookups_total Lookups at the source started.
# TYPE app_dns_lookups_total counter
app_dns_lookups_total 8
# HELP app_dns_misses_total Lookups answered by waiting for the source.
# TYPE app_dns_misses_total counter
app_dns_misses_total 2
# HELP app_dns_negative_hits_total Cached "no such host" answers served.
# TYPE app_dns_negative_hits_total counter
app_dns_negative_hits_total 4
# HELP app_dns_prefetches_total Background refreshes started by hits near expiry.
# TYPE app_dns_prefetches_total counter
app_dns_prefetches_total 5
# HELP app_dns_size_bytes What the cached answers count against MaxBytes now, in bytes.
# TYPE app_dns_size_bytes gauge
app_dns_size_bytes 12
# HELP app_dns_stale_served_total Expired answers served because a refresh failed or was late.
# TYPE app_dns_stale_served_total counter
app_dns_stale_served_total 3
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestHTTPStagesCollectorExportsEveryCount(t *testing.T) {
	st := latency.HTTPStageStats{Requests: 1, Reused: 2, Conns: 3, Failures: 4, BodyErrors: 5}
	c := nettuneprom.NewHTTPStagesCollector(nettuneprom.StatsOpts{}, func() latency.HTTPStageStats { return st })
	want := `
# HELP nettune_http_client_body_errors_total Response bodies whose read failed before the end.
# TYPE nettune_http_client_body_errors_total counter
nettune_http_client_body_errors_total 5
# HELP nettune_http_client_connections_total New connections made for round trips.
# TYPE nettune_http_client_connections_total counter
nettune_http_client_connections_total 3
# HELP nettune_http_client_failures_total Round trips that returned an error.
# TYPE nettune_http_client_failures_total counter
nettune_http_client_failures_total 4
# HELP nettune_http_client_requests_total Round trips that returned a response.
# TYPE nettune_http_client_requests_total counter
nettune_http_client_requests_total 1
# HELP nettune_http_client_reused_total Round trips sent on a connection that had served a request before.
# TYPE nettune_http_client_reused_total counter
nettune_http_client_reused_total 2
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

// A live HTTPStages behind a real loopback server: the counts a scrape shows
// are the ones the round trips made.
func TestHTTPStagesCollectorReadsALiveTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	var stages latency.HTTPStages
	client := &http.Client{Transport: stages.Transport(tr)}
	for range 3 {
		resp, err := client.Get(srv.URL)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	values := gatherCounters(t, nettuneprom.NewHTTPStagesCollector(nettuneprom.StatsOpts{}, stages.Stats))
	assert.Equal(t, 3.0, values["nettune_http_client_requests_total"])
	assert.Equal(t, 2.0, values["nettune_http_client_reused_total"], "one connection, reused twice")
	assert.Equal(t, 1.0, values["nettune_http_client_connections_total"])
}

// gatherCounters scrapes c through a pedantic registry and returns each
// counter's value by name.
func gatherCounters(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	values := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			values[mf.GetName()] += m.GetCounter().GetValue()
		}
	}
	return values
}

func TestTwoLivePoolsAndACacheRegisterTogether(t *testing.T) {
	dial := func(context.Context) (int, error) { return 1, nil }
	closeFn := func(int) error { return nil }
	a, err := pool.New(dial, closeFn)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	b, err := pool.New(dial, closeFn)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	cache, err := dnscache.New()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cache.Close()) })

	v, err := a.Get(context.Background())
	require.NoError(t, err)
	v.Release()

	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(nettuneprom.NewPoolCollector(nettuneprom.StatsOpts{ConstLabels: prometheus.Labels{"pool": "a"}}, a.Stats)))
	require.NoError(t, reg.Register(nettuneprom.NewPoolCollector(nettuneprom.StatsOpts{ConstLabels: prometheus.Labels{"pool": "b"}}, b.Stats)))
	require.NoError(t, reg.Register(nettuneprom.NewDNSCacheCollector(nettuneprom.StatsOpts{}, cache.Stats)))
	fams := scrape(t, reg, text)
	gets := map[string]float64{}
	for _, m := range fams["nettune_pool_gets_total"].GetMetric() {
		gets[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	assert.Equal(t, map[string]float64{"a": 1, "b": 0}, gets)
	assert.Contains(t, fams, "nettune_dnscache_entries")
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}
