package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/tenancy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A short run of the load against the API: every op runs, nothing fails,
// no tenant ever sees another's row.
func TestLoadSeesNoForeignRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, app := tdb.AdminPool(t), tdb.AppPool(t, 8)
	var tenants []tenant
	for _, slug := range []string{"load-a", "load-b", "load-c", "load-d"} {
		o, err := lifecycle.Onboard(ctx, admin, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "x@" + slug + ".example"})
		require.NoError(t, err)
		tenants = append(tenants, tenant{ID: o.Tenant.ID.String(), Slug: slug, Key: o.Key})
	}
	resolver := tenancy.NewResolver(app, time.Second)
	authn, err := auth.New(auth.Config{Pool: app, Tenants: resolver, CacheTTL: time.Second})
	require.NoError(t, err)
	h, err := httpapi.NewServer(httpapi.Config{Pool: app, Resolver: resolver, Auth: authn,
		CursorKey: []byte(strings.Repeat("k", 32)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	rep := runLoad(ctx, loadConfig{Base: srv.URL, Tenants: tenants, Workers: 4, Duration: 2 * time.Second, WriteRatio: 0.3})
	t.Logf("%+v", rep)
	require.Positive(t, rep.Requests)
	require.Zero(t, rep.Errors, "%v", rep.ErrorSample)
	require.Zero(t, rep.ForeignRows, "%v", rep.LeakSample)
	for _, op := range []string{"create", "get", "list", "probe"} {
		require.Positive(t, rep.Ops[op], "op %s ran", op)
	}
	require.Positive(t, rep.Statuses["404"], "probes of other tenants' ids were 404s")
}

// The checker must be able to fail: a server that answers with another
// tenant's rows is caught.
func TestLoadCatchesForeignRows(t *testing.T) {
	t.Parallel()
	leaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		row := map[string]any{"id": "00000000-0000-4000-8000-000000000001", "tenant_id": "someone-else"}
		if r.Method == "POST" {
			w.WriteHeader(201)
			_ = json.NewEncoder(w).Encode(row)
			return
		}
		if strings.Count(r.URL.Path, "/") == 3 {
			_ = json.NewEncoder(w).Encode(row)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"items": []any{row}})
	})
	srv := httptest.NewServer(leaky)
	defer srv.Close()
	rep := runLoad(context.Background(), loadConfig{Base: srv.URL, Workers: 2, Duration: 300 * time.Millisecond, WriteRatio: 0.3,
		Tenants: []tenant{{ID: "a", Slug: "a", Key: "k"}, {ID: "b", Slug: "b", Key: "k"}}})
	require.Positive(t, rep.ForeignRows)
	require.NotEmpty(t, rep.LeakSample)
}
