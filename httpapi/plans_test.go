package httpapi_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/tenancy"
)

// planRows is the size of the large tenant of TestListPlansAreIndexWalks.
// 200,000 keeps `make test` cheap; its generic plans are those of a tenant of
// 1,000,000 rows (go test -run TestListPlansAreIndexWalks ./httpapi
// -args -plan-rows=1000000 shows the same plans; bench -only large measures
// the latency there).
var planRows = flag.Int("plan-rows", 200000, "rows per table of the large tenant in TestListPlansAreIndexWalks")

// statementRecorder is a pgx tracer that keeps each named statement (sqlc's
// "-- name: X" first line) with its arguments, as the server sent them.
type statementRecorder struct {
	mu   sync.Mutex
	seen []recordedStatement
}

type recordedStatement struct {
	sql  string
	args []any
}

func (r *statementRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(d.SQL, "-- name: ") {
		r.mu.Lock()
		r.seen = append(r.seen, recordedStatement{d.SQL, slices.Clone(d.Args)})
		r.mu.Unlock()
	}
	return ctx
}

func (r *statementRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// db.One sends its statement in a batch with the scope's setting.
func (r *statementRecorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (r *statementRecorder) TraceBatchQuery(ctx context.Context, c *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.TraceQueryStart(ctx, c, pgx.TraceQueryStartData{SQL: d.SQL, Args: d.Args})
}

func (r *statementRecorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (r *statementRecorder) take() []recordedStatement {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.seen
	r.seen = nil
	return out
}

// sqlLiteral writes a statement argument as a typed SQL literal, for
// EXECUTE (EXPLAIN EXECUTE takes no bind parameters).
func sqlLiteral(t *testing.T, a any) string {
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	switch v := a.(type) {
	case string:
		return quote(v) + "::text"
	case bool, int, int32, int64:
		return fmt.Sprint(v)
	case time.Time:
		return quote(v.Format(time.RFC3339Nano)) + "::timestamptz"
	case uuid.UUID:
		return quote(v.String()) + "::uuid"
	}
	t.Fatalf("no SQL literal for %T", a)
	return ""
}

// planNode is a node of EXPLAIN (FORMAT JSON)'s plan.
type planNode struct {
	NodeType       string     `json:"Node Type"`
	Relation       string     `json:"Relation Name"`
	Index          string     `json:"Index Name"`
	ActualRows     float64    `json:"Actual Rows"`
	ActualLoops    float64    `json:"Actual Loops"`
	RemovedFilter  float64    `json:"Rows Removed by Filter"`
	RemovedRecheck float64    `json:"Rows Removed by Index Recheck"`
	SubplanName    string     `json:"Subplan Name"`
	CTEName        string     `json:"CTE Name"`
	Plans          []planNode `json:"Plans"`
}

// walkPlan calls fn on n and every node below it, with its parent.
func walkPlan(n, parent *planNode, fn func(n, parent *planNode)) {
	fn(n, parent)
	for i := range n.Plans {
		walkPlan(&n.Plans[i], n, fn)
	}
}

// anyBelow says whether a node below n (or n) satisfies fn.
func anyBelow(n *planNode, fn func(*planNode) bool) bool {
	found := false
	walkPlan(n, nil, func(m, _ *planNode) { found = found || fn(m) })
	return found
}

// Every list, filter and sort the API documents is an index walk within the
// tenant (issue #16 item 1; sql/migrations/00018_list_indexes.sql). The
// lists come from the contract: each sort of openapi.yaml's enum (and none),
// with and without ?q= (a prefix most names have, and a rare one), ?email=
// where the list has it, and ?updated_since=; each first page and the next
// one through its cursor. The statements the server sends for them are
// recorded as sent (the generated SQL, the handler's arguments), and each one
// is explained as rowfence_app in the large tenant, RLS on, with its generic
// plan (db.genericPlan forces it for the lists) and executed (EXPLAIN
// ANALYZE). A plan must:
//   - scan a tenant table through an index, never sequentially, and not in
//     parallel (Gather: PostgreSQL's answer to reading many rows);
//   - sort nothing but a page, 50 pages (a CTE under a Limit) or the ?q=
//     range of (tenant_id, name_lower COLLATE "C"), which the statements
//     read only when it holds fewer than 50 pages of matches (the "rare"
//     gate of queries/*.sql);
//   - handle, in every node it executes, at most about 50 pages of rows
//     (rows out plus rows filtered out), where the tenant has planRows.
//
// A new sort without an index, or a filter PostgreSQL applies after the
// policy (a function that is not leakproof on a column), fails here.
func TestListPlansAreIndexWalks(t *testing.T) {
	t.Parallel()
	rec := &statementRecorder{}
	b := setup(t, func(c *httpapi.Config) {
		cfg := c.Pool.Config().Copy()
		if cfg.ConnConfig.Tracer == nil {
			cfg.ConnConfig.Tracer = rec
		} else {
			cfg.ConnConfig.Tracer = multitracer.New(cfg.ConnConfig.Tracer, rec)
		}
		pool, err := db.Open(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		c.Pool = pool
		c.Resolver = tenancy.NewResolver(pool, time.Minute)
		authn, err := auth.New(auth.Config{Pool: pool, Tenants: c.Resolver})
		require.NoError(t, err)
		c.Auth = authn
	})
	ctx := context.Background()

	// acme is the large tenant, globex a small one, a third one smaller.
	// Names start with p (products) or u (users), but for five rare ones.
	third := uuid.New()
	_, err := b.admin.Exec(ctx, `INSERT INTO tenants (id, slug, name) VALUES ($1, 'initech', 'initech')`, third)
	require.NoError(t, err)
	start := time.Now()
	for _, tn := range []struct {
		id   uuid.UUID
		rows int
	}{{b.acme, *planRows}, {b.globex, 1000}, {third, 10}} {
		_, err := b.admin.Exec(ctx, `INSERT INTO products (tenant_id, name, price, created_at, updated_at)
			SELECT $1::uuid, CASE WHEN i % ($2::int / 5) = 0 THEN 'Rare widget ' || i ELSE 'p' || md5($1::text || i) END,
			       (i::bigint * 7919) % 100000, t, t
			FROM generate_series(1, $2::int) i, LATERAL (SELECT now() - make_interval(secs => i)) c(t)`, tn.id, tn.rows)
		require.NoError(t, err)
		_, err = b.admin.Exec(ctx, `INSERT INTO users (tenant_id, name, email, role, created_at, updated_at)
			SELECT $1::uuid, CASE WHEN i % ($2::int / 5) = 0 THEN 'Rare person ' || i ELSE 'U' || md5($1::text || i) END,
			       'user' || i || '@Big.example', 'member', t, t
			FROM generate_series(1, $2::int) i, LATERAL (SELECT now() - make_interval(secs => i)) c(t)`, tn.id, tn.rows)
		require.NoError(t, err)
	}
	_, err = b.admin.Exec(ctx, `ANALYZE products; ANALYZE users`)
	require.NoError(t, err)
	t.Logf("large tenant: %d products and users, built in %v", *planRows, time.Since(start).Round(time.Millisecond))

	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	const limit = 20
	type list struct{ path, common, rare, email string }
	lists := map[string]list{
		"listProducts": {path: "/v1/products", common: "P", rare: "rare"},
		"listUsers":    {path: "/v1/users", common: "u", rare: "RARE", email: "USER7@big.example"},
	}
	var requests []string
	for op, l := range lists {
		var sorts []string
		params := map[string]bool{}
		for _, p := range doc.Paths.Find(l.path).Get.Parameters {
			params[p.Value.Name] = true
			if p.Value.Name == "sort" {
				for _, v := range p.Value.Schema.Value.Enum {
					sorts = append(sorts, v.(string))
				}
			}
		}
		require.NotEmpty(t, sorts, "%s documents its sorts", op)
		require.True(t, params["q"] && params["updated_since"], "%s: ?q= and ?updated_since=", op)
		require.Equal(t, l.email != "", params["email"], "%s: ?email= as documented", op)
		for _, sort := range append([]string{""}, sorts...) {
			for _, q := range []string{"", l.common, l.rare} {
				emails := []string{""}
				if l.email != "" {
					emails = append(emails, l.email)
				}
				for _, email := range emails {
					v := url.Values{}
					for name, val := range map[string]string{"sort": sort, "q": q, "email": email} {
						if val != "" {
							v.Set(name, val)
						}
					}
					requests = append(requests, l.path+"?"+v.Encode())
				}
			}
		}
		requests = append(requests, l.path+"?updated_since=2000-01-01T00:00:00Z")
	}

	explained := map[string]bool{}
	names := map[string]bool{}
	for _, path := range requests {
		sep := "&"
		if strings.HasSuffix(path, "?") {
			sep = ""
		}
		rec.take()
		first := b.call(t, "GET", fmt.Sprintf("%s%slimit=%d", path, sep, limit), "acme", "").requireStatus(t, 200)
		items := first.body["items"].([]any)
		rare := strings.Contains(strings.ToLower(path), "q=rare")
		switch {
		case strings.Contains(path, "email=") && rare:
			require.Empty(t, items, path)
		case strings.Contains(path, "email="):
			require.Len(t, items, 1, path)
		case rare:
			require.Len(t, items, 5, "%s: the rare names", path)
		default:
			require.Len(t, items, limit, path)
			next, _ := first.body["next_cursor"].(string)
			require.NotEmpty(t, next, path)
			b.call(t, "GET", fmt.Sprintf("%s%slimit=%d&cursor=%s", path, sep, limit, url.QueryEscape(next)), "acme", "").requireStatus(t, 200)
		}
		for _, st := range rec.take() {
			name, _, _ := strings.Cut(strings.TrimPrefix(st.sql, "-- name: "), " ")
			body := strings.TrimSpace(st.sql[strings.Index(st.sql, "\n"):])
			if !strings.Contains(name, "List") && !strings.Contains(name, "Search") {
				continue // the credential's and the tenant's look-ups: not lists
			}
			require.True(t, strings.HasPrefix(body, "SELECT") || strings.HasPrefix(body, "WITH"), "a list reads: %s", name)
			lits := make([]string, len(st.args))
			for i, a := range st.args {
				lits[i] = sqlLiteral(t, a)
			}
			key := name + "(" + strings.Join(lits, ", ") + ")"
			if explained[key] {
				continue
			}
			explained[key], names[name] = true, true
			checkPlan(t, b, path, key, st.sql, lits, limit+1)
		}
	}
	for _, want := range []string{"ProductList", "ProductListSorted", "ProductSearch", "ProductListUpdated",
		"UserList", "UserListSorted", "UserListByEmail", "UserListUpdated"} {
		require.True(t, names[want], "the documented lists ran %s", want)
	}
	t.Logf("%d requests, %d statements explained", len(requests), len(explained))
}

// checkPlan explains sql's generic plan with the arguments lits as
// rowfence_app in b's tenant acme, executed, and asserts it is an index walk
// (TestListPlansAreIndexWalks); fetch is the rows a page reads.
func checkPlan(t *testing.T, b *testBundle, path, key, sql string, lits []string, fetch int) {
	t.Helper()
	ctx := context.Background()
	tx, err := b.app.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true), set_config('app.role', 'admin', true),
		set_config('plan_cache_mode', 'force_generic_plan', true)`, b.acme.String())
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "PREPARE plan_check AS "+sql)
	require.NoError(t, err, key)
	defer func() { _, _ = tx.Exec(ctx, "DEALLOCATE plan_check") }()
	var raw []byte
	require.NoError(t, tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE plan_check("+strings.Join(lits, ", ")+")").Scan(&raw), key)
	var out []struct {
		Plan planNode `json:"Plan"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	root := &out[0].Plan
	tenantTables := map[string]bool{"products": true, "users": true}
	// At most 50 pages walked (ProductSearch's walk, the rare count) and
	// the row past them (its probe), plus slack for one more page.
	bound := 52.0 * float64(fetch)
	// A sort may read a CTE that is bounded: a page or 50 pages (a Limit
	// at its top) or the rare ?q= range. Every CTE's own nodes are checked
	// like the rest.
	rangeScan := func(m *planNode) bool { return strings.HasSuffix(m.Index, "_name_lower_idx") }
	boundedCTE := map[string]bool{}
	walkPlan(root, nil, func(n, _ *planNode) {
		if name, ok := strings.CutPrefix(n.SubplanName, "CTE "); ok {
			boundedCTE[name] = n.NodeType == "Limit" || anyBelow(n, rangeScan)
		}
	})
	sortable := func(m *planNode) bool { return rangeScan(m) || m.NodeType == "CTE Scan" && boundedCTE[m.CTEName] }
	indexed, problem := false, ""
	walkPlan(root, nil, func(n, _ *planNode) {
		what := fmt.Sprintf("%s %s %s", n.NodeType, n.Relation, n.Index)
		handled := n.ActualRows*n.ActualLoops + n.RemovedFilter + n.RemovedRecheck
		switch {
		case problem != "":
		case n.NodeType == "Seq Scan":
			problem = "a sequential scan: " + what
		case strings.Contains(n.NodeType, "Gather"):
			problem = "a parallel plan: " + what
		case (n.NodeType == "Sort" || n.NodeType == "Incremental Sort") && !anyBelow(n, sortable):
			problem = "a sort of anything but a page, 50 pages or the rare ?q= range: " + what
		case handled > bound:
			problem = fmt.Sprintf("%s handled %v rows, more than 50 pages of %d", what, handled, fetch)
		}
		if strings.Contains(n.NodeType, "Index") && tenantTables[n.Relation] {
			indexed = true
		}
	})
	if problem == "" && !indexed {
		problem = "no index scan of a tenant table"
	}
	if problem != "" {
		// Every failing statement is reported, the plan with the first.
		if !reported {
			problem += "\n" + string(raw)
			reported = true
		}
		t.Errorf("%s\n  %s:\n  %s", path, key, problem)
	}
}

// reported says a failing plan was printed in full (one is enough).
var reported bool
