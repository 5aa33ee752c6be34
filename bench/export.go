package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/migrate"
)

// Level export (issue 16, item 3): a tenant of cfg.exportRows products
// exported by the server's job into chunks, downloaded over HTTP and
// imported by `rowfence tenant import`, each against PostgreSQL's own COPY of
// the same rows (COPY … TO of the tenant's rows under its setting, as the
// export reads them; COPY … FROM of those rows into a scratch tenant as the
// superuser, since PostgreSQL refuses COPY FROM under RLS), in alternating
// rounds; and the peak RSS of the server and of the importing command.

type exportRound struct {
	copyTo, export, download, copyFrom, imp time.Duration
	bytes                                   int64
}

func benchExport(ctx context.Context, cfg config, e env, rep *report) error {
	n := cfg.exportRows
	name := fmt.Sprintf("rfbench_export_%d", n)
	adminURL := withDB(e.serverURL, name, "", "")
	super, err := pgx.Connect(ctx, e.serverURL)
	if err != nil {
		return err
	}
	defer super.Close(context.Background())
	logf("export: building %s (%d products)", name, n)
	if _, err := super.Exec(ctx, "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)"); err != nil {
		return err
	}
	if _, err := super.Exec(ctx, "create database "+pgx.Identifier{name}.Sanitize()); err != nil {
		return err
	}
	defer func() {
		_, _ = super.Exec(context.Background(), "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)")
	}()
	m, err := migrate.New(adminURL, nil)
	if err != nil {
		return err
	}
	_, err = m.Up(ctx)
	m.Close()
	if err != nil {
		return err
	}
	if err := setAppPassword(ctx, e.serverURL, e.appPassword); err != nil {
		return err
	}
	ownerCfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return err
	}
	ownerCfg.MaxConns = 4
	db.AsOwner(ownerCfg)
	owner, err := db.Open(ctx, ownerCfg)
	if err != nil {
		return err
	}
	defer owner.Close()
	adminPool, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		return err
	}
	defer adminPool.Close()
	o, err := lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: "big", Name: "Big", AdminEmail: "admin@big.example"})
	if err != nil {
		return err
	}
	start := time.Now()
	rows, err := seedTenant(ctx, adminPool, o.Tenant.ID, n)
	if err != nil {
		return err
	}
	if _, err := adminPool.Exec(ctx, "vacuum analyze"); err != nil {
		return err
	}
	logf("export: built in %s", time.Since(start).Round(time.Second))

	platformPassword := randomHex(16)
	if err := db.SetRolePassword(ctx, adminPool, "rowfence_platform", platformPassword); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "rfbench-export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := build(ctx, dir, "github.com/rowfence/rowfence/cmd/rowfence")
	if err != nil {
		return err
	}
	srv, err := startServe(ctx, bin, withDB(e.serverURL, name, "rowfence_app", e.appPassword),
		"PLATFORM_DATABASE_URL="+withDB(e.serverURL, name, "rowfence_platform", platformPassword), "REQUEST_TIMEOUT=60s")
	if err != nil {
		return err
	}
	defer srv.stop()
	_, idleRSS := srv.rss()

	var rounds []exportRound
	for round := range cfg.rounds {
		var r exportRound
		// COPY TO of the tenant's rows, under its setting (as the export reads them).
		t0 := time.Now()
		err := db.Stream(ctx, owner, db.Scope{TenantID: o.Tenant.ID, Role: dbtype.RoleAdmin}, db.BeginSnapshot, func(conn *pgx.Conn) error {
			for _, q := range []string{"users", "products", "api_keys"} {
				if _, err := conn.PgConn().CopyTo(ctx, io.Discard, "copy (select * from "+q+") to stdout"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		r.copyTo = time.Since(t0)

		// The export, by the server's job, from POST until done.
		t0 = time.Now()
		id, err := exportThroughServer(ctx, srv.base, o.Key)
		if err != nil {
			return err
		}
		r.export = time.Since(t0)

		// The download, to a file.
		file := filepath.Join(dir, "export.jsonl")
		t0 = time.Now()
		if r.bytes, err = download(ctx, srv.base, o.Key, id, file); err != nil {
			return err
		}
		r.download = time.Since(t0)

		// COPY FROM of the same rows into a scratch tenant, as the superuser.
		scratch, err := lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: fmt.Sprintf("scratch-%d", round), Name: "Scratch", AdminEmail: "a@scratch.example"})
		if err != nil {
			return err
		}
		if r.copyFrom, err = copyFromSameRows(ctx, adminURL, o.Tenant.ID, scratch.Tenant.ID, dir); err != nil {
			return err
		}
		if err := lifecycle.Delete(ctx, owner, scratch.Tenant.ID); err != nil {
			return err
		}

		// The import, by the command, into a new tenant.
		t0 = time.Now()
		cmd := exec.CommandContext(ctx, bin, "tenant", "import", "--slug", fmt.Sprintf("copy-%d", round), file)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+adminURL)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("tenant import: %w\n%s", err, out)
		}
		r.imp = time.Since(t0)
		importRSS := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
		rep.exportImportRSS = max(rep.exportImportRSS, importRSS)
		copyTenant, err := db.Unscoped(owner).TenantBySlug(ctx, fmt.Sprintf("copy-%d", round))
		if err != nil {
			return err
		}
		if err := lifecycle.Delete(ctx, owner, copyTenant.ID); err != nil {
			return err
		}
		if err := deleteExport(ctx, srv.base, o.Key, id); err != nil {
			return err
		}
		logf("export round %d: copy to %s, export %s, download %s, copy from %s, import %s (%d bytes)", round+1,
			r.copyTo.Round(time.Millisecond), r.export.Round(time.Millisecond), r.download.Round(time.Millisecond),
			r.copyFrom.Round(time.Millisecond), r.imp.Round(time.Millisecond), r.bytes)
		rounds = append(rounds, r)
	}
	_, peakRSS := srv.rss()
	rep.export(rounds, rows, n, idleRSS, peakRSS)
	return nil
}

// seedTenant gives tenant id products products and products/100 users (at
// least one), as a superuser (pool), and returns the tenant's rows: those
// and the admin user and API key onboarding made. The export and move
// levels both seed their large tenants with it.
func seedTenant(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID, products int) (rows int, err error) {
	if _, err := pool.Exec(ctx, `insert into products (tenant_id, name, description, price, created_at, updated_at)
		select $1, 'product ' || g, 'the description of product number ' || g, g, now() - g * interval '1 millisecond', now()
		from generate_series(1, $2::int) g`, id, products); err != nil {
		return 0, err
	}
	users := max(1, products/100)
	if _, err := pool.Exec(ctx, `insert into users (tenant_id, name, email, role)
		select $1, 'user ' || g, 'u' || g || '@big.example', 'viewer' from generate_series(1, $2::int) g`, id, users); err != nil {
		return 0, err
	}
	return products + users + 1, nil
}

func exportThroughServer(ctx context.Context, base, key string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/exports", nil)
	req.Header.Set("X-Tenant-ID", "big")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	var made struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	err = json.NewDecoder(res.Body).Decode(&made)
	res.Body.Close()
	if err != nil || res.StatusCode != 202 {
		return "", fmt.Errorf("POST /v1/exports: %d %v", res.StatusCode, err)
	}
	for {
		time.Sleep(50 * time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/exports/"+made.ID, nil)
		req.Header.Set("X-Tenant-ID", "big")
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		err = json.NewDecoder(res.Body).Decode(&made)
		res.Body.Close()
		if err != nil {
			return "", err
		}
		switch made.Status {
		case "done":
			return made.ID, nil
		case "failed":
			return "", fmt.Errorf("export failed: %s", made.Error)
		}
	}
}

func download(ctx context.Context, base, key, id, file string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/exports/"+id+"/download", nil)
	req.Header.Set("X-Tenant-ID", "big")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("download: %d", res.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(f, res.Body)
}

func deleteExport(ctx context.Context, base, key, id string) error {
	req, _ := http.NewRequestWithContext(ctx, "DELETE", base+"/v1/exports/"+id, nil)
	req.Header.Set("X-Tenant-ID", "big")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		return fmt.Errorf("DELETE export: %d", res.StatusCode)
	}
	return nil
}

// copyFromSameRows copies the tenant's rows out (untimed, to a file) and
// times COPY FROM of them into the scratch tenant, as the superuser.
func copyFromSameRows(ctx context.Context, adminURL string, from, to uuid.UUID, dir string) (time.Duration, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	type table struct{ name, cols string }
	tables := []table{{"users", "id, name, email, role, external_id, created_at, updated_at"},
		{"products", "id, name, description, price, created_at, updated_at"}}
	for _, t := range tables {
		f, err := os.Create(filepath.Join(dir, t.name+".copy"))
		if err != nil {
			return 0, err
		}
		_, err = conn.PgConn().CopyTo(ctx, f, fmt.Sprintf("copy (select '%s'::uuid, %s from %s where tenant_id = '%s') to stdout", to, t.cols, t.name, from))
		f.Close()
		if err != nil {
			return 0, err
		}
	}
	t0 := time.Now()
	if _, err := conn.Exec(ctx, "begin"); err != nil {
		return 0, err
	}
	for _, t := range tables {
		f, err := os.Open(filepath.Join(dir, t.name+".copy"))
		if err != nil {
			return 0, err
		}
		_, err = conn.PgConn().CopyFrom(ctx, f, fmt.Sprintf("copy %s (tenant_id, %s) from stdin", t.name, t.cols))
		f.Close()
		if err != nil {
			return 0, err
		}
	}
	if _, err := conn.Exec(ctx, "commit"); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func median(ds []float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *report) export(rounds []exportRound, rows, products int, idleRSS, peakRSS int64) {
	var b strings.Builder
	b.WriteString("## Export: streaming exports against COPY of the same rows\n\n")
	fmt.Fprintf(&b, "One tenant of %d products and %d users (%d rows), %d rounds in turn: PostgreSQL's `COPY (SELECT …) TO STDOUT` of the tenant's rows "+
		"under its setting (as the export reads them), the server's export job from `POST /v1/exports` until `done` (rows streamed into 1 MiB chunks), "+
		"the download over HTTP into a file, `COPY … FROM STDIN` of the same rows into a scratch tenant as the superuser "+
		"(PostgreSQL refuses COPY FROM under RLS), and `rowfence tenant import` of the downloaded file into a new tenant. "+
		"The section's stamp gives the command (the size is `-export-rows`).\n\n", products, rows-products, rows, len(rounds))
	tab := [][]string{{"round", "COPY TO", "export", "download", "COPY FROM", "import", "bytes"}}
	var exp, dl, imp []float64
	for i, x := range rounds {
		tab = append(tab, []string{fmt.Sprint(i + 1), x.copyTo.Round(time.Millisecond).String(), x.export.Round(time.Millisecond).String(),
			x.download.Round(time.Millisecond).String(), x.copyFrom.Round(time.Millisecond).String(), x.imp.Round(time.Millisecond).String(), fmt.Sprint(x.bytes)})
		exp = append(exp, x.copyTo.Seconds()/x.export.Seconds())
		dl = append(dl, x.copyTo.Seconds()/x.download.Seconds())
		imp = append(imp, x.copyFrom.Seconds()/x.imp.Seconds())
	}
	b.WriteString(table(tab))
	last := rounds[len(rounds)-1]
	rate := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(rows)/d.Seconds()) }
	b.WriteString("\n")
	b.WriteString(table([][]string{
		{"comparison", "rows/s (last round)", "baseline rows/s", "ratio (median of rounds)", "target", "verdict"},
		{"export / COPY TO", rate(last.export), rate(last.copyTo), fmt.Sprintf("%.3f", median(exp)), ">= 0.5", verdict(median(exp), 0.5, true)},
		{"download / COPY TO", rate(last.download), rate(last.copyTo), fmt.Sprintf("%.3f", median(dl)), ">= 0.5", verdict(median(dl), 0.5, true)},
		{"import / COPY FROM", rate(last.imp), rate(last.copyFrom), fmt.Sprintf("%.3f", median(imp)), ">= 0.5", verdict(median(imp), 0.5, true)},
	}))
	r.ratios = append(r.ratios, bar{"export / COPY TO", median(exp), 0.5, true}, bar{"import / COPY FROM", median(imp), 0.5, true})
	fmt.Fprintf(&b, "\nServer RSS: %.1f MiB idle, %.1f MiB peak over every export and download (target < 100 MiB: %s). "+
		"`rowfence tenant import` peak RSS: %.1f MiB (%s).\n",
		float64(idleRSS)/1024, float64(peakRSS)/1024, verdict(100, float64(peakRSS)/1024, true),
		float64(r.exportImportRSS)/1024, verdict(100, float64(r.exportImportRSS)/1024, true))
	r.sections = append(r.sections, b.String())
}
