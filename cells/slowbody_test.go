package cells_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/invalidation"
	"github.com/rowfence/rowfence/tenancy"
)

// A write whose request resolved the tenant's placement before the switch
// but reaches the database after the move's Finish (its body arrives
// slowly; or it waited in the queue) must not be acknowledged into the
// source cell, where nobody will ever read it.
func TestSlowWriteAcrossMoveIsNotLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, srcSuper, tgt, tgtSuper, tenants := twoCells(t)
	acme := tenants["acme"].Tenant.ID
	srcApp, tgtApp := pool(t, src.URL, db.AppRole), tgt.AppPool(t, 4)
	set, err := cells.NewSet(&cells.Cell{Name: cells.Default, App: srcApp}, &cells.Cell{Name: "eu1", App: tgtApp})
	require.NoError(t, err)
	listenCfg, err := pgx.ParseConfig(src.URL)
	require.NoError(t, err)
	listenCfg.User = db.AppRole
	resolver := tenancy.NewResolver(srcApp, time.Minute)
	lctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go invalidation.New(slog.New(slog.DiscardHandler), resolver).Run(lctx, invalidation.Source{Name: cells.Default, Pool: srcApp, Channels: []string{tenancy.PlacementChannel}})
	authn, err := auth.New(auth.Config{Pool: srcApp, Tenants: resolver, CacheTTL: time.Minute, PoolFor: set.PoolFor(resolver)})
	require.NoError(t, err)
	h, err := httpapi.NewServer(httpapi.Config{Pool: srcApp, Resolver: resolver, Auth: authn, Cells: set,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CursorKey: []byte(strings.Repeat("k", 32))})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/products", pr)
	req.Header.Set("X-Tenant-ID", "acme")
	req.Header.Set("Authorization", "Bearer "+tenants["acme"].Key)
	req.Header.Set("Content-Type", "application/json")
	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{0, err.Error()}
			return
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		done <- result{res.StatusCode, string(raw)}
	}()
	_, err = pw.Write([]byte(`{"name":"slow",`))
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // the request resolved acme in the default cell

	move := &cells.Move{Tenant: acme, From: cells.Default, To: "eu1", Catalog: srcSuper, Source: srcSuper, Target: tgtSuper,
		SourceConnString: src.URL, Settle: 300 * time.Millisecond}
	_, err = move.Run(ctx)
	require.NoError(t, err)

	_, err = pw.Write([]byte(`"price":1}`))
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	r := <-done
	t.Logf("answer %d %s", r.status, r.body)
	var inSrc, inTgt int
	require.NoError(t, srcSuper.QueryRow(ctx, "SELECT count(*) FROM products WHERE tenant_id = $1 AND name = 'slow'", acme).Scan(&inSrc))
	require.NoError(t, tgtSuper.QueryRow(ctx, "SELECT count(*) FROM products WHERE tenant_id = $1 AND name = 'slow'", acme).Scan(&inTgt))
	t.Logf("rows: source %d, target %d", inSrc, inTgt)
	if r.status == 201 {
		require.Equal(t, 1, inTgt, "an acknowledged write is in the tenant's cell")
	}
	require.Zero(t, inSrc, "no row of a moved tenant left in the source")
}
