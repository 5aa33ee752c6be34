package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/pgtest"
	schema "github.com/rowfence/rowfence/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// syncBuffer collects a server's logs while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// runCmd runs the binary's run() to completion.
func runCmd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"rowfence"}, args...), envOf(env), &out, &errOut)
	return out.String(), err
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startServer runs `rowfence <args>` in the background until the test ends
// and waits for /healthz.
func startServer(t *testing.T, env map[string]string, args ...string) (base string, logs *syncBuffer, stop func() error) {
	t.Helper()
	env["ADDR"] = freeAddr(t)
	env["LOG_FORMAT"] = "text"
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, append([]string{"rowfence"}, args...), envOf(env), io.Discard, logs) }()
	base = "http://" + env["ADDR"]
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		select {
		case err := <-errc:
			cancel()
			t.Fatalf("server exited: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not answer /healthz\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-errc:
			case <-time.After(30 * time.Second):
				stopErr = fmt.Errorf("server did not stop")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })
	return base, logs, stop
}

func httpDo(t *testing.T, method, url, tenant, key, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	req.Header.Set("X-Tenant-ID", tenant)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func TestMigrateDownUpStatus(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL}
	out, err := runCmd(t, env, "migrate", "status")
	require.NoError(t, err)
	files, err := fs.Glob(schema.Migrations, "migrations/*.sql")
	require.NoError(t, err)
	n := len(files)
	latest := fmt.Sprintf("version %d\n", latestMigrationVersion(t))
	require.Contains(t, out, strings.TrimPrefix(files[n-1], "migrations/"))
	require.NotContains(t, out, "pending")
	for range n {
		_, err := runCmd(t, env, "migrate", "down")
		require.NoError(t, err, "every migration rolls back")
	}
	out, err = runCmd(t, env, "migrate", "status")
	require.NoError(t, err)
	require.Equal(t, n, strings.Count(out, "pending"), out)
	out, err = runCmd(t, env, "migrate")
	require.NoError(t, err)
	require.Contains(t, out, latest)
	out, err = runCmd(t, env, "migrate", "up")
	require.NoError(t, err, "up is idempotent")
	require.Contains(t, out, latest)

	_, err = runCmd(t, map[string]string{}, "migrate")
	require.ErrorContains(t, err, "DATABASE_URL is not set")
	_, err = runCmd(t, env, "migrate", "sideways")
	require.ErrorContains(t, err, "unexpected argument sideways")
	require.Equal(t, 2, exitCode(err))
}

func TestTenantCommands(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL}
	out, err := runCmd(t, env, "tenant", "create", "--slug", "initech", "--name", "Initech", "--admin-email", "bill@initech.example")
	require.NoError(t, err)
	var created struct {
		ID, Slug, Status string
		Admin            struct{ ID, Email, Role string }
		APIKey           struct{ ID, Key, Role string } `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created), out)
	require.Equal(t, "initech", created.Slug)
	require.Equal(t, "active", created.Status)
	require.Len(t, created.ID, 36)
	require.Equal(t, "bill@initech.example", created.Admin.Email)
	require.Equal(t, "admin", created.Admin.Role)
	require.Equal(t, "admin", created.APIKey.Role)
	require.True(t, strings.HasPrefix(created.APIKey.Key, "rfk_"), "the first admin key is printed once")

	_, err = runCmd(t, env, "tenant", "create", "--slug", "initech", "--name", "Again", "--admin-email", "x@initech.example")
	require.ErrorContains(t, err, "already exists")
	for _, bad := range [][]string{
		{"--slug", "Initech", "--name", "x", "--admin-email", "a@b.example"},
		{"--slug", "ok-slug", "--name", "", "--admin-email", "a@b.example"},
		{"--slug", "x", "--name", "x", "--admin-email", "a@b.example"},
		{"--slug", "ok-slug", "--name", "x"},
		{"--slug", "ok-slug", "--name", "x", "--admin-email", "not an email"},
		{"--name", "x"},
		{"--slug", "ok-slug", "--name", "x", "--admin-email", "a@b.example", "extra"},
		{"--bogus"},
	} {
		_, err := runCmd(t, env, append([]string{"tenant", "create"}, bad...)...)
		require.Error(t, err, "%v", bad)
		require.Equal(t, 2, exitCode(err), "%v: %v", bad, err)
	}
	out, err = runCmd(t, env, "tenant", "list")
	require.NoError(t, err)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list, 1)
	require.Equal(t, created.ID, list[0]["id"])
	// Nothing of a failed onboarding stays behind: all or nothing.
	var users int
	require.NoError(t, tdb.AdminPool(t).QueryRow(context.Background(), "select count(*) from users").Scan(&users))
	require.Equal(t, 1, users)
}

func TestKeyCommands(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL}
	_, err := runCmd(t, env, "tenant", "create", "--slug", "acme", "--name", "Acme", "--admin-email", "wile@acme.example")
	require.NoError(t, err)
	out, err := runCmd(t, env, "key", "create", "--tenant", "acme", "--role", "member", "--name", "ci")
	require.NoError(t, err)
	var made struct{ ID, Key, Role, Name, UserID string }
	require.NoError(t, json.Unmarshal([]byte(out), &made))
	require.Equal(t, "member", made.Role)
	require.True(t, strings.HasPrefix(made.Key, "rfk_"))

	base, _, _ := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL, "AUTH_CACHE_TTL": "0"}, "serve")
	status, me := httpDo(t, "GET", base+"/v1/me", "acme", made.Key, "")
	require.Equal(t, 200, status)
	require.Equal(t, "member", me["role"])

	out, err = runCmd(t, env, "key", "list", "--tenant", "acme")
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(out, `"id"`), out)
	require.NotContains(t, out, made.Key[len(made.Key)-64:], "a listed key never shows its secret")

	_, err = runCmd(t, env, "key", "revoke", "--tenant", "acme", "--id", made.ID)
	require.NoError(t, err)
	status, _ = httpDo(t, "GET", base+"/v1/me", "acme", made.Key, "")
	require.Equal(t, 401, status, "revoked (no auth cache on this server)")

	_, err = runCmd(t, env, "key", "create", "--tenant", "acme", "--role", "viewer", "--user", "nobody@acme.example")
	require.ErrorContains(t, err, "has no user nobody@acme.example")
	_, err = runCmd(t, env, "key", "create", "--tenant", "initech", "--role", "viewer")
	require.ErrorContains(t, err, `no tenant "initech"`)
	_, err = runCmd(t, env, "key", "revoke", "--tenant", "acme", "--id", "7c1e0000-0000-4000-8000-000000000000")
	require.ErrorContains(t, err, "has no key")
	for _, bad := range [][]string{
		{"create", "--tenant", "acme", "--role", "owner"},
		{"create", "--tenant", "acme"},
		{"create", "--tenant", "acme", "--role", "viewer", "--expires", "2001-01-01T00:00:00Z"},
		{"create", "--role", "viewer"},
		{"revoke", "--tenant", "acme", "--id", "nope"},
		{"rotate", "--tenant", "acme"},
	} {
		_, err := runCmd(t, env, append([]string{"key"}, bad...)...)
		require.Equal(t, 2, exitCode(err), "%v: %v", bad, err)
	}
}

func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	out, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, "tenant", "create", "--slug", "acme", "--name", "Acme", "--admin-email", "a@acme.example")
	require.NoError(t, err)
	var created struct {
		APIKey struct{ Key string } `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created))
	key := created.APIKey.Key
	// Only DATABASE_URL: serve derives the rowfence_app connection from it.
	base, logs, stop := startServer(t, map[string]string{
		"DATABASE_URL":          tdb.AdminURL,
		"APP_DATABASE_PASSWORD": tdb.AppPassword,
	}, "serve")
	status, body := httpDo(t, "POST", base+"/v1/products", "acme", key, `{"name":"Anvil","price":100}`)
	require.Equal(t, 201, status, body)
	status, _ = httpDo(t, "GET", base+"/v1/products/"+body["id"].(string), "acme", key, "")
	require.Equal(t, 200, status)
	status, _ = httpDo(t, "GET", base+"/v1/products/"+body["id"].(string), "acme", "", "")
	require.Equal(t, 401, status)
	res, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	require.NoError(t, stop(), "SIGTERM/SIGINT: graceful shutdown, exit 0")
	require.Contains(t, logs.String(), "db_user=rowfence_app")
	require.Contains(t, logs.String(), "tenant_mode=header")
	require.Contains(t, logs.String(), "stopped")
	require.NotContains(t, logs.String(), key[len(key)-64:], "the key is never logged")
}

func TestServeFailsClosed(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	env := map[string]string{"APP_DATABASE_URL": tdb.AdminURL, "ADDR": freeAddr(t)}
	_, err := runCmd(t, env, "serve")
	require.ErrorContains(t, err, "refusing to serve")
	require.ErrorContains(t, err, "superuser")

	admin := tdb.AdminPool(t)
	_, err = admin.Exec(context.Background(), "alter table products no force row level security")
	require.NoError(t, err)
	env["APP_DATABASE_URL"] = tdb.AppURL
	_, err = runCmd(t, env, "serve")
	require.ErrorContains(t, err, "table products does not FORCE ROW LEVEL SECURITY")

	_, err = runCmd(t, map[string]string{}, "serve")
	require.ErrorContains(t, err, "APP_DATABASE_URL")
	_, err = runCmd(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL, "CURSOR_KEY": "short"}, "serve")
	require.ErrorContains(t, err, "CURSOR_KEY")
	for name, env := range map[string]map[string]string{
		"TENANT_CACHE_TTL":            {"TENANT_CACHE_TTL": "soon"},
		"AUTH_CACHE_TTL":              {"AUTH_CACHE_TTL": "-1s"},
		"TENANT_MODE":                 {"TENANT_MODE": "cookie"},
		"BASE_DOMAIN":                 {"TENANT_MODE": "subdomain"},
		"JWT_ISSUER":                  {"JWT_HS256_SECRET": strings.Repeat("s", 32)},
		"at least 32":                 {"JWT_HS256_SECRET": "short", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"},
		"JWT_PUBLIC_KEYS_FILE":        {"JWT_PUBLIC_KEYS_FILE": "/nonexistent.pem", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"},
		"TRUSTED_PROXIES":             {"TRUSTED_PROXIES": "10.0.0.0/8, 10.0.0.0/33"},
		"AUTH_FAILURE_LIMIT":          {"AUTH_FAILURE_LIMIT": "-1"},
		"AUTH_FAILURE_WINDOW":         {"AUTH_FAILURE_WINDOW": "0s"},
		"OTEL_EXPORTER_OTLP_ENDPOINT": {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
	} {
		env["APP_DATABASE_URL"] = tdb.AppURL
		_, err = runCmd(t, env, "serve")
		require.ErrorContains(t, err, name)
		require.Equal(t, 2, exitCode(err), name)
	}
}

// serve refuses a role that can become the owner through a NOINHERIT role
// (issue 14, item 1), where it used to start and serve, and leakcheck names
// it. Roles are shared by
// every test of the run, so this widens a stand-in for rowfence_app, and is
// not parallel: TestAuditCommand must not see the stand-in.
func TestServeRefusesARoleThatCanBecomeTheOwner(t *testing.T) {
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	role, standIn := tdb.StandIn(t, "rowfence_app")
	_, err := admin.Exec(context.Background(), "create role "+role+"_mid nologin noinherit; grant rowfence_owner to "+role+"_mid; grant "+role+"_mid to "+role)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := envOf(map[string]string{"APP_DATABASE_URL": standIn, "ADDR": freeAddr(t)})
	err = run(ctx, []string{"rowfence", "serve"}, env, io.Discard, io.Discard)
	require.ErrorContains(t, err, "can become rowfence_owner (SET ROLE)")

	// leakcheck, given that role's connection, reports it too.
	base, _, _ := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL}, "serve")
	out, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, "leakcheck", "--url", base, "--create", "--db", standIn)
	require.Equal(t, 1, exitCode(err), out)
	require.Contains(t, out, "LEAK  sql: role cannot become a role that bypasses RLS or owns a tenant table")
	require.Contains(t, out, `can become: "rowfence_owner"`)
}

func TestUsage(t *testing.T) {
	t.Parallel()
	_, err := runCmd(t, nil)
	require.Equal(t, 2, exitCode(err))
	_, err = runCmd(t, nil, "frobnicate")
	require.ErrorContains(t, err, "unexpected argument frobnicate")
	require.Equal(t, 2, exitCode(err))
	out, err := runCmd(t, nil, "help")
	require.NoError(t, err)
	require.Contains(t, out, "rowfence <command>")
	require.Contains(t, out, "  serve ")
	// The environment half is the table's (config.Vars), not a copy of it.
	require.True(t, strings.HasSuffix(out, "\nEnvironment (read by the commands in brackets; empty is unset):\n"+config.Usage("")), out)
	_, err = runCmd(t, map[string]string{"LOG_FORMAT": "xml"}, "serve")
	require.ErrorContains(t, err, "LOG_FORMAT")
	require.Equal(t, 2, exitCode(err))

	// serve -h lists the variables serve reads, and no others, on stdout
	// (issue 17: help is asked for, so it is no error).
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"rowfence", "serve", "-h"}, envOf(nil), &stdout, &stderr)
	require.NoError(t, err)
	require.Empty(t, stderr.String())
	require.True(t, strings.HasSuffix(stdout.String(), "Environment (empty is unset):\n"+config.Usage("serve")), stdout.String())
	require.Contains(t, stdout.String(), "\n  TENANT_CACHE_TTL ")
	require.NotContains(t, stdout.String(), "LEAKCHECK_KEY_A")

	// A command reads only its variables: a bad serving setting does not
	// stop an operator command (this one then needs DATABASE_URL).
	_, err = runCmd(t, map[string]string{"RATE_LIMIT": "fast"}, "tenant", "list")
	require.ErrorContains(t, err, "DATABASE_URL is not set")
	// Every invalid variable of the command, at once.
	_, err = runCmd(t, map[string]string{"RATE_LIMIT": "fast", "TENANT_MODE": "cookie"}, "serve")
	require.ErrorContains(t, err, `RATE_LIMIT must be a number from 0 to 1000000, not "fast"`)
	require.ErrorContains(t, err, `TENANT_MODE must be header, subdomain, path or token, not "cookie"`)
	require.Equal(t, 2, exitCode(err))
}

func TestAuditCommand(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL}
	out, err := runCmd(t, env, "audit")
	require.NoError(t, err, out)
	require.Contains(t, out, "0 defect(s)")
	require.Contains(t, out, "accepted  security-definer")
	out, err = runCmd(t, env, "audit", "--format", "json")
	require.NoError(t, err)
	var rep struct {
		Findings []map[string]any `json:"findings"`
		Defects  int              `json:"defects"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Zero(t, rep.Defects)
	require.NotEmpty(t, rep.Findings)

	admin := tdb.AdminPool(t)
	_, err = admin.Exec(context.Background(), "alter table products no force row level security")
	require.NoError(t, err)
	out, err = runCmd(t, env, "audit")
	require.ErrorContains(t, err, "1 defect(s)")
	require.Equal(t, 1, exitCode(err))
	require.Contains(t, out, "DEFECT    rls-not-forced")
	_, err = runCmd(t, env, "audit", "--format", "yaml")
	require.Equal(t, 2, exitCode(err))
}

// make test runs the black-box leak suite against a server it starts, in
// every tenant identification mode; leakcheck onboards its own two tenants.
func TestLeakcheckAgainstServe(t *testing.T) {
	t.Parallel()
	// The last run is rate limited hard: leakcheck waits out 429s instead
	// of reporting them.
	for _, run := range []string{"header", "subdomain", "path", "token", "header rate-limited"} {
		mode, limited := strings.CutSuffix(run, " rate-limited")
		t.Run(run, func(t *testing.T) {
			t.Parallel()
			tdb := pgtest.New(t)
			env := map[string]string{"APP_DATABASE_URL": tdb.AppURL, "TENANT_MODE": mode, "BASE_DOMAIN": "api.leakcheck.test"}
			if limited {
				env["RATE_LIMIT"], env["RATE_BURST"] = "500", "20"
			}
			base, _, _ := startServer(t, env, "serve")
			args := []string{"leakcheck", "--url", base, "--create", "--mode", mode, "--db", tdb.AppURL}
			if mode == "subdomain" {
				args = append(args, "--base-domain", "api.leakcheck.test")
			}
			out, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, args...)
			require.NoError(t, err, out)
			t.Log("\n" + out)
			require.Contains(t, out, ", 0 leak(s)")
			require.NotContains(t, out, "LEAK ")
			require.GreaterOrEqual(t, strings.Count(out, "\npass"), 55, out)
			if mode != "token" {
				require.Contains(t, out, "pass  credential: A's key naming B ("+mode+")")
			}
		})
	}
}

// The suite must be able to fail: against a server that ignores the tenant,
// it reports the leaks and exits non-zero.
func TestLeakcheckCatchesALeakyServer(t *testing.T) {
	t.Parallel()
	rows := map[string]map[string]any{}
	var mu sync.Mutex
	leaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		tenant := r.Header.Get("X-Tenant-ID")
		switch {
		case r.Method == "POST":
			id := fmt.Sprintf("%08d-0000-4000-8000-000000000000", len(rows)+1)
			row := map[string]any{"id": id, "tenant_id": fmt.Sprintf("%08x-0000-4000-8000-000000000000", len(tenant)), "name": "x"}
			rows[id] = row
			w.WriteHeader(201)
			_ = json.NewEncoder(w).Encode(row)
		case strings.Count(r.URL.Path, "/") == 3: // /v1/kind/{id}: any tenant may read any row
			if row, ok := rows[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]; ok {
				_ = json.NewEncoder(w).Encode(row)
				return
			}
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"status":404}`))
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"items": []any{}, "next_cursor": nil})
		}
	})
	srv := httptest.NewServer(leaky)
	defer srv.Close()
	out, err := runCmd(t, map[string]string{"LEAKCHECK_KEY_A": "rfk_a", "LEAKCHECK_KEY_B": "rfk_b"},
		"leakcheck", "--url", srv.URL, "--tenant-a", "a-tenant", "--tenant-b", "b-tenant-longer")
	require.Error(t, err)
	require.Contains(t, out, "LEAK  foreign id: GET /v1/products/{B's id}")
	require.Equal(t, 1, exitCode(err))
}

// Limits from the environment and per tenant, end to end through serve.
func TestTenantLimitsCommandAndServe(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL}
	out, err := runCmd(t, env, "tenant", "create", "--slug", "acme", "--name", "Acme", "--admin-email", "a@acme.example")
	require.NoError(t, err)
	var created struct {
		APIKey struct{ Key string } `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created))

	out, err = runCmd(t, env, "tenant", "limits", "--slug", "acme", "--rate", "0.01", "--burst", "2", "--statement-timeout", "1500ms")
	require.NoError(t, err)
	var got struct{ Limits map[string]any }
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Equal(t, map[string]any{"rate_limit": 0.01, "rate_burst": 2.0, "max_concurrency": nil, "statement_timeout_ms": 1500.0}, got.Limits)

	base, _, _ := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL, "TENANT_CACHE_TTL": "0", "RATE_LIMIT": "1000"}, "serve")
	for i, want := range []int{200, 200, 429} {
		status, body := httpDo(t, "GET", base+"/v1/products", "acme", created.APIKey.Key, "")
		require.Equal(t, want, status, "request %d: %v", i, body)
	}
	_, err = runCmd(t, env, "tenant", "limits", "--slug", "acme", "--rate", "default", "--burst", "default")
	require.NoError(t, err)
	status, _ := httpDo(t, "GET", base+"/v1/products", "acme", created.APIKey.Key, "")
	require.Equal(t, 200, status, "back to the server's 1000/s")

	for _, bad := range [][]string{
		{"--slug", "acme", "--rate", "0"},
		{"--slug", "acme", "--rate", "fast"},
		{"--slug", "acme", "--burst", "0"},
		{"--slug", "acme", "--concurrency", "1.5"},
		{"--slug", "acme", "--statement-timeout", "2h"},
		{"--rate", "1"},
	} {
		_, err := runCmd(t, env, append([]string{"tenant", "limits"}, bad...)...)
		require.Equal(t, 2, exitCode(err), "%v: %v", bad, err)
	}
	_, err = runCmd(t, env, "tenant", "limits", "--slug", "initech", "--rate", "1")
	require.ErrorContains(t, err, `no tenant "initech"`)
	for name, env := range map[string]map[string]string{
		"RATE_LIMIT":         {"RATE_LIMIT": "-1"},
		"RATE_BURST":         {"RATE_BURST": "0"},
		"TENANT_CONCURRENCY": {"TENANT_CONCURRENCY": "2.5"},
		"ACQUIRE_TIMEOUT":    {"ACQUIRE_TIMEOUT": "soon"},
		"METRICS_TOKEN":      {"METRICS_TOKEN": "short"},
		"METRICS_PPROF":      {"METRICS_PPROF": "yes", "METRICS_ADDR": "127.0.0.1:0"},
		"METRICS_ADDR":       {"METRICS_PPROF": "true"},
	} {
		env["APP_DATABASE_URL"] = tdb.AppURL
		_, err = runCmd(t, env, "serve")
		require.ErrorContains(t, err, name)
	}
}

// METRICS_ADDR serves Prometheus metrics on a listener of its own.
func TestServeMetricsListener(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	metricsAddr := freeAddr(t)
	base, _, _ := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL, "METRICS_ADDR": metricsAddr}, "serve")
	status, _ := httpDo(t, "GET", base+"/v1/products", "acme", "", "")
	require.Equal(t, 401, status)
	// A made-up key: a failed credential, a cache miss, a negative entry.
	madeUp := "rfk_" + strings.Repeat("a", 32) + "_" + strings.Repeat("b", 32) + "_" + strings.Repeat("c", 64)
	status, _ = httpDo(t, "GET", base+"/v1/products", "acme", madeUp, "")
	require.Equal(t, 401, status)
	res, err := http.Get("http://" + metricsAddr + "/metrics")
	require.NoError(t, err)
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, string(raw), `rowfence_http_requests_total{method="GET",route="GET /v1/products",status="401"} 2`)
	require.Contains(t, string(raw), "rowfence_db_pool_max_conns")
	for _, line := range []string{
		`rowfence_auth_failures_total{credential="api_key"} 1`,
		`rowfence_auth_throttled_total 0`,
		`rowfence_cache_lookups_total{cache="api_keys",result="miss"} 1`,
		`rowfence_cache_entries{cache="api_keys",side="negative"} 1`,
		`rowfence_cache_evictions_total{cache="tenants",side="positive"} 0`,
		`rowfence_cache_entries{cache="auth_failures",side="positive"} 1`,
	} {
		require.Contains(t, string(raw), line)
	}
	res, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 404, res.StatusCode, "not on the API listener without METRICS_TOKEN")
	res, err = http.Get("http://" + metricsAddr + "/debug/pprof/cmdline")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 404, res.StatusCode, "no profiler without METRICS_PPROF")

	profiled := freeAddr(t)
	startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL, "METRICS_ADDR": profiled, "METRICS_PPROF": "true"}, "serve")
	res, err = http.Get("http://" + profiled + "/debug/pprof/cmdline")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode, "METRICS_PPROF serves the profiler on the metrics listener")
}

// The lifecycle from the command line: suspend, activate, export, delete,
// import, delete with a grace period and purge; and platform admin keys.
func TestTenantLifecycleCommands(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL}
	for _, slug := range []string{"acme", "globex"} {
		_, err := runCmd(t, env, "tenant", "create", "--slug", slug, "--name", slug, "--admin-email", "a@"+slug+".example")
		require.NoError(t, err)
	}
	out, err := runCmd(t, env, "tenant", "suspend", "--slug", "acme")
	require.NoError(t, err)
	require.Contains(t, out, `"status": "suspended"`)
	out, err = runCmd(t, env, "tenant", "activate", "--slug", "acme")
	require.NoError(t, err)
	require.Contains(t, out, `"status": "active"`)

	file := t.TempDir() + "/acme.jsonl"
	_, err = runCmd(t, env, "tenant", "export", "--slug", "acme", "--out", file)
	require.NoError(t, err)
	_, err = runCmd(t, env, "tenant", "export", "--slug", "acme", "--out", file)
	require.Error(t, err, "an export never overwrites a file")
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "globex", "as the superuser too, an export holds one tenant")
	_, err = runCmd(t, env, "tenant", "delete", "--slug", "acme")
	require.NoError(t, err)
	out, err = runCmd(t, env, "tenant", "import", "--slug", "acme", file)
	require.NoError(t, err, out)
	require.Contains(t, out, `"users": 1`)
	_, err = runCmd(t, env, "tenant", "import", "--slug", "acme", file)
	require.ErrorContains(t, err, "not empty")
	require.NoError(t, os.WriteFile(file+".cut", raw[:len(raw)/2], 0o600))
	_, err = runCmd(t, env, "tenant", "import", "--slug", "initech", file+".cut")
	require.ErrorContains(t, err, "not a valid rowfence tenant export")

	out, err = runCmd(t, env, "tenant", "delete", "--slug", "globex", "--grace", "1h")
	require.NoError(t, err)
	require.Contains(t, out, `"status": "deleting"`)
	out, err = runCmd(t, env, "tenant", "purge")
	require.NoError(t, err)
	require.Contains(t, out, `"purged": []`, "still in its grace period")
	_, err = tdb.AdminPool(t).Exec(context.Background(), "update tenants set purge_after = now() - interval '1 second' where slug = 'globex'")
	require.NoError(t, err)
	out, err = runCmd(t, env, "tenant", "purge")
	require.NoError(t, err)
	require.Contains(t, out, `"globex"`)

	for _, bad := range [][]string{{"suspend"}, {"delete", "--slug", "acme", "--grace", "-1h"}, {"import", "--slug", "acme"}, {"export", "--slug", "ACME"}} {
		_, err := runCmd(t, env, append([]string{"tenant"}, bad...)...)
		require.Equal(t, 2, exitCode(err), "%v: %v", bad, err)
	}

	out, err = runCmd(t, env, "admin", "key", "create", "--name", "ops")
	require.NoError(t, err)
	var k struct{ ID, Key string }
	require.NoError(t, json.Unmarshal([]byte(out), &k))
	require.True(t, strings.HasPrefix(k.Key, "rfp_"))
	out, err = runCmd(t, env, "admin", "key", "list")
	require.NoError(t, err)
	require.Contains(t, out, k.ID)
	require.NotContains(t, out, k.Key[len(k.Key)-64:])
	_, err = runCmd(t, env, "admin", "key", "revoke", "--id", k.ID)
	require.NoError(t, err)
	_, err = runCmd(t, env, "admin", "rotate")
	require.Equal(t, 2, exitCode(err))
}

// serve with a platform pool: /v1/admin works with a platform key, and the
// deletion loop purges a tenant whose grace period is over.
func TestServePlatformAdministration(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL}
	out, err := runCmd(t, env, "admin", "key", "create")
	require.NoError(t, err)
	var k struct{ Key string }
	require.NoError(t, json.Unmarshal([]byte(out), &k))
	_, err = runCmd(t, env, "tenant", "create", "--slug", "doomed", "--name", "Doomed", "--admin-email", "a@doomed.example")
	require.NoError(t, err)
	base, logs, _ := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL, "PLATFORM_DATABASE_URL": tdb.PlatformURL,
		"PURGE_INTERVAL": "100ms"}, "serve")
	req, err := http.NewRequest("POST", base+"/v1/admin/tenants", strings.NewReader(`{"slug":"fresh","name":"Fresh","admin_email":"a@fresh.example"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+k.Key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 201, res.StatusCode)

	_, err = tdb.AdminPool(t).Exec(context.Background(), "update tenants set status = 'deleting', purge_after = now() where slug = 'doomed'")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "tenant purged") }, 10*time.Second, 50*time.Millisecond)
	var n int
	require.NoError(t, tdb.AdminPool(t).QueryRow(context.Background(), "select count(*) from tenants where slug = 'doomed'").Scan(&n))
	require.Zero(t, n)
}

// latestMigrationVersion is the number of the last migration file. Versions
// may skip numbers, so it is not the count of files.
func latestMigrationVersion(t *testing.T) int64 {
	t.Helper()
	files, err := fs.Glob(schema.Migrations, "migrations/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	version, err := strconv.ParseInt(strings.SplitN(strings.TrimPrefix(files[len(files)-1], "migrations/"), "_", 2)[0], 10, 64)
	require.NoError(t, err)
	return version
}
