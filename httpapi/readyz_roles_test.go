package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/tenancy"
)

// /readyz fails as soon as a serving role (the app role, and the platform
// role when /v1/admin is on) can become a role that gets around row-level
// security (issue 14, item 1; DESIGN.md, leak vector 11). Roles are
// cluster-wide, so each kind widens a stand-in for the serving role, served
// through a pool of its own; the stand-ins share one database, and no kind
// widens one stand-in through another.
func TestReadyzRefusesEveryRoleTheServingRoleCanBecome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	open := func(t *testing.T, url string) *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(url)
		require.NoError(t, err)
		cfg.MaxConns = 2
		pool, err := db.Open(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool
	}
	serve := func(t *testing.T, app, platform *pgxpool.Pool) string {
		resolver := tenancy.NewResolver(app, 0)
		authn, err := auth.New(auth.Config{Pool: app, Tenants: resolver})
		require.NoError(t, err)
		cfg := httpapi.Config{Pool: app, Resolver: resolver, Auth: authn,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CursorKey: []byte(strings.Repeat("k", 32))}
		if platform != nil {
			cfg.PlatformPool, cfg.Platform = platform, auth.NewPlatform(platform, 0)
		}
		handler, err := httpapi.NewServer(cfg)
		require.NoError(t, err)
		srv := httptest.NewServer(handler)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	readyz := func(t *testing.T, base string) int {
		res, err := http.Get(base + "/readyz")
		require.NoError(t, err)
		defer res.Body.Close()
		if res.StatusCode == http.StatusServiceUnavailable {
			require.NotEmpty(t, res.Header.Get("Retry-After"))
		}
		return res.StatusCode
	}
	for _, w := range pgtest.RoleWidenings {
		t.Run(w.Name, func(t *testing.T) {
			role, url := tdb.StandIn(t, db.AppRole)
			base := serve(t, open(t, url), nil)
			require.Equal(t, http.StatusOK, readyz(t, base), "the stand-in, as rowfence_app is, is ready")
			_, err := admin.Exec(ctx, w.Expand(w.SQL, role, tdb.Name))
			require.NoError(t, err)
			require.Equal(t, http.StatusServiceUnavailable, readyz(t, base), "%s: not ready", w.Name)
		})
	}
	t.Run("the platform pool", func(t *testing.T) {
		role, url := tdb.StandIn(t, db.PlatformRole)
		base := serve(t, tdb.AppPool(t, 2), open(t, url))
		require.Equal(t, http.StatusOK, readyz(t, base), "the stand-in, as rowfence_platform is, is ready")
		w := pgtest.RoleWidenings[1] // the owner role, through a NOINHERIT role
		_, err := admin.Exec(ctx, w.Expand(w.SQL, role, tdb.Name))
		require.NoError(t, err)
		require.Equal(t, http.StatusServiceUnavailable, readyz(t, base), "the platform role can become the owner: not ready")
	})
}
