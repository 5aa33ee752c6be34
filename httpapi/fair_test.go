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
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/metrics"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

// fairSetup serves with fair sharing over the test pool of 4 connections
// (each tenant's share 2, as TENANT_CONCURRENCY's default gives), cached
// credentials and tenants as in production (so a request's only database
// work is its own statement), and a long statement timeout, so that
// requests blocked on a row lock stay blocked until the test lets them go.
func fairSetup(t *testing.T, queueTimeout time.Duration, queueLength int, m *metrics.Metrics) (*testBundle, *ratelimit.Limiter) {
	t.Helper()
	lim := ratelimit.New(ratelimit.Defaults{MaxConcurrency: 2, Capacity: 4, QueueLength: queueLength, QueueTimeout: queueTimeout})
	b := setup(t, func(c *httpapi.Config) {
		c.Limiter = lim
		c.Metrics = m
		c.MetricsToken = metricsToken
		c.StatementTimeout = 30 * time.Second
		c.AcquireTimeout = 500 * time.Millisecond
		c.Resolver = tenancy.NewResolver(c.Pool, time.Minute)
		authn, err := auth.New(auth.Config{Pool: c.Pool, Tenants: c.Resolver, CacheTTL: time.Minute})
		require.NoError(t, err)
		c.Auth = authn
	})
	m.WatchLimiter(lim)
	return b, lim
}

const metricsToken = "fair-sharing-metrics-token"

// lockProduct creates a product of tenant and holds its row lock until the
// returned function (or the test's end) lets it go: PATCHes of it are slow
// requests, each holding a slot and a connection meanwhile.
func lockProduct(t *testing.T, b *testBundle, tenant string) (id string, unlock func()) {
	t.Helper()
	ctx := context.Background()
	id = b.call(t, "POST", "/v1/products", tenant, `{"name":"p","price":1}`).requireStatus(t, 201).body["id"].(string)
	lock, err := b.admin.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lock.Rollback(ctx) })
	_, err = lock.Exec(ctx, "select 1 from products where id = $1 for update", id)
	require.NoError(t, err)
	return id, func() { require.NoError(t, lock.Rollback(ctx)) }
}

// slow sends n PATCHes of product at once; their statuses arrive on the
// channel, closed when all have answered.
func slow(b *testBundle, tenant, product string, n int) <-chan int {
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { statuses <- b.callNoCheck(nil, "PATCH", "/v1/products/"+product, tenant, `{"price":2}`) })
	}
	go func() { wg.Wait(); close(statuses) }()
	return statuses
}

func counts(statuses <-chan int) map[int]int {
	c := map[int]int{}
	for s := range statuses {
		c[s]++
	}
	return c
}

// A client's third concurrent request, past its tenant's share of two,
// waits its turn and is served instead of being refused at once.
func TestRequestPastTheShareWaitsItsTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := metrics.New(0)
	b, lim := fairSetup(t, time.Minute, 8, m)
	product, unlock := lockProduct(t, b, "acme")
	statuses := slow(b, "acme", product, 3)
	require.Eventually(t, func() bool { return lockWaiters(ctx, b) == 2 && lim.Stats().Waiting == 1 }, 10*time.Second, 10*time.Millisecond,
		"two requests of acme on the lock, the third in acme's queue")
	unlock()
	require.Equal(t, map[int]int{200: 3}, counts(statuses), "the third waited for a slot, then was served")
	require.Equal(t, ratelimit.Stats{Capacity: 4}, lim.Stats(), "every slot back")
	requireMetrics(t, scrape(t, b), `rowfence_tenant_queue_wait_seconds_count{outcome="admitted"} 1`,
		"rowfence_tenant_queue_depth 0", "rowfence_tenant_slots 4")
}

// Two tenants saturating the server with slow requests, each past its
// share, leave a quiet third tenant every answer it asks for, with no
// error; their own backlogs are served once their requests end. Before
// fair sharing, their four slow requests held the whole pool of four and
// the quiet tenant got 503s after the acquire timeout.
func TestNoisyTenantsLeaveAQuietOneServed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, lim := fairSetup(t, time.Minute, 8, nil)
	o, err := lifecycle.Onboard(ctx, b.admin, lifecycle.Tenant{Slug: "initech", Name: "initech", AdminEmail: "admin@initech.example"})
	require.NoError(t, err)
	b.keys["initech"] = o.Key
	b.call(t, "GET", "/v1/products", "initech", "").requireStatus(t, 200) // caches warm

	pa, unlockA := lockProduct(t, b, "acme")
	pg, unlockG := lockProduct(t, b, "globex")
	noisyA, noisyG := slow(b, "acme", pa, 5), slow(b, "globex", pg, 5)
	// The two hold three slots (2 + 1, or 1 + 2); the fourth is the reserve.
	require.Eventually(t, func() bool { return lockWaiters(ctx, b) == 3 && lim.Stats().Waiting == 7 }, 10*time.Second, 10*time.Millisecond,
		"three slow requests on the locks, seven queued")
	for i := range 20 {
		r := b.call(t, "GET", "/v1/products", "initech", "")
		require.Equal(t, 200, r.status, "quiet request %d: %s", i, r.raw)
	}
	unlockA()
	unlockG()
	require.Equal(t, map[int]int{200: 5}, counts(noisyA))
	require.Equal(t, map[int]int{200: 5}, counts(noisyG))
	require.Equal(t, ratelimit.Stats{Capacity: 4}, lim.Stats(), "every slot back")
}

// The queue timeout and the queue's length give the documented problems,
// with Retry-After; a client that gives up leaves its tenant's queue, and
// after the storm the whole capacity is free again.
func TestQueueTimeoutFullAndCanceled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := metrics.New(0)
	b, lim := fairSetup(t, 300*time.Millisecond, 2, m)
	product, unlock := lockProduct(t, b, "acme")
	held := slow(b, "acme", product, 2)
	require.Eventually(t, func() bool { return lockWaiters(ctx, b) == 2 }, 10*time.Second, 10*time.Millisecond)

	// Past the share, for the whole queue timeout: 429, acme's own fault.
	r := b.call(t, "PATCH", "/v1/products/"+product, "acme", `{"price":3}`).requireStatus(t, 429)
	require.Equal(t, "concurrency-limited", r.problemType(t))
	require.Equal(t, "1", r.header.Get("Retry-After"))
	require.Contains(t, r.body["detail"], "in progress")

	// A full queue refuses at once: two wait (for the timeout), the third
	// is refused without waiting.
	queued := slow(b, "acme", product, 2)
	require.Eventually(t, func() bool { return lim.Stats().Waiting == 2 }, 10*time.Second, time.Millisecond)
	r = b.call(t, "PATCH", "/v1/products/"+product, "acme", `{"price":3}`).requireStatus(t, 429)
	require.Equal(t, "concurrency-limited", r.problemType(t))
	require.Contains(t, r.body["detail"], "waiting")
	require.Equal(t, "1", r.header.Get("Retry-After"))
	require.Equal(t, map[int]int{429: 2}, counts(queued))

	// A client that gives up while queued leaves the queue at once (its
	// context ends with the connection), long before the queue timeout.
	// (A GET: net/http notices a closed connection only once the request's
	// body, if any, has been read, so a waiting PATCH leaves at its timeout.)
	clientCtx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(clientCtx, "GET", b.url+"/v1/products", nil)
	require.NoError(t, err)
	req.Header.Set(httpapi.TenantHeader, "acme")
	req.Header.Set("Authorization", "Bearer "+b.keys["acme"])
	gone := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		gone <- err
	}()
	require.Eventually(t, func() bool { return lim.Stats().Waiting == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	require.Error(t, <-gone)
	require.Eventually(t, func() bool { return lim.Stats().Waiting == 0 }, 10*time.Second, time.Millisecond, "the canceled waiter left")

	unlock()
	require.Equal(t, map[int]int{200: 2}, counts(held))
	require.Equal(t, ratelimit.Stats{Capacity: 4}, lim.Stats(), "every slot back")
	requireMetrics(t, scrape(t, b),
		`rowfence_tenant_queue_wait_seconds_count{outcome="concurrency"} 3`,
		`rowfence_tenant_queue_wait_seconds_count{outcome="canceled"} 1`,
		`rowfence_rejections_total{reason="queue_full",tenant="acme"} 1`,
		`rowfence_rejections_total{reason="concurrency",tenant="acme"} 3`,
		"rowfence_tenant_queue_depth 0", "rowfence_tenant_slots_in_use 0")
}

func requireMetrics(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		require.True(t, strings.Contains(out, w), "/metrics lacks %s", w)
	}
}

func scrape(t *testing.T, b *testBundle) string {
	t.Helper()
	req, err := http.NewRequest("GET", b.url+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(raw)
}

// lockWaiters counts the app role's statements waiting on a lock.
func lockWaiters(ctx context.Context, b *testBundle) int {
	var n int
	_ = b.admin.QueryRow(ctx, "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and usename = 'rowfence_app' and datname = current_database()").Scan(&n)
	return n
}

// Issue #18: fair sharing is per cell. The slots a limiter shares are its
// cell's pool's connections; with one limiter for every cell, two tenants
// of the default cell holding all its slots made a tenant of another cell
// wait in the queue (and get 503) though its own cell's pool was idle.
func TestFairSharingIsPerCell(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eu := pgtest.New(t)
	euAdmin := eu.AdminPool(t)
	limits := ratelimit.Defaults{MaxConcurrency: 4, Capacity: 4, QueueLength: 10, QueueTimeout: 400 * time.Millisecond}
	lim, euLim := ratelimit.New(limits), ratelimit.New(limits)
	b := setupWith(t, func(b *testBundle, c *httpapi.Config) {
		_, err := cells.Register(ctx, b.admin, "eu1", nil)
		require.NoError(t, err)
		o, err := lifecycle.OnboardIn(ctx, b.admin, euAdmin, "eu1", lifecycle.Tenant{Slug: "initech", Name: "Initech", AdminEmail: "admin@initech.example"})
		require.NoError(t, err)
		b.keys["initech"], b.users["initech"] = o.Key, o.Admin.ID
		set, err := cells.NewSet(&cells.Cell{Name: cells.Default, App: c.Pool}, &cells.Cell{Name: "eu1", App: eu.AppPool(t, 4), Limiter: euLim})
		require.NoError(t, err)
		c.Cells, c.Limiter = set, lim
		c.StatementTimeout = 30 * time.Second
		c.AcquireTimeout = 500 * time.Millisecond
		c.Resolver = tenancy.NewResolver(c.Pool, time.Minute)
		c.Auth, err = auth.New(auth.Config{Pool: c.Pool, Tenants: c.Resolver, CacheTTL: time.Minute, PoolFor: set.PoolFor(c.Resolver)})
		require.NoError(t, err)
	})
	b.call(t, "GET", "/v1/products", "initech", "").requireStatus(t, 200) // warm: cached tenant and key
	acmeProduct, unlockAcme := lockProduct(t, b, "acme")
	globexProduct, unlockGlobex := lockProduct(t, b, "globex")
	// acme holds what busy tenants may (three), globex the reserve, and
	// more of globex's wait.
	acme := slow(b, "acme", acmeProduct, 3)
	require.Eventually(t, func() bool { return lim.Stats().InFlight == 3 }, 5*time.Second, 5*time.Millisecond)
	globex := slow(b, "globex", globexProduct, 2)
	require.Eventually(t, func() bool { s := lim.Stats(); return s.InFlight == 4 && s.Waiting == 1 }, 5*time.Second, 5*time.Millisecond,
		"the default cell's tenants hold its four slots")
	start := time.Now()
	b.call(t, "GET", "/v1/products", "initech", "").requireStatus(t, 200)
	require.Less(t, time.Since(start), 300*time.Millisecond, "the other cell's tenant did not wait for the default cell's slots")
	unlockAcme()
	unlockGlobex()
	counts(acme)
	counts(globex)
}
