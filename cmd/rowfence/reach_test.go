package main

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/pgtest"
)

// serve and /readyz against what the serving role can do beyond its
// transaction (docs/SECURITY.md, "Beyond the transaction"): session defaults
// it set on itself refuse (at start, and at once in /readyz while it runs);
// what the migrating role could not revoke is logged at start with its remedy.
func TestServeBeyondTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, app := tdb.AdminPool(t), tdb.AppPool(t, 1)
	dbName := pgx.Identifier{tdb.Name}.Sanitize()
	// As if a migrating role that is no superuser had migrated: PUBLIC keeps
	// pg_terminate_backend.
	_, err := admin.Exec(ctx, "grant execute on function pg_terminate_backend(integer, bigint) to public")
	require.NoError(t, err)
	base, logs, stop := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL}, "serve")
	require.Contains(t, logs.String(), "capability=signal-backends")
	require.Contains(t, logs.String(), "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint)")
	require.NotContains(t, logs.String(), "capability=temporary-tables", "closed by the migration")
	readyz := func() (int, string) {
		res, err := http.Get(base + "/readyz")
		require.NoError(t, err)
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	status, _ := readyz()
	require.Equal(t, 200, status)

	// The app role makes its later sessions read-only: every tenant's writes
	// would fail on every new connection.
	_, err = app.Exec(ctx, "alter role rowfence_app in database "+dbName+" set default_transaction_read_only = on")
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "alter role rowfence_app in database "+dbName+" reset all")
	})
	status, body := readyz()
	require.Equal(t, 503, status)
	require.NotContains(t, body, "read_only")
	require.Contains(t, logs.String(), "role rowfence_app has session defaults for database "+tdb.Name+" (default_transaction_read_only=on)")
	require.NoError(t, stop())

	_, err = runCmd(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL, "ADDR": freeAddr(t)}, "serve")
	require.ErrorContains(t, err, "role rowfence_app has session defaults")
	require.ErrorContains(t, err, "ALTER ROLE rowfence_app IN DATABASE "+tdb.Name+" RESET ALL")
}
