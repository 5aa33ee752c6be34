package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
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
	rep.cellsLoad[0] = loadAverage()
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
	onboard := func(slug string, target *pgxpool.Pool, cell string) (cellsTenant, error) {
		o, err := lifecycle.OnboardIn(ctx, adminA, target, cell, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "a@" + slug + ".example"})
		if err != nil {
			return cellsTenant{}, err
		}
		rows, err := target.Query(ctx, "INSERT INTO products (tenant_id, name, price) SELECT $1, 'p' || g, g FROM generate_series(1, 1000) g RETURNING id", o.Tenant.ID)
		if err != nil {
			return cellsTenant{}, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return cellsTenant{slug: slug, key: o.Key, ids: ids}, err
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
	handlers := map[string]http.Handler{}
	serverOf := func(set *cells.Set) (*httptest.Server, error) {
		h, _, err := apiHandler(appA, set, time.Minute)
		if err != nil {
			return nil, err
		}
		if set == nil {
			handlers["single"] = h
		} else {
			handlers["cells"] = h
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
	get := func(base string, t cellsTenant) op {
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
	// The same requests in process, without the network: the process's CPU
	// per request on each side, in rounds whose order alternates.
	cpuSingle, cpuCells, allocs, err := cpuPerRequest(ctx, cfg.rounds, time.Duration(cfg.seconds)*time.Second,
		handlers["single"], getRequests(ctx, single), handlers["cells"], getRequests(ctx, routed))
	if err != nil {
		return err
	}
	rep.cellsLoad[1] = loadAverage()
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
	b.WriteString("\nThe same requests in process (`ServeHTTP` of each server's handler, one goroutine, `GOMAXPROCS` 1, no network), " +
		"side by side: each round gives each side the round's seconds in 100 ms slices that alternate. Measured: the process's user and system CPU per request (`getrusage`, as " +
		"`httpapi.BenchmarkOverhead` reports cpu-ns/op: the Go side, pgx included, not PostgreSQL's, which is the same work on both sides). " +
		"Other processes' CPU, PostgreSQL's included, is not counted, so this moves far less than throughput over loopback; on a loaded machine " +
		"a process's CPU per request still moves with the others' load (caches, scheduling), which the alternating slices spread over both sides.\n\n")
	cpuTab := [][]string{{"round", "first", "single cell µs CPU/request", "two cells µs CPU/request", "ratio (cells / single)"}}
	var cpuRatios []float64
	for i := range cpuSingle {
		first := "single"
		if i%2 == 1 {
			first = "cells"
		}
		ratio := cpuCells[i].Seconds() / cpuSingle[i].Seconds()
		cpuRatios = append(cpuRatios, ratio)
		cpuTab = append(cpuTab, []string{fmt.Sprint(i + 1), first, fmt.Sprintf("%.1f", float64(cpuSingle[i].Nanoseconds())/1000),
			fmt.Sprintf("%.1f", float64(cpuCells[i].Nanoseconds())/1000), fmt.Sprintf("%.3f", ratio)})
	}
	b.WriteString(table(cpuTab))
	cpuRatio := median(cpuRatios)
	b.WriteString("\n" + table([][]string{{"comparison", "ratio (cells / single CPU per request, median of rounds)", "target", "verdict"},
		{"get, in process", fmt.Sprintf("%.3f", cpuRatio), "<= 1.02", verdict(cpuRatio, 1.02, false)}}))
	fmt.Fprintf(&b, "\nAllocations per request (`runtime.MemStats.Mallocs`, over every round): single cell %.1f, two cells %.1f.\n", allocs[0], allocs[1])
	fmt.Fprintf(&b, "\nMachine state: load average %s at the start of the level, %s at its end (`/proc/loadavg`: 1, 5, 15 minutes).\n",
		rep.cellsLoad[0], rep.cellsLoad[1])
	rep.ratios = append(rep.ratios, bar{"cells: CPU per get, cells / single", cpuRatio, 1.02, false})
	rep.sections = append(rep.sections, b.String())
	for _, n := range names {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)")
	}
	return nil
}

// apiHandler is the API's handler as the bench's in-process servers run it:
// catalog is the default cell's app pool (tenants, and every request of a
// server without cells), set the cells (nil: none), ttl the tenant and
// credential caches' (TENANT_CACHE_TTL, AUTH_CACHE_TTL). It returns the
// resolver too, whose Forget drops a cached placement.
func apiHandler(catalog *pgxpool.Pool, set *cells.Set, ttl time.Duration) (http.Handler, *tenancy.Resolver, error) {
	resolver := tenancy.NewResolver(catalog, ttl)
	ac := auth.Config{Pool: catalog, Tenants: resolver, CacheTTL: ttl}
	if set != nil {
		ac.PoolFor = set.PoolFor(resolver)
	}
	authn, err := auth.New(ac)
	if err != nil {
		return nil, nil, err
	}
	h, err := httpapi.NewServer(httpapi.Config{Pool: catalog, Resolver: resolver, Auth: authn, Cells: set,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CursorKey: []byte(strings.Repeat("k", 32))})
	return h, resolver, err
}

// cellsTenant is a tenant of the cells level: its slug, key and products.
type cellsTenant struct {
	slug, key string
	ids       []uuid.UUID
}

// getRequests are GET /v1/products/{id} of up to 64 of t's products, as a
// client sends them.
func getRequests(ctx context.Context, t cellsTenant) []*http.Request {
	var out []*http.Request
	for _, id := range t.ids[:min(64, len(t.ids))] {
		r, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1/v1/products/"+id.String(), nil)
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("X-Tenant-ID", t.slug)
		r.Header.Set("Authorization", "Bearer "+t.key)
		out = append(out, r)
	}
	return out
}

// cpuPerRequest serves a's and b's requests in process, one goroutine,
// and returns each round's process CPU (user + system) per request of
// either side. A round gives each side dur in slices of 100 ms that
// alternate (the first side alternating by round), so that both see the
// same machine: on a shared one, a process's CPU per request moves with
// the others' load (caches, scheduling). Each side is warmed first, with
// GOMAXPROCS 1 throughout.
func cpuPerRequest(ctx context.Context, rounds int, dur time.Duration, a http.Handler, aReqs []*http.Request, b http.Handler, bReqs []*http.Request) (ca, cb []time.Duration, allocs [2]float64, err error) {
	// One P: with more, the idle ones spin while the goroutine waits for
	// PostgreSQL, and that CPU follows the wait, not the request's work.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	w := &discardWriter{header: http.Header{}}
	var ms runtime.MemStats
	var mallocs, served [2]uint64
	// serve serves reqs for d and returns the CPU it took and the requests.
	serve := func(h http.Handler, reqs []*http.Request, d time.Duration) (cpu time.Duration, n int, err error) {
		start := processCPU()
		deadline := time.Now().Add(d)
		for ; time.Now().Before(deadline); n++ {
			if ctx.Err() != nil {
				return 0, 0, ctx.Err()
			}
			w.reset()
			h.ServeHTTP(w, reqs[n%len(reqs)])
			if w.status != http.StatusOK {
				return 0, 0, fmt.Errorf("in process: status %d", w.status)
			}
		}
		return processCPU() - start, n, nil
	}
	handlers := [2]http.Handler{a, b}
	reqs := [2][]*http.Request{aReqs, bReqs}
	for i := range 2 {
		if _, _, err := serve(handlers[i], reqs[i], time.Second); err != nil {
			return nil, nil, allocs, err
		}
	}
	const slice = 100 * time.Millisecond
	for r := range rounds {
		var cpu [2]time.Duration
		var n [2]int
		runtime.GC()
		for range max(1, int(dur/slice)) {
			for k := range 2 {
				i := (k + r) % 2
				runtime.ReadMemStats(&ms)
				before := ms.Mallocs
				c, m, err := serve(handlers[i], reqs[i], slice)
				if err != nil {
					return nil, nil, allocs, err
				}
				runtime.ReadMemStats(&ms)
				mallocs[i] += ms.Mallocs - before
				served[i] += uint64(m)
				cpu[i] += c
				n[i] += m
			}
		}
		ca, cb = append(ca, cpu[0]/time.Duration(n[0])), append(cb, cpu[1]/time.Duration(n[1]))
	}
	for i := range 2 {
		allocs[i] = float64(mallocs[i]) / float64(max(1, served[i]))
	}
	return ca, cb, allocs, nil
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// discardWriter is the least an http.ResponseWriter does.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) reset() {
	clear(w.header)
	w.status = 0
}
