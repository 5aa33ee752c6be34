package httpapi_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/tenancy"
)

// madeUpKey is a well-formed API key of tenant that no one issued: looking
// it up costs a database round trip, and finds nothing.
func madeUpKey(t *testing.T, tenant uuid.UUID) string {
	t.Helper()
	k, err := auth.NewAPIKey(tenant)
	require.NoError(t, err)
	return k.String()
}

// flood sends one GET /v1/me per credential from the same client, n at a
// time, and requires every answer to be want.
func flood(t *testing.T, url, tenant string, creds []string, want int) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cred := range work {
				req, _ := http.NewRequest("GET", url+"/v1/me", nil)
				req.Header.Set(httpapi.TenantHeader, tenant)
				req.Header.Set("Authorization", "Bearer "+cred)
				res, err := client.Do(req)
				status := -1
				if err == nil {
					status = res.StatusCode
					res.Body.Close()
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		}()
	}
	for _, c := range creds {
		work <- c
	}
	close(work)
	wg.Wait()
	require.Equal(t, map[int]int{want: len(creds)}, statuses)
}

// The observed failure of issue #14 item 5: the credential cache emptied
// itself at 10,000 entries and cached unknown keys too, so 10,000 made-up
// keys, sent without any credential of one's own, evicted every tenant's
// good entries. A good key must still be answered from the cache afterwards:
// GET /v1/me does no database work of its own, so a cached credential and
// tenant make it zero round trips (leak vector 13).
func TestMadeUpKeysCannotFlushTheCredentialCache(t *testing.T) {
	t.Parallel()
	counter := &roundTrips{}
	b := setup(t, func(c *httpapi.Config) {
		cfg := c.Pool.Config().Copy()
		cfg.ConnConfig.Tracer = counter
		cfg.MaxConns = 4
		pool, err := db.Open(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		c.Pool = pool
		c.Resolver = tenancy.NewResolver(pool, time.Hour)
		authn, err := auth.New(auth.Config{Pool: pool, Tenants: c.Resolver, CacheTTL: time.Hour})
		require.NoError(t, err)
		c.Auth = authn
	})
	for range 2 { // warm: the key and its tenant cached
		b.call(t, "GET", "/v1/me", "acme", "").requireStatus(t, 200)
	}
	before := counter.n.Load()
	b.call(t, "GET", "/v1/me", "acme", "").requireStatus(t, 200)
	require.Equal(t, int64(0), counter.n.Load()-before, "a cached credential costs no round trip")

	madeUp := make([]string, 10_001)
	for i := range madeUp {
		madeUp[i] = madeUpKey(t, b.acme)
	}
	flood(t, b.url, "acme", madeUp, http.StatusUnauthorized)

	before = counter.n.Load()
	me := b.call(t, "GET", "/v1/me", "acme", "").requireStatus(t, 200)
	require.Equal(t, "admin", me.body["role"])
	require.Equal(t, int64(0), counter.n.Load()-before,
		"10,001 made-up keys evicted the good key: it cost a database round trip again")
}
