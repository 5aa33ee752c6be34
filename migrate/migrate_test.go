package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/pgtest"
)

// Migrations started at once on one database take turns: River's migrations
// too, not only goose's (issue #14 item 8: "duplicate key value violates
// unique constraint river_migration_pkey" when River's step ran outside the
// lock). Each round starts from a database whose goose migrations are applied
// and River's are not, the moment at which instances used to collide.
func TestConcurrentMigratorsTakeTurns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ref := pgtest.New(t)
	admin, err := pgx.Connect(ctx, ref.AdminURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	const rounds, instances = 5, 4
	for round := range rounds {
		url := freshDatabase(t, admin, ref.AdminURL, fmt.Sprintf("rf_migrators_%d_%d", os.Getpid(), round))
		first, err := migrate.New(url, nil)
		require.NoError(t, err)
		require.NoError(t, first.GooseUpOnly(ctx))
		first.Close()

		errs := make([]error, instances)
		ready := make(chan struct{})
		var wg sync.WaitGroup
		for i := range instances {
			wg.Go(func() {
				m, err := migrate.New(url, nil)
				if err != nil {
					errs[i] = err
					return
				}
				defer m.Close()
				<-ready
				_, errs[i] = m.Up(ctx)
			})
		}
		close(ready)
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "round %d, migrator %d of %d", round, i, instances)
		}
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		var applied, distinct int
		err = conn.QueryRow(ctx, "select count(*), count(distinct version) from river.river_migration").Scan(&applied, &distinct)
		conn.Close(ctx)
		require.NoError(t, err)
		require.Positive(t, applied)
		require.Equal(t, distinct, applied)
	}
}

// freshDatabase creates an empty database (CREATE DATABASE from template1, not
// pgtest's migrated template) and returns its URL for the migrating role.
func freshDatabase(t *testing.T, admin *pgx.Conn, adminURL, name string) string {
	t.Helper()
	_, err := admin.Exec(context.Background(), "create database "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)")
	})
	return pgtest.URL(adminURL, name)
}

// The migration lock is let go on every path: a holder whose connection
// drops without a word (as when its process is killed), a run whose last
// step fails, a wait that its context ends.
func TestMigrationLockIsReleased(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ref := pgtest.New(t)
	admin, err := pgx.Connect(ctx, ref.AdminURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	name := fmt.Sprintf("rf_migrlock_%d", os.Getpid())
	url := freshDatabase(t, admin, ref.AdminURL, name)
	waiting := func() int {
		var n int
		require.NoError(t, admin.QueryRow(ctx, `select count(*) from pg_locks l join pg_database d on d.oid = l.database
			where l.locktype = 'advisory' and not l.granted and d.datname = $1`, name).Scan(&n))
		return n
	}
	up := func(ctx context.Context, steps ...migrate.Step) <-chan error {
		done := make(chan error, 1)
		go func() {
			m, err := migrate.New(url, nil)
			if err != nil {
				done <- err
				return
			}
			defer m.Close()
			_, err = m.Up(ctx, steps...)
			done <- err
		}()
		return done
	}

	// A holder that vanishes: Up waits for it, then runs.
	holder, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	_, err = holder.Exec(ctx, "select pg_advisory_lock($1)", migrate.MigrationLockID)
	require.NoError(t, err)
	done := up(ctx)
	require.Eventually(t, func() bool { return waiting() == 1 }, 10*time.Second, 10*time.Millisecond, "Up waits for the lock")
	require.NoError(t, holder.PgConn().Conn().Close(), "the holder's socket closes with no Terminate message")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Up still waits after the holder's connection dropped")
	}

	// A run whose step fails lets the next one in.
	started, release := make(chan struct{}), make(chan struct{})
	failing := up(ctx, func(context.Context, *pgx.Conn) error {
		close(started)
		<-release
		return errors.New("planted failure")
	})
	<-started
	next := up(ctx)
	require.Eventually(t, func() bool { return waiting() == 1 }, 10*time.Second, 10*time.Millisecond, "the next run waits")
	close(release)
	require.ErrorContains(t, <-failing, "planted failure")
	select {
	case err := <-next:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the lock outlived the failed run")
	}

	// A wait cut short by its context leaves nothing behind.
	holder, err = pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer holder.Close(ctx)
	_, err = holder.Exec(ctx, "select pg_advisory_lock($1)", migrate.MigrationLockID)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	require.Error(t, <-up(short))
	require.Less(t, time.Since(began), 5*time.Second)
	require.Eventually(t, func() bool { return waiting() == 0 }, 5*time.Second, 10*time.Millisecond)
}
