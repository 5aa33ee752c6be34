package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/pgtest"
)

// catalogSummary counts what a migrated database holds (tables, indexes,
// policies, functions, grants in public and river; applied goose and River
// versions), so that two databases can be compared for completeness.
const catalogSummary = `select
  (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('public', 'river')),
  (select count(*) from pg_policies where schemaname in ('public', 'river')),
  (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('public', 'river')),
  (select count(*) from information_schema.role_table_grants where table_schema in ('public', 'river')),
  (select max(version_id) from goose_db_version where is_applied),
  (select count(*) from river.river_migration)`

// Several instances running `rowfence migrate` at once on a fresh database
// (issue #14 item 8: one process in five failed on a duplicate key in River's
// migration table) all succeed, and leave the schema a single run leaves.
// Every round is a database made with CREATE DATABASE (no template), so the
// whole history runs each time.
func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ref := pgtest.New(t) // migrated once, by pgtest: the expected catalog
	refConn, err := pgx.Connect(ctx, ref.AdminURL)
	require.NoError(t, err)
	defer refConn.Close(ctx)
	want := make([]any, 6)
	var wantN [6]int64
	for i := range wantN {
		want[i] = &wantN[i]
	}
	require.NoError(t, refConn.QueryRow(ctx, catalogSummary).Scan(want...))
	require.Equal(t, latestMigrationVersion(t), wantN[4])

	const rounds, instances = 10, 4
	start := time.Now()
	for round := range rounds {
		name := fmt.Sprintf("rf_migrate_%d_%d", os.Getpid(), round)
		_, err := refConn.Exec(ctx, "create database "+pgx.Identifier{name}.Sanitize())
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = refConn.Exec(context.Background(), "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)")
		})
		// The passwords are pgtest's own (roles are cluster-wide, and the
		// package's other tests log in with them).
		env := map[string]string{"DATABASE_URL": pgtest.URL(ref.AdminURL, name),
			"APP_DATABASE_PASSWORD": ref.AppPassword, "PLATFORM_DATABASE_PASSWORD": ref.AppPassword}
		var wg sync.WaitGroup
		errs := make([]error, instances)
		outs := make([]string, instances)
		ready := make(chan struct{})
		for i := range instances {
			wg.Go(func() {
				<-ready
				outs[i], errs[i] = runCmd(t, env, "migrate")
			})
		}
		close(ready)
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "round %d, instance %d of %d", round, i, instances)
			require.Contains(t, outs[i], fmt.Sprintf("version %d\n", wantN[4]))
		}
		conn, err := pgx.Connect(ctx, env["DATABASE_URL"])
		require.NoError(t, err)
		got := make([]any, 6)
		var gotN [6]int64
		for i := range gotN {
			got[i] = &gotN[i]
		}
		err = conn.QueryRow(ctx, catalogSummary).Scan(got...)
		conn.Close(ctx)
		require.NoError(t, err)
		require.Equal(t, wantN, gotN, "round %d: the schema after %d concurrent runs equals a single run's "+
			"(relations, policies, functions, grants, goose version, River versions)", round, instances)
	}
	t.Logf("%d rounds of %d concurrent migrations in %s", rounds, instances, time.Since(start).Round(time.Millisecond))
}
