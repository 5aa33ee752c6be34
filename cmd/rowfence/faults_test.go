package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/pgtest"
)

// PostgreSQL crashes and comes back under load: while it is down rowfence
// answers 503 (never a 500, never a hang), it recovers on its own within
// seconds, and every write it acknowledged with a 201 is in the database
// afterwards.
func TestDatabaseCrashUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A server of our own to crash, with durable commits (the test clusters
	// trade durability for speed; this one must not).
	srv, err := pgserver.Start(ctx, pgserver.Options{Settings: []string{"fsync=on", "synchronous_commit=on"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	m, err := db.NewMigrator(srv.URL, nil)
	require.NoError(t, err)
	require.NoError(t, migrateUp(ctx, m, srv.URL, ""))
	m.Close()
	adminCfg, err := pgxpool.ParseConfig(srv.URL)
	require.NoError(t, err)
	admin, err := db.Open(ctx, adminCfg)
	require.NoError(t, err)
	o, err := lifecycle.Onboard(ctx, admin, lifecycle.Tenant{Slug: "acme", Name: "Acme", AdminEmail: "a@acme.example"})
	admin.Close()
	require.NoError(t, err)

	base, logs, stop := startServer(t, map[string]string{"DATABASE_URL": srv.URL, "STATEMENT_TIMEOUT": "2s",
		"REQUEST_TIMEOUT": "3s", "ACQUIRE_TIMEOUT": "1s", "RATE_LIMIT": "0", "TENANT_CONCURRENCY": "0"}, "serve")
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(i int) (int, string) {
		req, _ := http.NewRequest("POST", base+"/v1/products", strings.NewReader(fmt.Sprintf(`{"name":"p%d","price":%d}`, i, i)))
		req.Header.Set("X-Tenant-ID", "acme")
		req.Header.Set("Authorization", "Bearer "+o.Key)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return -1, err.Error()
		}
		defer res.Body.Close()
		var body struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		if res.StatusCode == 503 && res.Header.Get("Retry-After") == "" {
			return -2, "503 without Retry-After"
		}
		return res.StatusCode, body.ID
	}

	var (
		mu       sync.Mutex
		acked    []string
		statuses = map[int]int{}
		phase    atomic.Int32 // 0 before, 1 down, 2 after
		downSeen = map[int]int{}
		n        atomic.Int64
		done     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				status, id := post(int(n.Add(1)))
				mu.Lock()
				statuses[status]++
				if phase.Load() == 1 {
					downSeen[status]++
				}
				if status == 201 {
					acked = append(acked, id)
				}
				mu.Unlock()
				if status != 201 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(time.Second)
	require.NoError(t, srv.Bounce(ctx, func() {
		phase.Store(1)
		time.Sleep(2 * time.Second)
	}))
	// Recovery: within 10 s of the server being back, writes succeed again.
	phase.Store(2)
	back := time.Now()
	require.Eventually(t, func() bool {
		status, id := post(int(n.Add(1)))
		if status == 201 {
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		}
		return status == 201
	}, 10*time.Second, 50*time.Millisecond, "rowfence did not recover after the database came back; statuses %v\n%s", statuses, logs)
	recovered := time.Since(back)
	time.Sleep(time.Second)
	close(done)
	wg.Wait()

	t.Logf("statuses %v; while down %v; recovered %s after restart; %d writes acknowledged", statuses, downSeen, recovered, len(acked))
	require.Positive(t, downSeen[503], "while the database was down, requests got 503")
	for status := range statuses {
		require.Contains(t, []int{201, 503}, status, "only 201 or 503, never a 500 or a hang: %v\n%s", statuses, logs)
	}

	// Every acknowledged write survived the crash.
	check, err := pgxpool.ParseConfig(srv.URL)
	require.NoError(t, err)
	admin, err = db.Open(ctx, check)
	require.NoError(t, err)
	defer admin.Close()
	var missing int
	require.NoError(t, admin.QueryRow(ctx, `select count(*) from unnest($1::uuid[]) as a(id)
		where not exists (select 1 from products p where p.id = a.id)`, acked).Scan(&missing))
	require.Zero(t, missing, "acknowledged writes lost")
	require.NoError(t, stop())
}

// SIGTERM under load: requests in flight finish, new connections are
// refused, and serve returns nil (exit status 0).
func TestGracefulShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	o, err := lifecycle.Onboard(ctx, tdb.AdminPool(t), lifecycle.Tenant{Slug: "acme", Name: "Acme", AdminEmail: "a@acme.example"})
	require.NoError(t, err)
	base, _, stop := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL, "SHUTDOWN_TIMEOUT": "20s", "TENANT_CONCURRENCY": "0"}, "serve")
	status, product := httpDo(t, "POST", base+"/v1/products", "acme", o.Key, `{"name":"p","price":1}`)
	require.Equal(t, 201, status)
	id := product["id"].(string)

	// Hold three requests in flight behind a row lock.
	admin := tdb.AdminPool(t)
	lock, err := admin.Begin(ctx)
	require.NoError(t, err)
	defer lock.Rollback(ctx)
	_, err = lock.Exec(ctx, "select 1 from products where id = $1 for update", id)
	require.NoError(t, err)
	inFlight := make(chan int, 3)
	for i := range 3 {
		go func() {
			status, _ := httpDo(t, "PATCH", base+"/v1/products/"+id, "acme", o.Key, fmt.Sprintf(`{"price":%d}`, i+2))
			inFlight <- status
		}()
	}
	require.Eventually(t, func() bool {
		var n int
		_ = admin.QueryRow(ctx, "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()").Scan(&n)
		return n == 3
	}, 10*time.Second, 20*time.Millisecond)

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// New connections are refused once shutdown has begun.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	require.Eventually(t, func() bool {
		res, err := fresh.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err != nil
	}, 5*time.Second, 20*time.Millisecond, "new connections must be refused during shutdown")
	select {
	case err := <-stopped:
		t.Fatalf("serve returned while requests were in flight: %v", err)
	default:
	}
	require.NoError(t, lock.Rollback(ctx))
	for range 3 {
		require.Equal(t, 200, <-inFlight, "an in-flight request finished normally")
	}
	select {
	case err := <-stopped:
		require.NoError(t, err, "exit status 0")
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after its requests finished")
	}
}
