package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/invalidation"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/tenancy"
)

// Level move (issue 18, item 4): a tenant of each size in cfg.moveRows
// products (and products/100 users, as the export level seeds them:
// seedTenant) moved with cells.Move from one local PostgreSQL 15 cluster
// (the default cell and catalog) to another (cell "dst"), both started here
// with wal_level = logical, against PostgreSQL's own COPY of a twin tenant's
// rows between the same clusters (`COPY (SELECT … WHERE tenant_id = …) TO
// STDOUT` on the source piped into `COPY … FROM STDIN` on the target, into
// the same tables with the same indexes, as a scratch tenant), in rounds
// whose order alternates. While the move runs, writers of the moved tenant
// POST products through two in-process API instances at a paced rate and
// record the longest run of 503 answers, and a writer of another tenant
// records every answer that is not 201.

// moveWriteInterval paces each writer: 50 writes a second.
const moveWriteInterval = 20 * time.Millisecond

// moveDB is the database of both clusters.
const moveDB = "rfbench_move"

// moveRound is one round of one size.
type moveRound struct {
	moveFirst bool
	report    cells.MoveReport
	moveRows  int64 // rows the move copied (every table, tenants row included)
	copyTime  time.Duration
	copyRows  int64 // rows COPY copied (products and users)
	// The writers: the moved tenant's through the instance that runs the
	// move (it forgets the tenant's placement at the switch, as an
	// instance that moves a tenant can) and through another instance
	// (which learns it when its cache entry is refreshed: TENANT_CACHE_TTL),
	// and another tenant's.
	local, remote, other writerStats
	// verify is the time of the checksums of every table of the moved
	// tenant on the target: cells.Move's, then an order-free one.
	verify [2]time.Duration
}

type writerStats struct {
	acked, refused, failed int
	longestRefused         time.Duration // from the first 503 of a run to the next 201's answer
	longestGap             time.Duration // between two acknowledged writes
	firstFailure           string
}

// moveEnv is the two clusters and what the rounds share.
type moveEnv struct {
	srcURL, dstURL     string // superusers, database moveDB
	srcSuper, dstSuper *pgxpool.Pool
	srcApp, dstApp     *pgxpool.Pool
	set                *cells.Set
	other              lifecycle.Onboarded
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-move-rows: %q is not a positive number of rows", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func benchMove(ctx context.Context, cfg config, rep *report) error {
	sizes, err := parseSizes(cfg.moveRows)
	if err != nil {
		return err
	}
	logf("move level: tenants of %v products, %d rounds each, two local clusters", sizes, cfg.rounds)
	rep.moveLoad[0] = loadAverage()
	me, stop, err := startMoveClusters(ctx)
	if err != nil {
		return err
	}
	defer stop()
	results := map[int][]moveRound{}
	for _, n := range sizes {
		for r := range cfg.rounds {
			round, err := me.round(ctx, n, r)
			if err != nil {
				return fmt.Errorf("move level, %d rows, round %d: %w", n, r+1, err)
			}
			results[n] = append(results[n], round)
		}
		// The twin of this size goes (untimed).
		if _, err := me.srcSuper.Exec(ctx, "DELETE FROM tenants WHERE slug = $1", twinSlug(n)); err != nil {
			return err
		}
		if _, err := me.srcSuper.Exec(ctx, "VACUUM"); err != nil {
			return err
		}
	}
	rep.moveLoad[1] = loadAverage()
	rep.move(sizes, results)
	return nil
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute load averages.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(raw)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], ", ")
	}
	return "unknown"
}

// moveClusterSettings are both clusters': logical replication, and room in
// shared_buffers and WAL for a tenant of a million rows. The temporary
// clusters pgserver starts skip fsync; these restore the defaults, as the
// bench's kept cluster has them, so that neither side skips the WAL flushes.
var moveClusterSettings = []string{"wal_level=logical", "max_replication_slots=10", "max_wal_senders=10",
	"shared_buffers=1GB", "max_wal_size=4GB", "fsync=on", "synchronous_commit=on", "full_page_writes=on"}

// startMoveClusters starts the two clusters (temporary, removed by stop),
// migrates a database in each, registers the target as cell "dst" and
// onboards the other tenant.
func startMoveClusters(ctx context.Context) (me *moveEnv, stop func(), err error) {
	var servers []*pgserver.Server
	var pools []*pgxpool.Pool
	stop = func() {
		for _, p := range pools {
			p.Close()
		}
		for _, s := range servers {
			_ = s.Stop(context.Background())
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	me = &moveEnv{}
	appPassword := randomHex(16)
	var urls []string
	for range 2 {
		// Not BENCH_DATABASE_URL: a move needs two servers with settings of its own.
		s, err := pgserver.Start(ctx, pgserver.Options{Settings: moveClusterSettings})
		if err != nil {
			return nil, nil, err
		}
		servers = append(servers, s)
		conn, err := pgx.Connect(ctx, s.URL)
		if err != nil {
			return nil, nil, err
		}
		var walLevel string
		err = conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel)
		if err == nil && walLevel != "logical" {
			err = fmt.Errorf("the %s PostgreSQL server has wal_level = %s; a move needs logical", s.Source, walLevel)
		}
		if err == nil {
			_, err = conn.Exec(ctx, "CREATE DATABASE "+moveDB)
		}
		conn.Close(context.Background())
		if err != nil {
			return nil, nil, err
		}
		url := withDB(s.URL, moveDB, "", "")
		m, err := migrate.New(url, nil)
		if err != nil {
			return nil, nil, err
		}
		_, err = m.Up(ctx)
		m.Close()
		if err != nil {
			return nil, nil, err
		}
		if err := setAppPassword(ctx, s.URL, appPassword); err != nil {
			return nil, nil, err
		}
		urls = append(urls, url)
	}
	open := func(url string, conns int32) (*pgxpool.Pool, error) {
		pc, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, err
		}
		pc.MaxConns = conns
		p, err := db.Open(ctx, pc)
		if err == nil {
			pools = append(pools, p)
		}
		return p, err
	}
	me.srcURL, me.dstURL = urls[0], urls[1]
	if me.srcSuper, err = open(me.srcURL, 8); err != nil {
		return nil, nil, err
	}
	if me.dstSuper, err = open(me.dstURL, 8); err != nil {
		return nil, nil, err
	}
	if me.srcApp, err = open(withDB(servers[0].URL, moveDB, db.AppRole, appPassword), 8); err != nil {
		return nil, nil, err
	}
	if me.dstApp, err = open(withDB(servers[1].URL, moveDB, db.AppRole, appPassword), 8); err != nil {
		return nil, nil, err
	}
	if _, err = cells.Register(ctx, me.srcSuper, "dst", nil); err != nil {
		return nil, nil, err
	}
	if me.set, err = cells.NewSet(&cells.Cell{Name: cells.Default, App: me.srcApp}, &cells.Cell{Name: "dst", App: me.dstApp}); err != nil {
		return nil, nil, err
	}
	if me.other, err = lifecycle.Onboard(ctx, me.srcSuper, lifecycle.Tenant{Slug: "other", Name: "Other", AdminEmail: "a@other.example"}); err != nil {
		return nil, nil, err
	}
	return me, stop, nil
}

func twinSlug(n int) string { return fmt.Sprintf("twin-%d", n) }

// round seeds a tenant of n products to move (and, the first time, its
// twin for COPY), then measures the move and the COPY, in an order that
// alternates with r; after each, the target is emptied again (untimed).
func (me *moveEnv) round(ctx context.Context, n, r int) (out moveRound, err error) {
	start := time.Now()
	twin, err := db.Unscoped(me.srcSuper).TenantBySlug(ctx, twinSlug(n))
	twinID := twin.ID
	if errors.Is(err, db.ErrNotFound) {
		o, err := lifecycle.Onboard(ctx, me.srcSuper, lifecycle.Tenant{Slug: twinSlug(n), Name: "Twin", AdminEmail: "a@twin.example"})
		if err != nil {
			return out, err
		}
		if _, err := seedTenant(ctx, me.srcSuper, o.Tenant.ID, n); err != nil {
			return out, err
		}
		twinID = o.Tenant.ID
	} else if err != nil {
		return out, err
	}
	slug := fmt.Sprintf("moved-%d-%d", n, r+1)
	moved, err := lifecycle.Onboard(ctx, me.srcSuper, lifecycle.Tenant{Slug: slug, Name: "Moved", AdminEmail: "a@moved.example"})
	if err != nil {
		return out, err
	}
	if _, err := seedTenant(ctx, me.srcSuper, moved.Tenant.ID, n); err != nil {
		return out, err
	}
	if _, err := me.srcSuper.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return out, err
	}
	logf("move %d rows, round %d: seeded in %s", n, r+1, time.Since(start).Round(time.Second))
	out.moveFirst = r%2 == 0
	steps := []func() error{
		func() error { return me.timeMove(ctx, moved, &out) },
		func() error { return me.timeCopy(ctx, twinID, &out) },
	}
	if !out.moveFirst {
		steps[0], steps[1] = steps[1], steps[0]
	}
	for _, step := range steps {
		if err := me.quiesce(ctx); err != nil {
			return out, err
		}
		if err := step(); err != nil {
			return out, err
		}
		if err := me.emptyTarget(ctx); err != nil {
			return out, err
		}
	}
	// The moved tenant's catalog row (its rows went with the target's).
	_, err = me.srcSuper.Exec(ctx, "DELETE FROM tenants WHERE id = $1", moved.Tenant.ID)
	logf("move %d rows, round %d: move copy %s (%.0f rows/s), COPY %s (%.0f rows/s), frozen %s, longest 503 run %s (local) %s (remote)",
		n, r+1, out.report.Copy.Round(time.Millisecond), float64(out.moveRows)/out.report.Copy.Seconds(),
		out.copyTime.Round(time.Millisecond), float64(out.copyRows)/out.copyTime.Seconds(), out.report.Frozen.Round(time.Millisecond),
		out.local.longestRefused.Round(time.Millisecond), out.remote.longestRefused.Round(time.Millisecond))
	return out, err
}

// quiesce starts a measurement from the same state: both clusters
// checkpointed, the source's tables vacuumed.
func (me *moveEnv) quiesce(ctx context.Context) error {
	for _, p := range []*pgxpool.Pool{me.srcSuper, me.dstSuper} {
		if _, err := p.Exec(ctx, "VACUUM"); err != nil {
			return err
		}
		if _, err := p.Exec(ctx, "CHECKPOINT"); err != nil {
			return err
		}
	}
	return nil
}

// emptyTarget empties the target cell's tenant tables: it holds only what
// the bench copied there.
func (me *moveEnv) emptyTarget(ctx context.Context) error {
	_, err := me.dstSuper.Exec(ctx, "TRUNCATE tenants CASCADE")
	return err
}

// timeMove moves the tenant with cells.Move while the writers run.
func (me *moveEnv) timeMove(ctx context.Context, moved lifecycle.Onboarded, out *moveRound) error {
	local, localResolver := me.apiServer()
	defer local.Close()
	remote, _ := me.apiServer()
	defer remote.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	type run struct {
		stats *writerStats
		acked []string
	}
	runs := []*run{{stats: &out.local}, {stats: &out.remote}, {stats: &out.other}}
	targets := []struct {
		base, slug, key string
	}{{local.URL, moved.Tenant.Slug, moved.Key}, {remote.URL, moved.Tenant.Slug, moved.Key}, {local.URL, "other", me.other.Key}}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { runs[i].acked = writeProducts(wctx, client, t.base, t.slug, t.key, runs[i].stats) })
	}
	// `local` LISTENs for placement changes as serve does with CELLS
	// (invalidation.Listener): it forgets the tenant when the switch
	// commits. `remote` does not (as behind a transaction pooler): it learns
	// the placement when a write meets the freeze, or at its cache's TTL.
	wg.Go(func() {
		invalidation.New(slog.New(slog.DiscardHandler), localResolver).Run(wctx, invalidation.Source{Name: cells.Default, Pool: me.srcSuper, Channels: []string{tenancy.PlacementChannel}})
	})
	time.Sleep(500 * time.Millisecond) // the writers warm up: caches, connections
	m := &cells.Move{Tenant: moved.Tenant.ID, From: cells.Default, To: "dst", Catalog: me.srcSuper, Source: me.srcSuper, Target: me.dstSuper,
		SourceConnString: me.srcURL, Settle: tenancy.DefaultTTL + time.Second}
	rep, err := m.Run(ctx)
	time.Sleep(500 * time.Millisecond) // the writers go on in the new cell
	stopWriters()
	wg.Wait()
	if err != nil {
		return err
	}
	out.report = rep
	for _, n := range rep.Rows {
		out.moveRows += n
	}
	out.moveRows++ // the tenants row
	// Nothing acknowledged is lost: every acknowledged write of the moved
	// tenant is in the target.
	ids := append(append([]string{}, runs[0].acked...), runs[1].acked...)
	var found int
	if err := me.dstSuper.QueryRow(ctx, "SELECT count(*) FROM products WHERE id = ANY($1::uuid[])", ids).Scan(&found); err != nil {
		return err
	}
	if found != len(ids) {
		return fmt.Errorf("%d of %d acknowledged writes of the moved tenant are not in the target", len(ids)-found, len(ids))
	}
	// What a checksum costs on one side, here the target's copy, table
	// after table: cells.Move's (a sum of 64-bit row hashes, no sort), and,
	// for comparison, the md5 of the rows sorted as text that it replaced.
	for i, query := range []string{
		cells.Checksum,
		"SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM %s x WHERE tenant_id = $1",
	} {
		t0 := time.Now()
		for t := range rep.Rows {
			var n int64
			var c *string
			if err := me.dstSuper.QueryRow(ctx, fmt.Sprintf(query, pgx.Identifier{t}.Sanitize()),
				moved.Tenant.ID).Scan(&n, &c); err != nil {
				return err
			}
		}
		out.verify[i] = time.Since(t0)
	}
	return nil
}

// apiServer is one in-process API instance over both cells, with serve's
// default TENANT_CACHE_TTL.
func (me *moveEnv) apiServer() (*httptest.Server, *tenancy.Resolver) {
	h, resolver, err := apiHandler(me.srcApp, me.set, tenancy.DefaultTTL)
	if err != nil {
		panic(err) // a configuration error of the bench itself
	}
	return httptest.NewServer(h), resolver
}

// writeProducts POSTs a product every moveWriteInterval until ctx ends, and
// returns the ids of the acknowledged ones.
func writeProducts(ctx context.Context, client *http.Client, base, slug, key string, st *writerStats) (acked []string) {
	tick := time.NewTicker(moveWriteInterval)
	defer tick.Stop()
	var lastAck, runStart time.Time
	for {
		select {
		case <-ctx.Done():
			if !runStart.IsZero() {
				st.longestRefused = max(st.longestRefused, time.Since(runStart))
			}
			return acked
		case <-tick.C:
		}
		sent := time.Now()
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/products", strings.NewReader(`{"name":"written during the move","price":1}`))
		req.Header.Set("X-Tenant-ID", slug)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if ctx.Err() != nil {
			if err == nil {
				res.Body.Close()
			}
			continue // stopping: not an answer
		}
		if err != nil {
			st.failed++
			if st.firstFailure == "" {
				st.firstFailure = err.Error()
			}
			continue
		}
		var body struct {
			ID string `json:"id"`
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		now := time.Now()
		switch {
		case res.StatusCode == http.StatusCreated && json.Unmarshal(raw, &body) == nil:
			acked = append(acked, body.ID)
			st.acked++
			if !lastAck.IsZero() {
				st.longestGap = max(st.longestGap, now.Sub(lastAck))
			}
			lastAck = now
			if !runStart.IsZero() {
				st.longestRefused = max(st.longestRefused, now.Sub(runStart))
				runStart = time.Time{}
			}
		case res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") != "":
			st.refused++
			if runStart.IsZero() {
				runStart = sent
			}
		default:
			st.failed++
			if st.firstFailure == "" {
				st.firstFailure = fmt.Sprintf("%d %s", res.StatusCode, raw)
			}
		}
	}
}

// timeCopy times PostgreSQL's COPY of the twin's products and users from
// the source, piped into COPY FROM STDIN on the target as a scratch tenant,
// in one transaction on the target.
func (me *moveEnv) timeCopy(ctx context.Context, twin uuid.UUID, out *moveRound) error {
	scratch, err := lifecycle.Onboard(ctx, me.dstSuper, lifecycle.Tenant{Slug: "scratch", Name: "Scratch", AdminEmail: "a@scratch.example"})
	if err != nil {
		return err
	}
	src, err := me.srcSuper.Acquire(ctx)
	if err != nil {
		return err
	}
	defer src.Release()
	dst, err := me.dstSuper.Acquire(ctx)
	if err != nil {
		return err
	}
	defer dst.Release()
	type table struct{ name, cols string }
	tables := []table{{"products", "id, name, description, price, created_at, updated_at"},
		{"users", "id, name, email, role, external_id, created_at, updated_at"}}
	t0 := time.Now()
	tx, err := dst.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	for _, t := range tables {
		pr, pw := io.Pipe()
		copied := make(chan error, 1)
		go func() {
			_, err := src.Conn().PgConn().CopyTo(ctx, pw, fmt.Sprintf("COPY (SELECT '%s'::uuid, %s FROM %s WHERE tenant_id = '%s') TO STDOUT",
				scratch.Tenant.ID, t.cols, t.name, twin))
			pw.CloseWithError(err)
			copied <- err
		}()
		tag, err := tx.Conn().PgConn().CopyFrom(ctx, pr, fmt.Sprintf("COPY %s (tenant_id, %s) FROM STDIN", t.name, t.cols))
		pr.CloseWithError(err)
		if cerr := <-copied; cerr != nil || err != nil {
			return errors.Join(cerr, err)
		}
		out.copyRows += tag.RowsAffected()
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	out.copyTime = time.Since(t0)
	return nil
}

func (r *report) move(sizes []int, results map[int][]moveRound) {
	var b strings.Builder
	b.WriteString("## Move: a tenant moved between two clusters online (issue 18)\n\n")
	fmt.Fprintf(&b, "Two local PostgreSQL 15 clusters started by the bench with `wal_level = logical` (and `shared_buffers=1GB`, `max_wal_size=4GB`, "+
		"fsync on). The source is the default cell and the catalog; the target is cell `dst`. Each round seeds a tenant of N products and "+
		"N/100 users (the export level's `seedTenant`) in the source and moves it with `cells.Move` (a publication with a row filter, "+
		"a subscription, freeze, catch-up, count and checksum verification, switch, then cleanup), and, in the same round, times PostgreSQL's own "+
		"copy of a twin tenant's rows (the same code and counts) between the same clusters: `COPY (SELECT … WHERE tenant_id = …) TO STDOUT` "+
		"on the source piped into `COPY … FROM STDIN` into the same tables and indexes on the target as a scratch tenant, in one transaction. "+
		"The order alternates by round; before each the clusters are vacuumed and checkpointed, and after each the target is emptied.\n\n"+
		"During the move, the moved tenant POSTs a product every %s through each of two in-process API instances (serve's handler, "+
		"`TENANT_CACHE_TTL` %s): `local` LISTENs for placement changes and forgets the tenant when the switch commits (as serve does with `CELLS`), "+
		"`remote` does not listen (as behind a transaction pooler): it learns the new placement when a write meets the freeze, or at its cache's TTL (the source stays frozen for `Settle` = TTL + 1 s after the switch). "+
		"`pause` is a writer's longest run of 503 answers (from sending the first to the answer of the next 201). A third writer, another tenant "+
		"of the source cell, counts every answer that is not 201. Every acknowledged write of the moved tenant is checked to be in the target. "+
		"`catch-up` and `verify` are `MoveReport.CatchUp` and `.Verify`, the parts of `frozen` spent waiting for the target to confirm the freeze's marker "+
		"and comparing the copies (every table, both sides at once). `checksum, one side` times, after the move, `cells.Move`'s checksum "+
		"(count and a sum of 64-bit row hashes, no sort) over the moved tenant's tables, one after another, on the target alone; "+
		"`sorted md5, one side` the checksum it replaced (md5 of the rows sorted as text), on the same rows.\n\n",
		moveWriteInterval, tenancy.DefaultTTL)
	fmt.Fprintf(&b, "Machine state: load average %s at the start of the level, %s at its end (`/proc/loadavg`: 1, 5, 15 minutes).\n\n", r.moveLoad[0], r.moveLoad[1])
	tab := [][]string{{"rows (products + users)", "round", "first", "move copy", "move rows/s", "COPY", "COPY rows/s", "copy ratio",
		"frozen", "catch-up", "verify", "checksum, one side", "sorted md5, one side", "pause local", "pause remote", "503s local/remote", "other tenant: errors, longest gap"}}
	sum := [][]string{{"rows", "measure", "value", "target", "verdict"}}
	for _, n := range sizes {
		var ratios []float64
		var pause, remotePause, frozen time.Duration
		errs := 0
		for i, x := range results[n] {
			moveRate := float64(x.moveRows) / x.report.Copy.Seconds()
			copyRate := float64(x.copyRows) / x.copyTime.Seconds()
			ratios = append(ratios, moveRate/copyRate)
			pause = max(pause, x.local.longestRefused)
			remotePause = max(remotePause, x.remote.longestRefused)
			frozen = max(frozen, x.report.Frozen)
			errs += x.other.failed + x.other.refused + x.local.failed + x.remote.failed
			first := "COPY"
			if x.moveFirst {
				first = "move"
			}
			tab = append(tab, []string{fmt.Sprintf("%d + %d", n, max(1, n/100)), fmt.Sprint(i + 1), first,
				x.report.Copy.Round(time.Millisecond).String(), fmt.Sprintf("%.0f", moveRate),
				x.copyTime.Round(time.Millisecond).String(), fmt.Sprintf("%.0f", copyRate), fmt.Sprintf("%.3f", moveRate/copyRate),
				x.report.Frozen.Round(time.Millisecond).String(), x.report.CatchUp.Round(time.Millisecond).String(), x.report.Verify.Round(time.Millisecond).String(), x.verify[0].Round(time.Millisecond).String(), x.verify[1].Round(time.Millisecond).String(),
				x.local.longestRefused.Round(time.Millisecond).String(),
				x.remote.longestRefused.Round(time.Millisecond).String(), fmt.Sprintf("%d/%d", x.local.refused, x.remote.refused),
				fmt.Sprintf("%d, %s", x.other.failed+x.other.refused, x.other.longestGap.Round(time.Millisecond))})
			for _, w := range []writerStats{x.local, x.remote, x.other} {
				if w.firstFailure != "" {
					fmt.Fprintf(&b, "A writer's first failure (%d rows, round %d): %s\n\n", n, i+1, w.firstFailure)
				}
			}
		}
		if len(ratios) == 0 {
			continue
		}
		copyRatio := median(ratios)
		sum = append(sum,
			[]string{fmt.Sprint(n), "move copy / COPY rows/s (median of rounds)", fmt.Sprintf("%.3f", copyRatio), ">= 0.5", verdict(copyRatio, 0.5, true)},
			[]string{fmt.Sprint(n), "write pause, local instance (longest of rounds)", pause.Round(time.Millisecond).String(), "< 2s", verdict(2, pause.Seconds(), true)},
			[]string{fmt.Sprint(n), "write pause, another instance (longest of rounds)", remotePause.Round(time.Millisecond).String(), "< 2s", verdict(2, remotePause.Seconds(), true)},
			[]string{fmt.Sprint(n), "MoveReport.Frozen (longest of rounds)", frozen.Round(time.Millisecond).String(), "(context)", "-"},
			[]string{fmt.Sprint(n), "errors: other tenant's answers not 201, moved tenant's neither 201 nor 503", fmt.Sprint(errs), "0", verdict(0, float64(errs), true)})
		r.ratios = append(r.ratios, bar{fmt.Sprintf("move %d: copy / COPY", n), copyRatio, 0.5, true})
	}
	b.WriteString(table(tab) + "\n" + table(sum))
	r.sections = append(r.sections, b.String())
}
