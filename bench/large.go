package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

// The large level (issue #16 item 1): every list, filter and sort the API
// documents, on a tenant of 1,000,000 products and 1,000,000 users against a
// tenant of 1,000 of each, side by side in one run, at the execution level
// (db.One with the statement the handler sends) and the HTTP level (rowfence
// serve). Target: p99(1M) / p99(1k) <= 1.5 for each.

// largeData is the dataset: bench tenants 1 (large) and 2 (small), each
// with 1,000 products and an admin (sql/data.sql), then grown by largeSQL.
var largeData = dataset{name: "large", tenants: 2, perTenant: 1000}

// largeRows is the large tenant's rows per table.
const largeRows = 1_000_000

// largeSQL grows tenant 1 to largeRows products and users, gives tenant 2
// 1,000 users, and names five rows of each table in each tenant "Rare …"
// (the rare ?q= prefix); the other names share a common prefix.
var largeSQL = []string{
	`INSERT INTO products (tenant_id, id, name, description, price, created_at, updated_at)
	 SELECT md5('t1')::uuid, md5('t1:' || p)::uuid, 'product ' || p, 'a product for the benchmark', p, ts, ts
	 FROM generate_series(1001, 1000000) p, LATERAL (SELECT timestamptz '2026-01-01 00:00:00+00' + p * interval '1 second') c(ts)`,
	`UPDATE products SET name = 'Rare item ' || price
	 WHERE (tenant_id = md5('t1')::uuid AND price % 200000 = 0) OR (tenant_id = md5('t2')::uuid AND price % 200 = 0)`,
	`INSERT INTO users (tenant_id, name, email, role, created_at, updated_at)
	 SELECT md5('t' || t)::uuid, CASE WHEN i % (n / 5) = 0 THEN 'Rare person ' || i ELSE 'User ' || md5(t || ':' || i) END,
	        'user' || i || '@example.com', 'member', ts, ts
	 FROM (VALUES (1, 999999), (2, 999)) v(t, n), generate_series(1, n) i,
	      LATERAL (SELECT timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second') c(ts)`,
}

// ensureLarge builds largeData once (kept in the bench cluster).
func ensureLarge(ctx context.Context, e env) error {
	if err := e.ensure(ctx, largeData, logf); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, e.adminURL(largeData))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM users WHERE tenant_id = md5('t1')::uuid`).Scan(&n); err != nil {
		return err
	}
	if n >= largeRows {
		return nil
	}
	logf("growing %s: tenant 1 to %d products and users", largeData.dbName(), largeRows)
	start := time.Now()
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, s := range largeSQL {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%w\n%s", err, s)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE products, users"); err != nil {
		return err
	}
	logf("grew %s in %s", largeData.dbName(), time.Since(start).Round(time.Second))
	return nil
}

// largeCase is one documented list request: its query string, and the
// statement the handler sends for it (httpapi/products.go, users.go) with a
// page of 20 (21 rows read). A next page (cursor) is the first page's cursor
// over HTTP, and the matching keyset position at the execution level.
type largeCase struct {
	name  string
	query string // path and query string, no limit
	next  bool   // HTTP: ask for the page after the first
	exec  func(ctx context.Context, q *dbsqlc.Queries) (int, error)
}

func largeCases() []largeCase {
	origin, since := firstPage, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const limit = 21
	ps := func(p dbsqlc.ProductListSortedParams) func(context.Context, *dbsqlc.Queries) (int, error) {
		p.RowLimit = limit
		if p.First {
			p.AfterTime = origin
		}
		return func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.ProductListSorted(ctx, p)
			return len(rows), err
		}
	}
	us := func(p dbsqlc.UserListSortedParams) func(context.Context, *dbsqlc.Queries) (int, error) {
		p.RowLimit = limit
		if p.First {
			p.AfterTime = origin
		}
		return func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.UserListSorted(ctx, p)
			return len(rows), err
		}
	}
	cases := []largeCase{
		{"products", "/v1/products", false, func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.ProductList(ctx, dbsqlc.ProductListParams{AfterCreatedAt: origin, RowLimit: limit})
			return len(rows), err
		}},
		{"products next page", "/v1/products", true, func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.ProductList(ctx, dbsqlc.ProductListParams{AfterCreatedAt: since.Add(500 * time.Second), RowLimit: limit})
			return len(rows), err
		}},
		{"products ?updated_since=", "/v1/products?updated_since=2026-01-01T00:00:00Z", false, func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.ProductListUpdated(ctx, dbsqlc.ProductListUpdatedParams{AfterUpdatedAt: since, RowLimit: limit})
			return len(rows), err
		}},
		{"products ?q= common", "/v1/products?q=prod", false, func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.ProductSearch(ctx, dbsqlc.ProductSearchParams{Prefix: "prod", AfterCreatedAt: origin, RowLimit: limit})
			return len(rows), err
		}},
		{"products ?q= rare", "/v1/products?q=rare", false, func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.ProductSearch(ctx, dbsqlc.ProductSearchParams{Prefix: "rare", AfterCreatedAt: origin, RowLimit: limit})
			return len(rows), err
		}},
		{"products ?sort=name next page", "/v1/products?sort=name", true, ps(dbsqlc.ProductListSortedParams{Sort: "name", AfterText: "product 5"})},
		{"products ?sort=-price next page", "/v1/products?sort=-price", true, ps(dbsqlc.ProductListSortedParams{Sort: "-price", AfterNum: 500})},
		{"products ?q= common &sort=-name", "/v1/products?q=prod&sort=-name", false, ps(dbsqlc.ProductListSortedParams{Sort: "-name", Prefix: "prod", First: true})},
		{"products ?q= rare &sort=price", "/v1/products?q=rare&sort=price", false, ps(dbsqlc.ProductListSortedParams{Sort: "price", Prefix: "rare", First: true})},
		{"users", "/v1/users", false, func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.UserList(ctx, dbsqlc.UserListParams{AfterCreatedAt: origin, RowLimit: limit})
			return len(rows), err
		}},
		{"users ?updated_since=", "/v1/users?updated_since=2026-01-01T00:00:00Z", false, func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.UserListUpdated(ctx, dbsqlc.UserListUpdatedParams{AfterUpdatedAt: since, RowLimit: limit})
			return len(rows), err
		}},
		{"users ?email=", "/v1/users?email=USER77@example.com", false, func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.UserListByEmail(ctx, dbsqlc.UserListByEmailParams{Email: "USER77@example.com", First: true})
			return len(rows), err
		}},
		{"users ?email= &sort=name", "/v1/users?email=user77@example.com&sort=name", false, func(ctx context.Context, q *dbsqlc.Queries) (int, error) {
			rows, err := q.UserListByEmail(ctx, dbsqlc.UserListByEmailParams{Email: "user77@example.com", First: true})
			return len(rows), err
		}},
		{"users ?q= common", "/v1/users?q=user", false, us(dbsqlc.UserListSortedParams{Sort: "created_at", Prefix: "user", First: true})},
		{"users ?q= rare", "/v1/users?q=rare", false, us(dbsqlc.UserListSortedParams{Sort: "created_at", Prefix: "rare", First: true})},
		{"users ?q= rare &sort=-email", "/v1/users?q=rare&sort=-email", false, us(dbsqlc.UserListSortedParams{Sort: "-email", Prefix: "rare", First: true})},
		{"users ?sort=email next page", "/v1/users?sort=email", true, us(dbsqlc.UserListSortedParams{Sort: "email", AfterText: "user5"})},
	}
	// Every sort of both lists, both ways, first page.
	for _, s := range []string{"-created_at", "name", "-name", "price", "-price"} {
		cases = append(cases, largeCase{"products ?sort=" + s, "/v1/products?sort=" + s, false, ps(dbsqlc.ProductListSortedParams{Sort: s, First: true})})
	}
	for _, s := range []string{"-created_at", "name", "-name", "email", "-email"} {
		cases = append(cases, largeCase{"users ?sort=" + s, "/v1/users?sort=" + s, false, us(dbsqlc.UserListSortedParams{Sort: s, First: true})})
	}
	return cases
}

func benchLarge(ctx context.Context, cfg config, e env, rep *report) error {
	logf("large level: every documented list on a tenant of %d rows against one of 1,000, one client, %d rounds of %ds", largeRows, cfg.rounds, cfg.seconds)
	pool, err := e.appPool(ctx, largeData, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	dir, err := os.MkdirTemp("", "rfbench-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rowfence, err := build(ctx, dir, "github.com/rowfence/rowfence/cmd/rowfence")
	if err != nil {
		return err
	}
	s, err := startServe(ctx, rowfence, e.appURL(largeData))
	if err != nil {
		return err
	}
	defer s.stop()
	client := httpClient(1)

	cases := largeCases()
	ops := map[string]op{}
	var order []string
	for _, c := range cases {
		for _, t := range []struct {
			n    int
			size string
		}{{1, "1M"}, {2, "1k"}} {
			execLabel, httpLabel := "exec "+c.name+" "+t.size, "http "+c.name+" "+t.size
			ops[execLabel] = largeExec(pool, t.n, c)
			h, err := largeHTTP(ctx, client, s.base, t.n, c)
			if err != nil {
				return fmt.Errorf("%s: %w", httpLabel, err)
			}
			ops[httpLabel] = h
			order = append(order, execLabel, httpLabel)
		}
	}
	// Warm up: connections, prepared statements, the tenant cache, the pages.
	if _, err := interleave(ctx, 1, 1, 300*time.Millisecond, order, ops); err != nil {
		return err
	}
	res, err := interleave(ctx, cfg.rounds, 1, time.Duration(cfg.seconds)*time.Second, order, ops)
	if err != nil {
		return err
	}
	rep.large(res, cases)
	return nil
}

// largeExec runs c's statement as tenant n through db.One, the scoped path.
func largeExec(pool *pgxpool.Pool, n int, c largeCase) op {
	return func(ctx context.Context, _ *rand.Rand) error {
		got, err := db.One(ctx, pool, scope(n), func(q *dbsqlc.Queries) (int, error) { return c.exec(ctx, q) })
		if err == nil && got == 0 && !strings.Contains(c.name, "rare &") && !strings.Contains(c.name, "email") {
			err = fmt.Errorf("%s: no rows", c.name)
		}
		return err
	}
}

// largeHTTP sends c's request as tenant n; for a next page it first gets
// the first page's cursor.
func largeHTTP(ctx context.Context, client *http.Client, base string, n int, c largeCase) (op, error) {
	target := base + c.query
	sep := "?"
	if strings.Contains(c.query, "?") {
		sep = "&"
	}
	if c.next {
		req, err := http.NewRequestWithContext(ctx, "GET", target, nil)
		if err != nil {
			return nil, err
		}
		authenticate(req, n)
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		var page struct {
			Next string `json:"next_cursor"`
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if err := json.Unmarshal(raw, &page); err != nil || page.Next == "" {
			return nil, fmt.Errorf("no next page: %d %s", res.StatusCode, raw)
		}
		target += sep + "cursor=" + url.QueryEscape(page.Next)
	}
	return httpOp(client, 200, func(*rand.Rand) (*http.Request, error) {
		req, err := http.NewRequest("GET", target, nil)
		if err == nil {
			authenticate(req, n)
		}
		return req, err
	}), nil
}

// large reports the level's section: each case's p99 on both tenants.
func (r *report) large(res map[string]result, cases []largeCase) {
	var b strings.Builder
	b.WriteString("## Large: every documented list is an index walk (issue #16 item 1)\n\n")
	fmt.Fprintf(&b, "Bench tenant 1 holds %d products and %d users, tenant 2 1,000 of each; one client, pages of 20, "+
		"%d rounds of %ds for each measurement, all cases and both tenants in turn. exec: `db.One` with the statement the handler "+
		"sends (generic plan, as served); http: `rowfence serve` on loopback. Target: p99(1M) / p99(1k) <= 1.5.\n\n",
		largeRows, largeRows, r.cfg.rounds, r.cfg.seconds)
	rows := [][]string{{"list", "level", "p50 1k (ms)", "p50 1M (ms)", "p50 ratio", "p99 1k (ms)", "p99 1M (ms)", "p99 ratio", "verdict (p99)"}}
	met, total, worstP50 := 0, 0, 0.0
	for _, c := range cases {
		for _, level := range []string{"exec", "http"} {
			small, large := res[level+" "+c.name+" 1k"], res[level+" "+c.name+" 1M"]
			ratio := float64(large.p99) / float64(small.p99)
			v := verdict(ratio, 1.5, false)
			total++
			if ratio <= 1.5 {
				met++
			}
			p50 := float64(large.p50) / float64(small.p50)
			worstP50 = max(worstP50, p50)
			rows = append(rows, []string{c.name, level, ms(small.p50), ms(large.p50), fmt.Sprintf("%.2f", p50),
				ms(small.p99), ms(large.p99), fmt.Sprintf("%.2f", ratio), v})
		}
	}
	b.WriteString(table(rows))
	fmt.Fprintf(&b, "\np99 target met in %d of %d; the largest p50 ratio is %.2f.\n", met, total, worstP50)
	r.sections = append(r.sections, b.String())
}
