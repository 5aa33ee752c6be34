package cells_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/invalidation"
	"github.com/rowfence/rowfence/tenancy"
)

// Issue #18 item 3, stale placements: two instances serve the same cells,
// both with the tenant's placement cached (for a minute: far longer than
// the move's Settle). The move runs beside them; the instance that did not
// make it keeps serving the tenant. Its cached placement must not outlive
// the switch: the switch notifies every instance (invalidation.Listener),
// and a write meeting the freeze forgets the placement. No acknowledged
// write is lost, no row is left in two cells, and a read never shows
// another tenant's rows.
func TestStalePlacementLosesNoWrite(t *testing.T) {
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
	instance := func() string {
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
		return srv.URL
	}
	other := instance()
	do := func(method, path, slug, body string) (int, []byte) {
		req, _ := http.NewRequest(method, other+path, strings.NewReader(body))
		req.Header.Set("X-Tenant-ID", slug)
		req.Header.Set("Authorization", "Bearer "+tenants[slug].Key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return res.StatusCode, raw
	}
	_, err = srcSuper.Exec(ctx, "INSERT INTO products (tenant_id, name, price) VALUES ($1, 'globex-only', 1)", tenants["globex"].Tenant.ID)
	require.NoError(t, err)
	status, _ := do("GET", "/v1/products?limit=1", "acme", "") // warm: placement and credential cached
	require.Equal(t, 200, status)

	var acked []string
	var stop atomic.Bool
	var foreign, other5xx atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { // acme writes through the other instance all along
		for !stop.Load() {
			status, raw := do("POST", "/v1/products", "acme", `{"name":"w","price":1}`)
			switch status {
			case 201:
				var p struct{ ID string }
				_ = json.Unmarshal(raw, &p)
				acked = append(acked, p.ID)
			case 503:
				time.Sleep(10 * time.Millisecond)
			default:
				other5xx.Add(1)
			}
		}
	})
	wg.Go(func() { // and reads
		for !stop.Load() {
			status, raw := do("GET", "/v1/products?limit=100&sort=-created_at", "acme", "")
			if status == 200 && strings.Contains(string(raw), "globex-only") {
				foreign.Add(1)
			}
		}
	})
	time.Sleep(200 * time.Millisecond)
	move := &cells.Move{Tenant: acme, From: cells.Default, To: "eu1", Catalog: srcSuper, Source: srcSuper, Target: tgtSuper,
		SourceConnString: src.URL, Settle: 300 * time.Millisecond}
	_, err = move.Run(ctx)
	require.NoError(t, err)
	time.Sleep(time.Second) // the other instance goes on, its cache a minute from expiry
	stop.Store(true)
	wg.Wait()

	count := func(p *pgxpool.Pool, sql string, args ...any) (n int) {
		require.NoError(t, p.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	t.Logf("%d writes acknowledged", len(acked))
	require.Zero(t, other5xx.Load(), "only 201 or 503")
	require.Zero(t, foreign.Load(), "no read showed another tenant's rows")
	require.Equal(t, len(acked), count(tgtSuper, "SELECT count(*) FROM products WHERE id = ANY($1::uuid[])", acked), "no acknowledged write lost")
	require.Zero(t, count(srcSuper, "SELECT count(*) FROM products WHERE tenant_id = $1", acme), "no row left in the source")
}
