package httpapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/pgtest"
)

// /readyz is anonymous: it answers ready or not ready, with a generic
// reason, and keeps the specifics (role, database, socket path, the
// problem) for the server's log. Observed: a stranger learned the role,
// the database and the socket path from a 503.
func TestReadyzTellsStrangersNothing(t *testing.T) {
	t.Parallel()
	logs := &syncBuf{}
	var gone string
	b := setupWith(t, func(b *testBundle, c *httpapi.Config) {
		// The serving pool points at a database that is not there.
		gone = b.tdb.Name + "_gone"
		pool, err := pgxpool.New(context.Background(), pgtest.URL(b.tdb.AppURL, gone))
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		c.Pool = pool
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	u, err := url.Parse(b.tdb.AppURL)
	require.NoError(t, err)
	host := u.Query().Get("host")
	r := b.call(t, "GET", "/readyz", "", "").requireStatus(t, 503)
	require.NotEmpty(t, r.header.Get("Retry-After"))
	require.Equal(t, "the database cannot be reached", r.body["detail"])
	for _, secret := range []string{"rowfence_app", gone, host, "failed to connect"} {
		if secret == "" {
			continue
		}
		require.NotContains(t, string(r.raw), secret, "the anonymous answer names no specifics")
		require.Contains(t, logs.String(), secret, "the log keeps them")
	}
}

// Not ready because the serving role is unsafe: generic to the caller, the
// problem in the log. The platform pool is checked too: its role may plant
// session defaults as well (ALTER ROLE <itself> SET).
func TestReadyzRefusesUnsafeRolesQuietly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logs := &syncBuf{}
	b := setupWith(t, func(b *testBundle, c *httpapi.Config) {
		p := b.tdb.PlatformPool(t)
		c.PlatformPool, c.Platform = p, auth.NewPlatform(p, 0)
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	b.call(t, "GET", "/readyz", "", "").requireStatus(t, 200)
	for _, role := range []string{"rowfence_app", "rowfence_platform"} {
		stmt := fmt.Sprintf("alter role %s in database %s set work_mem = '64kB'", role, pgx.Identifier{b.tdb.Name}.Sanitize())
		_, err := b.admin.Exec(ctx, stmt)
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = b.admin.Exec(context.Background(), fmt.Sprintf("alter role %s in database %s reset all", role, pgx.Identifier{b.tdb.Name}.Sanitize()))
		})
		r := b.call(t, "GET", "/readyz", "", "").requireStatus(t, 503)
		require.Equal(t, "the database role is not safe to serve with; see the server's log", r.body["detail"], role)
		for _, secret := range []string{role, "work_mem", b.tdb.Name} {
			require.NotContains(t, string(r.raw), secret)
		}
		require.Contains(t, logs.String(), "role "+role+" has session defaults")
		_, err = b.admin.Exec(ctx, fmt.Sprintf("alter role %s in database %s reset all", role, pgx.Identifier{b.tdb.Name}.Sanitize()))
		require.NoError(t, err)
		b.call(t, "GET", "/readyz", "", "").requireStatus(t, 200)
	}
}
