package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/pgtest"
)

// Issue #18 item 2: every cell is governed the same way. `migrate` brings
// a fresh second cell to the default cell's version; serve refuses a cell
// that is behind; `audit` checks every cell; tenants are placed by label
// from the CLI and served from their cells; and leakcheck, attacking from
// a tenant in the default cell a tenant in the other cell, finds no leak.
func TestCellsAreGovernedTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	cellURL := pgtest.Empty(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL, "CELLS": "eu1=" + cellURL,
		"APP_DATABASE_PASSWORD": tdb.AppPassword, "PLATFORM_DATABASE_PASSWORD": tdb.AppPassword}
	latest := latestMigrationVersion(t)

	// A cell that is not migrated is refused.
	_, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL, "CELLS": env["CELLS"], "APP_DATABASE_PASSWORD": tdb.AppPassword, "ADDR": freeAddr(t)}, "serve")
	require.ErrorContains(t, err, "cell eu1")
	require.ErrorContains(t, err, "rowfence migrate")

	out, err := runCmd(t, env, "migrate")
	require.NoError(t, err, out)
	require.Contains(t, out, fmt.Sprintf("cell eu1 at migration version %d\n", latest))

	// One step behind: refused, naming both versions.
	_, err = runCmd(t, map[string]string{"DATABASE_URL": cellURL}, "migrate", "down")
	require.NoError(t, err)
	_, err = runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL, "CELLS": env["CELLS"], "APP_DATABASE_PASSWORD": tdb.AppPassword, "ADDR": freeAddr(t)}, "serve")
	require.ErrorContains(t, err, "cell eu1")
	require.ErrorContains(t, err, "behind")
	out, err = runCmd(t, env, "migrate")
	require.NoError(t, err, out)

	out, err = runCmd(t, env, "audit")
	require.NoError(t, err, out)
	require.Contains(t, out, "== cell default")
	require.Contains(t, out, "== cell eu1")

	_, err = runCmd(t, env, "cells", "register", "--name", "eu1", "--labels", "region=eu")
	require.NoError(t, err)
	keys := map[string]string{}
	for slug, cell := range map[string]string{"acme": "", "initech": "region=eu"} {
		out, err := runCmd(t, env, "tenant", "create", "--slug", slug, "--name", slug, "--admin-email", "a@"+slug+".example", "--cell", cell)
		require.NoError(t, err, out)
		var created struct {
			APIKey struct{ Key string } `json:"api_key"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &created))
		keys[slug] = created.APIKey.Key
	}
	out, err = runCmd(t, env, "cells", "placements")
	require.NoError(t, err)
	require.Contains(t, out, `"slug": "initech",`+"\n    \"cell\": \"eu1\"")
	out, err = runCmd(t, env, "cells", "list")
	require.NoError(t, err)
	require.Contains(t, out, `"configured": true`)
	var tenantsInCell int
	cell, err := pgx.Connect(ctx, cellURL)
	require.NoError(t, err)
	defer cell.Close(ctx)
	require.NoError(t, cell.QueryRow(ctx, "select count(*) from users where email = 'a@initech.example'").Scan(&tenantsInCell))
	require.Equal(t, 1, tenantsInCell, "initech's admin lives in its cell")

	base, _, _ := startServer(t, map[string]string{"DATABASE_URL": tdb.AdminURL, "CELLS": env["CELLS"],
		"APP_DATABASE_PASSWORD": tdb.AppPassword}, "serve")
	status, body := httpDo(t, "POST", base+"/v1/products", "initech", keys["initech"], `{"name":"Anvil","price":100}`)
	require.Equal(t, 201, status, body)
	status, _ = httpDo(t, "GET", base+"/v1/products/"+body["id"].(string), "acme", keys["acme"], "")
	require.Equal(t, 404, status)
	res, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)

	for _, pair := range [][2]string{{"acme", "initech"}, {"initech", "acme"}} {
		out, err = runCmd(t, map[string]string{"LEAKCHECK_KEY_A": keys[pair[0]], "LEAKCHECK_KEY_B": keys[pair[1]]},
			"leakcheck", "--url", base, "--tenant-a", pair[0], "--tenant-b", pair[1])
		require.NoError(t, err, out)
		require.Contains(t, out, ", 0 leak(s)")
		require.True(t, strings.Count(out, "\npass") >= 40, out)
	}
}

// Issue #18 item 3 from the CLI: `tenant move` moves a tenant from the
// default cell (a cluster with wal_level = logical) to another, prints what
// it verified, and the tenant's key then works through serve from the new
// cell; then back into the default cell (refused as "not supported yet"
// before); a move to where it is, or to an unknown cell, is refused.
func TestTenantMoveCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, err := pgserver.Start(ctx, pgserver.Options{Settings: []string{"wal_level=logical"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Stop(context.Background()) })
	// eu1 is a database of the same cluster: the move back reads it
	// through a subscription, which needs wal_level = logical.
	conn, err := pgx.Connect(ctx, src.URL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE DATABASE eu1")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	eu1 := pgtest.URL(src.URL, "eu1")
	env := map[string]string{"DATABASE_URL": src.URL, "CELLS": "eu1=" + eu1}
	out, err := runCmd(t, env, "migrate")
	require.NoError(t, err, out)
	out, err = runCmd(t, env, "tenant", "create", "--slug", "acme", "--name", "Acme", "--admin-email", "a@acme.example")
	require.NoError(t, err, out)
	var created struct {
		APIKey struct{ Key string } `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created))
	_, err = runCmd(t, env, "cells", "register", "--name", "eu1")
	require.NoError(t, err)

	_, err = runCmd(t, env, "tenant", "move", "--slug", "acme", "--to", "us1")
	require.ErrorContains(t, err, "not configured")
	_, err = runCmd(t, env, "tenant", "move", "--slug", "acme", "--to", "default")
	require.ErrorContains(t, err, "in that cell already")
	out, err = runCmd(t, env, "tenant", "move", "--slug", "acme", "--to", "eu1", "--settle", "0s")
	require.NoError(t, err, out)
	require.Contains(t, out, `"users": 1`)
	out, err = runCmd(t, env, "cells", "placements")
	require.NoError(t, err)
	require.Contains(t, out, `"cell": "eu1"`)

	base, _, _ := startServer(t, map[string]string{"DATABASE_URL": src.URL, "CELLS": env["CELLS"], "TENANT_CACHE_TTL": "100ms"}, "serve")
	status, body := httpDo(t, "POST", base+"/v1/products", "acme", created.APIKey.Key, `{"name":"Anvil","price":100}`)
	require.Equal(t, 201, status, body)
	count := func(url, sql string) (n int) {
		c, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer c.Close(ctx)
		require.NoError(t, c.QueryRow(ctx, sql).Scan(&n))
		return n
	}
	require.Equal(t, 1, count(eu1, "select count(*) from products"), "written in the cell it moved to")

	// And back into the default cell, which holds the catalog's row of it:
	// its rows come back, nothing of it stays in eu1. The subscription
	// reads eu1 as a replication role that is no superuser.
	eu1Conn, err := pgx.Connect(ctx, eu1)
	require.NoError(t, err)
	for _, stmt := range []string{"CREATE ROLE rowfence_replication LOGIN REPLICATION BYPASSRLS NOSUPERUSER NOINHERIT PASSWORD 'repl-secret'",
		"GRANT SELECT ON users, products, api_keys, exports, export_chunks, idempotency_keys TO rowfence_replication"} {
		_, err = eu1Conn.Exec(ctx, stmt)
		require.NoError(t, err)
	}
	require.NoError(t, eu1Conn.Close(ctx))
	_, err = runCmd(t, env, "tenant", "move", "--slug", "acme", "--to", "default", "--replication-role", "Robert'); DROP")
	require.ErrorContains(t, err, "not a role name")
	// The role is the one the subscription connects as: one that does not
	// exist fails the move, which is undone.
	_, err = runCmd(t, env, "tenant", "move", "--slug", "acme", "--to", "default", "--replication-role", "rf_nobody")
	require.ErrorContains(t, err, "rf_nobody")
	env["REPLICATION_DATABASE_PASSWORD"] = "repl-secret"
	out, err = runCmd(t, env, "tenant", "move", "--slug", "acme", "--to", "default", "--settle", "0s", "--replication-role", "rowfence_replication")
	require.NoError(t, err, out)
	require.Contains(t, out, `"products": 1`)
	out, err = runCmd(t, env, "cells", "placements")
	require.NoError(t, err)
	require.Contains(t, out, `"cell": "default"`)
	require.Equal(t, 1, count(src.URL, "select count(*) from products"))
	require.Zero(t, count(eu1, "select (select count(*) from products) + (select count(*) from users) + (select count(*) from tenants)"))
	status, body = httpDo(t, "GET", base+"/v1/products/"+body["id"].(string), "acme", created.APIKey.Key, "")
	require.Equal(t, 200, status, body)
}

// TENANT_MOVES holds superuser connections for the move job: serve refuses
// to start with it unless DATABASE_URL's and every CELLS url's role is a
// superuser (a move cannot work otherwise, and would only fail later, in
// the background), and without DATABASE_URL at all.
func TestTenantMovesNeedSuperusers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	for name, env := range map[string]config.Config{
		"no DATABASE_URL": {TenantMoves: true},
		"not a superuser": {TenantMoves: true, DatabaseURL: tdb.AdminURL, Cells: []cells.URL{{Name: "eu1", URL: tdb.AppURL}}},
	} {
		_, err := openMovers(ctx, serveConfig{Config: env})
		require.Error(t, err, name)
		require.ErrorAs(t, err, new(usageError), name)
	}
	_, err := openMovers(ctx, serveConfig{Config: config.Config{TenantMoves: true, DatabaseURL: tdb.AdminURL, Cells: []cells.URL{{Name: "eu1", URL: tdb.AppURL}}}})
	require.ErrorContains(t, err, "eu1")
	require.ErrorContains(t, err, "superuser")
	movers, err := openMovers(ctx, serveConfig{Config: config.Config{TenantMoves: true, DatabaseURL: tdb.AdminURL}})
	require.NoError(t, err)
	require.True(t, movers.Reachable("default"))
	movers.Close()
	movers, err = openMovers(ctx, serveConfig{Config: config.Config{}})
	require.NoError(t, err)
	require.Nil(t, movers, "off unless TENANT_MOVES")
}
