package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/metrics"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := metrics.New(0)
	b := setup(t, func(c *httpapi.Config) {
		c.Limiter = ratelimit.New(ratelimit.Defaults{RatePerSecond: 0.5, Burst: 2})
		c.Metrics = m
	})
	first := b.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200)
	require.Equal(t, `"tenant";q=2;w=4`, first.header.Get("RateLimit-Policy"))
	require.Equal(t, `"tenant";r=1;t=2`, first.header.Get("RateLimit"))
	b.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200)
	over := b.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 429)
	require.Equal(t, "rate-limited", over.problemType(t))
	require.Equal(t, "2", over.header.Get("Retry-After"))
	require.Equal(t, `"tenant";q=2;w=4`, over.header.Get("RateLimit-Policy"))
	require.Contains(t, over.header.Get("RateLimit"), `"tenant";r=0;`)
	b.call(t, "GET", "/v1/products", "globex", "").requireStatus(t, 200)

	// An override stored with the tenant (the test server does not cache
	// tenants, so it applies at once).
	_, err := b.admin.Exec(ctx, "update tenants set rate_limit = 1000, rate_burst = 50 where slug = 'acme'")
	require.NoError(t, err)
	r := b.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200)
	require.Equal(t, `"tenant";q=50;w=1`, r.header.Get("RateLimit-Policy"))
	// Unauthenticated requests neither count against nor learn a tenant's limit.
	un := b.call(t, "GET", "/v1/products", "acme", "", "Authorization", "").requireStatus(t, 401)
	require.Empty(t, un.header.Get("RateLimit"))
}

// Without a queue (TENANT_QUEUE_TIMEOUT=0; fair_test.go has the queued
// case), a tenant at its concurrency cap is refused at once, so its slow requests
// cannot take the pool from the others: while tenant A's requests are stuck
// behind a lock, tenant B is served. Without the cap (the control), A's
// requests hold every pooled connection and B gets a 503 after the acquire
// timeout.
func TestSlowTenantDoesNotStallOthers(t *testing.T) {
	t.Parallel()
	for _, capped := range []bool{true, false} {
		name := map[bool]string{true: "capped", false: "control without a cap"}[capped]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			maxConc := 0
			if capped {
				maxConc = 2
			}
			b := setup(t, func(c *httpapi.Config) {
				c.Limiter = ratelimit.New(ratelimit.Defaults{MaxConcurrency: maxConc})
				c.AcquireTimeout = 500 * time.Millisecond
				c.StatementTimeout = 30 * time.Second
				// Cached credentials and tenants, as in production: the
				// requests' only database work is their own statement.
				c.Resolver = tenancy.NewResolver(c.Pool, time.Minute)
				authn, err := auth.New(auth.Config{Pool: c.Pool, Tenants: c.Resolver, CacheTTL: time.Minute})
				require.NoError(t, err)
				c.Auth = authn
			}) // the pool has 4 connections
			product := b.call(t, "POST", "/v1/products", "acme", `{"name":"p","price":1}`).requireStatus(t, 201).body["id"].(string)
			b.call(t, "GET", "/v1/products", "globex", "").requireStatus(t, 200) // warm globex's caches too
			lock, err := b.admin.Begin(ctx)
			require.NoError(t, err)
			defer lock.Rollback(ctx)
			_, err = lock.Exec(ctx, "select 1 from products where id = $1 for update", product)
			require.NoError(t, err)

			// Six slow requests of A, all at once.
			var wg sync.WaitGroup
			statuses := make(chan int, 6)
			for range 6 {
				wg.Go(func() {
					r := b.callNoCheck(t, "PATCH", "/v1/products/"+product, "acme", `{"price":2}`)
					statuses <- r
				})
			}
			blocked := 2
			if !capped {
				blocked = 4
			}
			require.Eventually(t, func() bool {
				var n int
				_ = b.admin.QueryRow(ctx, "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and usename = 'rowfence_app' and datname = current_database()").Scan(&n)
				return n == blocked
			}, 10*time.Second, 20*time.Millisecond, "A's requests waiting on the lock")

			// Meanwhile, B.
			for range 5 {
				r := b.callNoCheck(t, "GET", "/v1/products", "globex", "")
				if capped {
					require.Equal(t, 200, r, "B is served while A is stuck")
				} else {
					require.Equal(t, 503, r, "without the cap A holds every connection")
				}
			}
			require.NoError(t, lock.Rollback(ctx))
			wg.Wait()
			close(statuses)
			count := map[int]int{}
			for s := range statuses {
				count[s]++
			}
			if capped {
				require.Equal(t, map[int]int{200: 2, 429: 4}, count, "two ran, four were refused at once")
			} else {
				require.Equal(t, 4, count[200], "%v", count)
			}
		})
	}
}

// callNoCheck sends a request and returns its status only (for goroutines:
// it fails no test itself).
func (b *testBundle) callNoCheck(t *testing.T, method, path, tenant, body string) int {
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if err != nil {
		return -1
	}
	req.Header.Set(httpapi.TenantHeader, tenant)
	req.Header.Set("Authorization", "Bearer "+b.keys[tenant])
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// A tenant's own statement timeout (stored with the tenant) replaces the
// server's for its requests only.
func TestPerTenantStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, func(c *httpapi.Config) { c.StatementTimeout = 30 * time.Second })
	product := b.call(t, "POST", "/v1/products", "acme", `{"name":"p","price":1}`).requireStatus(t, 201).body["id"].(string)
	_, err := b.admin.Exec(ctx, "update tenants set statement_timeout_ms = 200 where slug = 'acme'")
	require.NoError(t, err)
	lock, err := b.admin.Begin(ctx)
	require.NoError(t, err)
	defer lock.Rollback(ctx)
	_, err = lock.Exec(ctx, "select 1 from products where id = $1 for update", product)
	require.NoError(t, err)
	// The lock is held for the whole call: only the tenant's 200 ms timeout
	// can end it (the server's is 30 s).
	r := b.call(t, "PATCH", "/v1/products/"+product, "acme", `{"price":2}`).requireStatus(t, 503)
	require.Contains(t, r.body["detail"], "statement timeout")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New(1) // one tenant label: the second tenant is "other"
	token := strings.Repeat("t", 20)
	b := setup(t, func(c *httpapi.Config) {
		c.Metrics = m
		c.MetricsToken = token
		c.Limiter = ratelimit.New(ratelimit.Defaults{RatePerSecond: 0.001, Burst: 3})
		m.WatchPool(c.Pool)
	})
	b.call(t, "POST", "/v1/products", "acme", `{"name":"p","price":1}`).requireStatus(t, 201)
	b.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200)
	b.call(t, "GET", "/v1/products", "globex", "").requireStatus(t, 200)
	b.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200)
	b.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 429)
	b.call(t, "GET", "/v1/products/nope", "acme", "").requireStatus(t, 429)
	b.call(t, "GET", "/no/such/"+strings.Repeat("x", 50), "", "").requireStatus(t, 404)

	b.call(t, "GET", "/metrics", "", "", "Authorization", "").requireStatus(t, 401)
	b.call(t, "GET", "/metrics", "", "", "Authorization", "Bearer wrong").requireStatus(t, 401)
	req, err := http.NewRequest("GET", b.url+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	out := string(raw)
	for _, want := range []string{
		`rowfence_http_requests_total{method="GET",route="GET /v1/products",status="200"} 3`,
		`rowfence_http_requests_total{method="POST",route="POST /v1/products",status="201"} 1`,
		`rowfence_http_requests_total{method="other",route="unmatched",status="404"} 1`,
		`rowfence_http_request_duration_seconds_count{method="GET",route="GET /v1/products"} 4`,
		`rowfence_tenant_requests_total{tenant="acme"}`,
		`rowfence_tenant_requests_total{tenant="other"}`,
		`rowfence_tenant_rows_total{op="written",tenant="acme"} 1`,
		`rowfence_tenant_rows_total{op="read",tenant="acme"} 2`,
		`rowfence_rejections_total{reason="rate",tenant="acme"} 2`,
		`rowfence_db_pool_max_conns 4`,
		`go_goroutines`,
	} {
		require.True(t, strings.Contains(out, want), "/metrics lacks %s", want)
	}
	require.NotContains(t, out, `tenant="globex"`, "past the label budget")
	require.NotContains(t, out, "/no/such", "raw paths never become labels")

	// Without a token, /metrics is not on the API's listener at all.
	plain := setup(t, func(c *httpapi.Config) { c.Metrics = metrics.New(0) })
	plain.call(t, "GET", "/metrics", "", "", "Authorization", "").requireStatus(t, 404)
}
