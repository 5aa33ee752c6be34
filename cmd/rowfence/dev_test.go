//go:build dev

package main

import (
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/pgtest"
)

// These tests need the dev tag, as the command does: make test runs them
// with `go test -tags dev -run '^TestDev' ./cmd/rowfence`.

// seedFlag is the words that let dev seed a database it did not create.
const seedFlag = "--seed-public-keys-into-existing-database"

// runDevFor runs `rowfence dev args...` for at most d: a dev that refuses
// returns at once; one that serves is stopped after d and reported as nil
// error with served true.
func runDevFor(t *testing.T, d time.Duration, env map[string]string, args ...string) (err error, served bool) {
	t.Helper()
	env["ADDR"] = freeAddr(t)
	env["LOG_FORMAT"] = "text"
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, append([]string{"rowfence", "dev"}, args...), envOf(env), io.Discard, logs) }()
	select {
	case err = <-errc:
		return err, false
	case <-time.After(d):
		cancel()
		<-errc
		t.Logf("dev logs:\n%s", logs)
		return nil, true
	}
}

// countSeeded counts what the demo seed writes: tenants and platform keys.
func countSeeded(t *testing.T, adminURL string) (tenants, platformKeys int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.NoError(t, conn.QueryRow(ctx,
		"select (select count(*) from tenants), (select count(*) from platform_keys)").Scan(&tenants, &platformKeys))
	return tenants, platformKeys
}

// Issue 14 item 4: with DATABASE_URL set, dev migrated that server and
// seeded the README's public keys and a platform admin key into it. It must
// refuse, say how to go on, and write nothing.
func TestDevRefusesDatabaseURLWithoutTheFlag(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	err, served := runDevFor(t, 20*time.Second, map[string]string{
		"DATABASE_URL":          tdb.AdminURL,
		"APP_DATABASE_PASSWORD": tdb.AppPassword,
	})
	tenants, platformKeys := countSeeded(t, tdb.AdminURL)
	require.False(t, served, "dev served an external DATABASE_URL (%d tenants, %d platform keys seeded)", tenants, platformKeys)
	require.Error(t, err)
	require.Equal(t, 2, exitCode(err), "a usage error")
	for _, want := range []string{"DATABASE_URL", "public", seedFlag, "unset DATABASE_URL"} {
		require.Contains(t, err.Error(), want)
	}
	require.Zero(t, tenants, "nothing seeded")
	require.Zero(t, platformKeys, "no platform key seeded")
}

// A --data directory holding a cluster dev did not create (no pgserver
// marker) is refused the same way, before anything starts.
func TestDevRefusesAClusterItDidNotCreate(t *testing.T) {
	t.Parallel()
	base, err := os.MkdirTemp("", "rf-dev-foreign-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o755)) // reachable by the postgres user under root
	t.Cleanup(func() { os.RemoveAll(base) })
	foreign := filepath.Join(base, "cluster")
	require.NoError(t, os.Mkdir(foreign, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(foreign, "PG_VERSION"), []byte("15\n"), 0o600))

	err, served := runDevFor(t, 20*time.Second, map[string]string{}, "--data", foreign)
	if served {
		t.Skip("a Docker daemon answered: dev used a container of its own, not --data")
	}
	if errors.Is(err, pgserver.ErrNoServer) {
		t.Skip("no PostgreSQL server binaries here")
	}
	require.Error(t, err)
	require.Equal(t, 2, exitCode(err), "a usage error: %v", err)
	require.Contains(t, err.Error(), foreign)
	require.Contains(t, err.Error(), seedFlag)
	entries, err := os.ReadDir(foreign)
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing written into it")
}

// dev is what `make run` runs; told in so many words, it seeds DATABASE_URL.
// The README's curl examples rely on the seeded ids checked here.
func TestDevSeedsTheReadmeExamples(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	base, _, stop := startServer(t, map[string]string{
		"DATABASE_URL":          tdb.AdminURL,
		"APP_DATABASE_PASSWORD": tdb.AppPassword,
	}, "dev", seedFlag)
	anvil := "/v1/products/a2000000-0000-4000-8000-000000000001"
	status, body := httpDo(t, "GET", base+anvil, "acme", demoAcmeAdmin, "")
	require.Equal(t, 200, status)
	require.Equal(t, "Anvil", body["name"])
	status, _ = httpDo(t, "GET", base+anvil, "globex", demoGlobexAdmin, "")
	require.Equal(t, 404, status)
	status, _ = httpDo(t, "GET", base+"/v1/products", "globex", demoAcmeAdmin, "")
	require.Equal(t, 403, status)
	status, _ = httpDo(t, "POST", base+"/v1/products", "acme", demoAcmeViewer, `{"name":"Flamethrower","price":4200}`)
	require.Equal(t, 403, status)
	status, body = httpDo(t, "GET", base+"/v1/me", "acme", demoAcmeViewer, "")
	require.Equal(t, 200, status)
	require.Equal(t, "viewer", body["role"])
	status, body = httpDo(t, "GET", base+"/v1/users?limit=2", "acme", demoAcmeAdmin, "")
	require.Equal(t, 200, status)
	require.Len(t, body["items"], 2)
	require.NotNil(t, body["next_cursor"])
	status, body = httpDo(t, "POST", base+"/v1/api-keys", "acme", demoAcmeAdmin, `{"role":"member","name":"ci"}`)
	require.Equal(t, 201, status)
	require.NotEmpty(t, body["key"])
	require.NoError(t, stop())
	tenants, platformKeys := countSeeded(t, tdb.AdminURL)
	require.Equal(t, 2, tenants)
	require.Equal(t, 1, platformKeys)

	// Running dev again re-seeds nothing and still serves; with
	// PLATFORM_DATABASE_PASSWORD (a field of the configuration like any
	// other, set by migrate's locked steps) the demo platform key works.
	platformURL, err := url.Parse(tdb.PlatformURL)
	require.NoError(t, err)
	platformPassword, _ := platformURL.User.Password()
	base, _, stop = startServer(t, map[string]string{
		"DATABASE_URL":               tdb.AdminURL,
		"APP_DATABASE_PASSWORD":      tdb.AppPassword,
		"PLATFORM_DATABASE_PASSWORD": platformPassword,
	}, "dev", seedFlag)
	status, body = httpDo(t, "GET", base+"/v1/products", "acme", demoAcmeAdmin, "")
	require.Equal(t, 200, status)
	require.Len(t, body["items"], 3)
	if platformPassword != "" { // "": the test server trusts its clients
		status, _ = httpDo(t, "GET", base+"/v1/admin/tenants", "", demoPlatform, "")
		require.Equal(t, 200, status, "platform administration is on")
	}
	require.NoError(t, stop())
}
