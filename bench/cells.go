package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/tenancy"
)

// benchCells measures what routing a request to its tenant's cell costs
// (issue #18, target: at most 2% against a single cell). Two in-process
// API servers answer GET /v1/products/{id} over loopback HTTP: "single" has
// no cells and its tenant in its one database; "cells" has two cells and
// its tenant in the second, so every request goes through the placement
// (resolved, cached, with the tenant) and the per-cell pool. Both databases
// are in one cluster, so the database work is the same.
func benchCells(ctx context.Context, cfg config, e env, rep *report) error {
	logf("cells level: %d clients, %d rounds of %ds", cfg.clients, cfg.rounds, cfg.seconds)
	conn, err := pgx.Connect(ctx, e.serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	names := []string{"bench_cell_a", "bench_cell_b"}
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)"); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+n); err != nil {
			return err
		}
		m, err := migrate.New(withDB(e.serverURL, n, "", ""), nil)
		if err != nil {
			return err
		}
		_, err = m.Up(ctx)
		m.Close()
		if err != nil {
			return err
		}
	}
	if err := setAppPassword(ctx, e.serverURL, e.appPassword); err != nil {
		return err
	}
	open := func(url string, conns int32) (*pgxpool.Pool, error) {
		pc, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, err
		}
		pc.MaxConns = conns
		return db.Open(ctx, pc)
	}
	adminA, err := open(withDB(e.serverURL, names[0], "", ""), 2)
	if err != nil {
		return err
	}
	defer adminA.Close()
	adminB, err := open(withDB(e.serverURL, names[1], "", ""), 2)
	if err != nil {
		return err
	}
	defer adminB.Close()
	if _, err := cells.Register(ctx, adminA, "cell-b", nil); err != nil {
		return err
	}
	type tenant struct {
		slug, key string
		ids       []uuid.UUID
	}
	onboard := func(slug string, target *pgxpool.Pool, cell string) (tenant, error) {
		o, err := lifecycle.OnboardIn(ctx, adminA, target, cell, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "a@" + slug + ".example"})
		if err != nil {
			return tenant{}, err
		}
		rows, err := target.Query(ctx, "INSERT INTO products (tenant_id, name, price) SELECT $1, 'p' || g, g FROM generate_series(1, 1000) g RETURNING id", o.Tenant.ID)
		if err != nil {
			return tenant{}, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return tenant{slug: slug, key: o.Key, ids: ids}, err
	}
	single, err := onboard("single", adminA, cells.Default)
	if err != nil {
		return err
	}
	routed, err := onboard("routed", adminB, "cell-b")
	if err != nil {
		return err
	}
	appA, err := open(withDB(e.serverURL, names[0], db.AppRole, e.appPassword), int32(cfg.clients))
	if err != nil {
		return err
	}
	defer appA.Close()
	appB, err := open(withDB(e.serverURL, names[1], db.AppRole, e.appPassword), int32(cfg.clients))
	if err != nil {
		return err
	}
	defer appB.Close()
	serverOf := func(set *cells.Set) (*httptest.Server, error) {
		resolver := tenancy.NewResolver(appA, time.Minute)
		ac := auth.Config{Pool: appA, Tenants: resolver, CacheTTL: time.Minute}
		if set != nil {
			ac.PoolFor = set.PoolFor(resolver)
		}
		authn, err := auth.New(ac)
		if err != nil {
			return nil, err
		}
		h, err := httpapi.NewServer(httpapi.Config{Pool: appA, Resolver: resolver, Auth: authn, Cells: set,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CursorKey: []byte(strings.Repeat("k", 32))})
		if err != nil {
			return nil, err
		}
		return httptest.NewServer(h), nil
	}
	plain, err := serverOf(nil)
	if err != nil {
		return err
	}
	defer plain.Close()
	set, err := cells.NewSet(&cells.Cell{Name: cells.Default, App: appA}, &cells.Cell{Name: "cell-b", App: appB})
	if err != nil {
		return err
	}
	withCells, err := serverOf(set)
	if err != nil {
		return err
	}
	defer withCells.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.clients * 2}}
	get := func(base string, t tenant) op {
		return func(ctx context.Context, rng *rand.Rand) error {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/products/"+t.ids[rng.IntN(len(t.ids))].String(), nil)
			req.Header.Set("X-Tenant-ID", t.slug)
			req.Header.Set("Authorization", "Bearer "+t.key)
			res, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				return fmt.Errorf("status %d", res.StatusCode)
			}
			return nil
		}
	}
	labels := []string{"single cell", "two cells, tenant in the second"}
	res, err := interleave(ctx, cfg.rounds, cfg.clients, time.Duration(cfg.seconds)*time.Second, labels,
		map[string]op{labels[0]: get(plain.URL, single), labels[1]: get(withCells.URL, routed)})
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("## Cells: routing a request to its tenant's cell (issue 18)\n\n")
	fmt.Fprintf(&b, "Two in-process API servers answer `GET /v1/products/{id}` over loopback HTTP, %d clients, %d rounds of %ds "+
		"in turn. `single cell` has no cells; `two cells` has `CELLS`-style routing and its tenant in the second cell, so each "+
		"request takes the placement from the cached tenant and runs on that cell's pool. Both cells are databases of one "+
		"cluster: the database work is identical, and the ratio is the routing's cost.\n\n", cfg.clients, cfg.rounds, cfg.seconds)
	b.WriteString(table(resultRows(res, labels)))
	got := ratio(res[labels[1]], res[labels[0]])
	b.WriteString("\n" + table([][]string{{"comparison", "ratio (cells / single throughput, median of rounds)", "target", "verdict"},
		{"get", fmt.Sprintf("%.3f", got), ">= 0.98", verdict(got, 0.98, true)}}))
	rep.sections = append(rep.sections, b.String())
	for _, n := range names {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)")
	}
	return nil
}
