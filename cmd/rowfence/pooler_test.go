package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/pgtest"
)

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

// send makes one API request as tenant with key; headers are name, value pairs.
func send(t *testing.T, method, url, tenant, key, body string, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if tenant != "" {
		req.Header.Set("X-Tenant-ID", tenant)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	r := reply{status: res.StatusCode, header: res.Header}
	r.raw, err = io.ReadAll(res.Body)
	require.NoError(t, err)
	if ct := res.Header.Get("Content-Type"); ct == "application/json" || ct == "application/problem+json" {
		require.NoError(t, json.Unmarshal(r.raw, &r.body), string(r.raw))
	}
	return r
}

func (r reply) want(t *testing.T, status int) reply {
	t.Helper()
	require.Equal(t, status, r.status, string(r.raw))
	return r
}

// apiFlow is every kind of database work a request does: the auth path
// (API key, tenant), writes, reads, lists with cursors, search,
// Idempotency-Key (jsonb headers), exports (the River job on the platform
// pool, jsonb counts, bytea content), and /readyz.
func apiFlow(t *testing.T, base, tenant, key string) {
	t.Helper()
	v1 := base + "/v1"
	send(t, "GET", v1+"/me", tenant, key, "").want(t, 200)
	wrong := key[:len(key)-1] + map[bool]string{true: "1", false: "0"}[strings.HasSuffix(key, "0")]
	send(t, "GET", v1+"/me", tenant, wrong, "").want(t, 401)

	idem := []string{httpapi.IdempotencyKeyHeader, "flow-1"}
	first := send(t, "POST", v1+"/products", tenant, key, `{"name":"Anvil","price":100}`, idem...).want(t, 201)
	again := send(t, "POST", v1+"/products", tenant, key, `{"name":"Anvil","price":100}`, idem...).want(t, 201)
	require.Equal(t, "true", again.header.Get(httpapi.ReplayedHeader))
	require.Equal(t, first.body, again.body)
	send(t, "POST", v1+"/products", tenant, key, `{"name":"Other","price":1}`, idem...).want(t, 422)
	id := first.body["id"].(string)
	send(t, "PATCH", v1+"/products/"+id, tenant, key, `{"price":150}`).want(t, 200)
	require.EqualValues(t, 150, send(t, "GET", v1+"/products/"+id, tenant, key, "").want(t, 200).body["price"])
	for i := range 3 {
		send(t, "POST", v1+"/products", tenant, key, fmt.Sprintf(`{"name":"Anvil %d","price":%d}`, i, i)).want(t, 201)
	}
	page := send(t, "GET", v1+"/products?limit=2", tenant, key, "").want(t, 200)
	require.Len(t, page.body["items"], 2)
	page = send(t, "GET", v1+"/products?limit=2&cursor="+url.QueryEscape(page.body["next_cursor"].(string)), tenant, key, "").want(t, 200)
	require.Len(t, page.body["items"], 2)
	require.Len(t, send(t, "GET", v1+"/products?q=anvil%202&sort=name", tenant, key, "").want(t, 200).body["items"], 1)
	send(t, "DELETE", v1+"/products/"+id, tenant, key, "").want(t, 204)
	send(t, "GET", v1+"/products/"+id, tenant, key, "").want(t, 404)

	user := send(t, "POST", v1+"/users", tenant, key, `{"name":"Vi","email":"vi@example.com","role":"viewer"}`,
		httpapi.IdempotencyKeyHeader, "flow-user").want(t, 201)
	require.Len(t, send(t, "GET", v1+"/users?email=vi@example.com", tenant, key, "").want(t, 200).body["items"], 1)
	made := send(t, "POST", v1+"/api-keys", tenant, key, fmt.Sprintf(`{"role":"viewer","user_id":%q}`, user.body["id"]),
		httpapi.IdempotencyKeyHeader, "flow-key").want(t, 201)
	viewer := made.body["key"].(string)
	send(t, "GET", v1+"/products", tenant, viewer, "").want(t, 200)
	send(t, "POST", v1+"/products", tenant, viewer, `{"name":"no","price":1}`).want(t, 403)
	send(t, "GET", v1+"/api-keys", tenant, key, "").want(t, 200)

	export := send(t, "POST", v1+"/exports", tenant, key, "", httpapi.IdempotencyKeyHeader, "flow-export").want(t, 202)
	send(t, "POST", v1+"/exports", tenant, key, "", httpapi.IdempotencyKeyHeader, "flow-export").want(t, 202)
	loc := base + export.header.Get("Location")
	require.Eventually(t, func() bool {
		got := send(t, "GET", loc, tenant, key, "").want(t, 200)
		require.NotEqual(t, "failed", got.body["status"], string(got.raw))
		return got.body["status"] == "done"
	}, 30*time.Second, 100*time.Millisecond)
	done := send(t, "GET", loc, tenant, key, "").want(t, 200)
	require.EqualValues(t, 3, done.body["counts"].(map[string]any)["products"])
	download := send(t, "GET", loc+"/download", tenant, key, "").want(t, 200)
	require.Contains(t, string(download.raw), `"name":"Anvil 2"`)
	send(t, "GET", v1+"/exports", tenant, key, "").want(t, 200)
	send(t, "GET", base+"/readyz", "", "", "").want(t, 200)
}

// poolerEnv makes a tenant and returns serve's environment for tdb, with
// both pools' connection strings passed through connString (a function of
// the role's user and password), and the tenant's admin key.
func poolerEnv(t *testing.T, tdb *pgtest.DB, connString func(user, password string) string) (map[string]string, string) {
	t.Helper()
	out, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, "tenant", "create", "--slug", "acme", "--name", "Acme", "--admin-email", "a@acme.example")
	require.NoError(t, err)
	var created struct {
		APIKey struct{ Key string } `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created))
	platform, err := url.Parse(tdb.PlatformURL)
	require.NoError(t, err)
	platformPassword, _ := platform.User.Password()
	return map[string]string{
		"APP_DATABASE_URL":      connString(db.AppRole, tdb.AppPassword),
		"PLATFORM_DATABASE_URL": connString(db.PlatformRole, platformPassword),
		"CURSOR_KEY":            strings.Repeat("c", 32),
	}, created.APIKey.Key
}

// withMode adds default_query_exec_mode to a URL connection string.
func withMode(connString, mode string) string {
	if mode == "" {
		return connString
	}
	sep := "?"
	if strings.Contains(connString, "?") {
		sep = "&"
	}
	return connString + sep + "default_query_exec_mode=" + mode
}

// The whole API flow in each of pgx's exec modes, straight to PostgreSQL.
func TestServeInEveryExecMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			tdb := pgtest.New(t)
			direct := func(user, password string) string {
				u, err := url.Parse(tdb.AppURL)
				require.NoError(t, err)
				u.User = url.UserPassword(user, password)
				return withMode(u.String(), mode)
			}
			env, key := poolerEnv(t, tdb, direct)
			base, logs, _ := startServer(t, env, "serve")
			apiFlow(t, base, "acme", key)
			require.NotContains(t, logs.String(), "transaction pooler", "no pooler here")
		})
	}
}

// serve through Debian's PgBouncer (1.18) in transaction mode, both pools
// (requests, and the platform pool that runs River's jobs): serve finds the
// pooler, says so in one line, and runs unprepared; every request works,
// many at once, and /readyz never flips.
func TestServeThroughPgBouncer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	platform, err := url.Parse(tdb.PlatformURL)
	require.NoError(t, err)
	platformPassword, _ := platform.User.Password()
	bouncer, err := pgserver.StartPgBouncerWith(ctx, tdb.AppURL, pgserver.BouncerOptions{PoolSize: 3,
		Users: map[string]string{db.PlatformRole: platformPassword}})
	require.NoError(t, err, "make test installs pgbouncer (make test-deps); or apt-get install -y pgbouncer")
	t.Cleanup(bouncer.Stop)
	env, key := poolerEnv(t, tdb, bouncer.URLFor)
	env["RATE_LIMIT"], env["RATE_BURST"], env["TENANT_CONCURRENCY"] = "100000", "100000", "100"
	base, logs, stop := startServer(t, env, "serve")
	apiFlow(t, base, "acme", key)

	// Many requests at once over few server connections: no 5xx, ever.
	var wg sync.WaitGroup
	failures := make(chan string, 1000)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				var r reply
				switch i % 4 {
				case 0:
					r = send(t, "POST", base+"/v1/products", "acme", key, fmt.Sprintf(`{"name":"w%d-%d","price":1}`, w, i),
						httpapi.IdempotencyKeyHeader, fmt.Sprintf("burst-%d-%d", w, i))
				case 1:
					r = send(t, "GET", base+"/v1/products?limit=5", "acme", key, "")
				case 2:
					r = send(t, "GET", base+"/v1/me", "acme", key, "")
				case 3:
					r = send(t, "GET", base+"/readyz", "", "", "")
				}
				if r.status >= 300 {
					failures <- fmt.Sprintf("%d %s", r.status, r.raw)
				}
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	require.NoError(t, stop())
	require.Equal(t, 2, strings.Count(logs.String(), "found a transaction pooler that cannot keep prepared statements"),
		"one line for each pool:\n%s", logs)
	require.NotContains(t, logs.String(), "level=ERROR", logs)
}

// A mode the operator set that cannot work through the pooler is refused at
// start, with one message that says what to do; one that works is kept.
func TestServeRefusesAnExecModeThePoolerBreaks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	bouncer, err := pgserver.StartPgBouncer(ctx, tdb.AppURL, 2)
	require.NoError(t, err)
	t.Cleanup(bouncer.Stop)
	for _, mode := range []string{"cache_statement", "describe_exec"} {
		_, err := runCmd(t, map[string]string{"APP_DATABASE_URL": withMode(bouncer.URL, mode), "ADDR": freeAddr(t)}, "serve")
		require.ErrorContains(t, err, "APP_DATABASE_URL")
		require.ErrorContains(t, err, "default_query_exec_mode="+mode)
		require.ErrorContains(t, err, "use exec")
		require.Equal(t, 2, exitCode(err))
	}
	base, logs, _ := startServer(t, map[string]string{"APP_DATABASE_URL": withMode(bouncer.URL, "simple_protocol")}, "serve")
	send(t, "GET", base+"/readyz", "", "", "").want(t, 200)
	require.Contains(t, logs.String(), "default_query_exec_mode=simple_protocol")
}

// Operator commands act as rowfence_owner through a session-level SET ROLE
// made when they connect (db.AsOwner), which RLS binds even when
// DATABASE_URL is a superuser. Through a transaction pooler that SET ROLE
// stays on one server connection, and the command's later transactions may
// run as the superuser: a tenant export would hold every tenant's rows. They
// refuse a transaction pooler instead.
func TestOperatorCommandsRefuseATransactionPooler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	for _, slug := range []string{"acme", "globex"} {
		_, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, "tenant", "create", "--slug", slug, "--name", slug, "--admin-email", "a@"+slug+".example")
		require.NoError(t, err)
	}
	bouncer, err := pgserver.StartPgBouncer(ctx, tdb.AdminURL, 2)
	require.NoError(t, err)
	t.Cleanup(bouncer.Stop)
	// Another client of the same role, so that server connections move.
	noiseCtx, stopNoise := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := pgx.Connect(noiseCtx, withMode(bouncer.URL, "simple_protocol"))
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		for noiseCtx.Err() == nil {
			_, _ = conn.Exec(noiseCtx, "begin; select pg_sleep(0.001); commit")
		}
	}()
	defer func() { stopNoise(); wg.Wait() }()
	for range 5 {
		out, err := runCmd(t, map[string]string{"DATABASE_URL": withMode(bouncer.URL, "exec")}, "tenant", "export", "--slug", "acme")
		require.NotContains(t, out, "globex", "LEAK: an export through the pooler holds another tenant's rows")
		require.ErrorIs(t, err, db.ErrTransactionPooler)
	}
	// Migrations too: goose's lock and River's tables' owner need a session.
	_, err = runCmd(t, map[string]string{"DATABASE_URL": withMode(bouncer.URL, "exec")}, "migrate", "status")
	require.ErrorIs(t, err, db.ErrTransactionPooler)
	t.Log(err)
}
