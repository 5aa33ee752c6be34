package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/pgtest"
)

// The tenant commands connect with DATABASE_URL, the default cell, which
// holds the catalog but not the rows of a tenant placed in another cell.
// Before this test they exported an empty file, archived nothing (and
// marked the tenant archived, its rows still live in its cell), and
// deleted only the catalog's row, leaving every row in the cell behind.
// Now export, delete, archive and restore act in the tenant's cell (archive
// and restore refused before); an import into an existing tenant of another
// cell refuses (exit 3), naming the cell, and changes nothing.
func TestTenantCommandsInAnotherCell(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, err := pgx.Connect(ctx, tdb.AdminURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	cellURL := pgtest.Empty(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL, "CELLS": "eu1=" + cellURL,
		"APP_DATABASE_PASSWORD": tdb.AppPassword, "PLATFORM_DATABASE_PASSWORD": tdb.AppPassword}
	out, err := runCmd(t, env, "migrate")
	require.NoError(t, err, out)
	_, err = runCmd(t, env, "cells", "register", "--name", "eu1")
	require.NoError(t, err)
	out, err = runCmd(t, env, "tenant", "create", "--slug", "hooli", "--name", "Hooli", "--admin-email", "a@hooli.example", "--cell", "eu1")
	require.NoError(t, err, out)
	out, err = runCmd(t, env, "tenant", "create", "--slug", "initech", "--name", "Initech", "--admin-email", "a@initech.example", "--cell", "eu1")
	require.NoError(t, err, out)
	cell, err := pgx.Connect(ctx, cellURL)
	require.NoError(t, err)
	defer cell.Close(ctx)
	users := func() (n int) {
		require.NoError(t, cell.QueryRow(ctx, "select count(*) from users").Scan(&n))
		return n
	}
	require.Equal(t, 2, users())

	// The purge of a tenant due for deletion deletes its rows in its cell.
	_, err = runCmd(t, env, "tenant", "delete", "--slug", "hooli", "--grace", "1ms")
	require.NoError(t, err)
	time.Sleep(5 * time.Millisecond)
	out, err = runCmd(t, env, "tenant", "purge")
	require.NoError(t, err)
	require.Contains(t, out, "hooli")
	require.Equal(t, 1, users(), "the purged tenant's rows in its cell are deleted")

	// Export reads the cell's rows.
	file := t.TempDir() + "/initech.jsonl"
	_, err = runCmd(t, env, "tenant", "export", "--slug", "initech", "--out", file)
	require.NoError(t, err)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Contains(t, string(data), "a@initech.example", "the export holds the tenant's admin user")

	// Archive and restore work in the tenant's cell: the archive is kept
	// there, the live rows leave it and come back; the catalog says
	// archived meanwhile (its requests get 409 tenant-archived).
	_, err = runCmd(t, env, "tenant", "suspend", "--slug", "initech")
	require.NoError(t, err)
	status := func() (s string) {
		require.NoError(t, admin.QueryRow(ctx, "select status from tenants where slug = 'initech'").Scan(&s))
		return s
	}
	out, err = runCmd(t, env, "tenant", "archive", "--slug", "initech")
	require.NoError(t, err, out)
	require.Equal(t, "archived", status())
	require.Equal(t, 0, users(), "the live rows left the cell")
	var archives int
	require.NoError(t, cell.QueryRow(ctx, "select count(*) from exports where kind = 'archive'").Scan(&archives))
	require.Equal(t, 1, archives, "the archive is kept in the tenant's cell")
	require.NoError(t, admin.QueryRow(ctx, "select count(*) from exports").Scan(&archives))
	require.Zero(t, archives, "not in the catalog's database")
	out, err = runCmd(t, env, "tenant", "restore", "--slug", "initech")
	require.NoError(t, err, out)
	require.Equal(t, "active", status())
	require.Equal(t, 1, users(), "restored into its cell")

	// An import into it would write into the default cell: refused.
	_, err = runCmd(t, env, "tenant", "import", file, "--slug", "initech")
	require.ErrorContains(t, err, `cell "eu1"`)
	require.Equal(t, 3, exitCode(err))

	// Delete deletes the cell's rows too.
	_, err = runCmd(t, env, "tenant", "delete", "--slug", "initech")
	require.NoError(t, err)
	require.Equal(t, 0, users(), "the tenant's rows in its cell are deleted")
	var left int
	require.NoError(t, cell.QueryRow(ctx, "select count(*) from tenants").Scan(&left))
	require.Equal(t, 0, left)
}
