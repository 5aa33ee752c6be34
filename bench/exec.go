package main

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
)

// tenantID and productID are the ids sql/data.sql gives (md5(...)::uuid).
func tenantID(n int) uuid.UUID {
	return uuid.UUID(md5.Sum([]byte("t" + strconv.Itoa(n))))
}

func productID(t, p int) uuid.UUID {
	return uuid.UUID(md5.Sum([]byte("t" + strconv.Itoa(t) + ":" + strconv.Itoa(p))))
}

// benchKey is tenant n's admin API key as sql/data.sql stores it.
func benchKey(n int) string {
	k := auth.APIKey{TenantID: tenantID(n), ID: uuid.UUID(md5.Sum([]byte("k" + strconv.Itoa(n)))),
		Secret: sha256.Sum256([]byte("rowfence-bench-key-" + strconv.Itoa(n)))}
	return k.String()
}

// scope is what a request of tenant n runs as: its admin key's scope.
func scope(n int) db.Scope {
	return db.Scope{TenantID: tenantID(n), Role: dbtype.RoleAdmin, StatementTimeout: statementTimeout}
}

var firstPage = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)

// statementTimeout is serve's default, so the scoped path sends what a
// request sends.
const statementTimeout = 5 * time.Second

// op is one unit of benchmarked work.
type op func(ctx context.Context, rng *rand.Rand) error

// The execution level: rowfence's scoped path (db.One: set_config and the
// sqlc statement in one pipeline, RLS filtering) against the bare statement
// with a hand-written filter on the twin table, same pool, same rows.

const bareListSQL = `SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
WHERE tenant = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4`

const bareGetSQL = `SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
WHERE tenant = $1 AND id = $2`

func scopedList(pool *pgxpool.Pool, d dataset) op {
	return func(ctx context.Context, rng *rand.Rand) error {
		s := scope(1 + rng.IntN(d.tenants))
		rows, err := db.One(ctx, pool, s, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
			return q.ProductList(ctx, dbsqlc.ProductListParams{AfterCreatedAt: firstPage, RowLimit: 21})
		})
		return expectRows(len(rows), err, 21)
	}
}

func bareList(pool *pgxpool.Pool, d dataset) op {
	return func(ctx context.Context, rng *rand.Rand) error {
		rows, err := pool.Query(ctx, bareListSQL, tenantID(1+rng.IntN(d.tenants)), firstPage, uuid.Nil, 21)
		if err != nil {
			return err
		}
		defer rows.Close()
		items := []dbsqlc.Product{}
		for rows.Next() {
			var i dbsqlc.Product
			if err := rows.Scan(&i.TenantID, &i.ID, &i.Name, &i.Description, &i.Price, &i.CreatedAt, &i.UpdatedAt, &i.NameLower); err != nil {
				return err
			}
			items = append(items, i)
		}
		return expectRows(len(items), rows.Err(), 21)
	}
}

// The search: ?q= on a tenant's products. scoped is rowfence's ProductSearch
// (a bounded walk in created_at order, or the name_lower range when matches
// are rare; queries/products.sql); bare is the same statement on the twin,
// which has the same indexes, filtered by hand; naive is what a developer
// without RLS might write instead (ILIKE, which no B-tree answers, so it
// walks the (tenant, created_at) index until it has a page). The budget
// compares scoped with bare; naive is context (bench/RESULTS.md).
const (
	searchPrefix  = "product 1"
	bareSearchSQL = `WITH walk AS (
    SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
    WHERE tenant = $1 AND (created_at, id) > ($3::timestamptz, $4::uuid)
    ORDER BY created_at, id
    LIMIT 50 * least($5::int, 10000)
), hits AS MATERIALIZED (
    SELECT * FROM walk
    WHERE starts_with(name_lower, lower($2::text))
    ORDER BY created_at, id
    LIMIT $5::int
), beyond AS (
    SELECT 1 FROM bench_products
    WHERE tenant = $1 AND (created_at, id) > ($3::timestamptz, $4::uuid)
    ORDER BY created_at, id
    OFFSET 50 * least($5::int, 10000)
), rare AS MATERIALIZED (
    SELECT (SELECT count(*) FROM hits) < $5::int AND EXISTS (SELECT 1 FROM beyond) AS yes
)
SELECT * FROM hits WHERE NOT (SELECT yes FROM rare)
UNION ALL
(SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
 WHERE (SELECT yes FROM rare)
   AND tenant = $1
   AND name_lower COLLATE "C" >= lower($2::text) COLLATE "C"
   AND name_lower COLLATE "C" < (lower($2::text) || chr(1114111)) COLLATE "C"
   AND starts_with(name_lower, lower($2::text))
   AND (created_at, id) > ($3::timestamptz, $4::uuid)
 ORDER BY created_at, id
 LIMIT $5::int)
ORDER BY created_at, id
LIMIT $5::int`
	naiveSearchSQL = `SELECT tenant, id, name, description, price, created_at, updated_at, name_lower FROM bench_products
WHERE tenant = $1 AND name ILIKE $2 AND (created_at, id) > ($3::timestamptz, $4::uuid) ORDER BY created_at, id LIMIT $5`
)

// pick chooses a search's tenant: one of the dataset's equal tenants, or
// its large one (sql/large.sql: 100,000 products).
type pick func(rng *rand.Rand) int

func anyTenant(d dataset) pick { return func(rng *rand.Rand) int { return 1 + rng.IntN(d.tenants) } }

func largeTenant(d dataset) pick { return func(*rand.Rand) int { return d.tenants + 1 } }

func scopedSearch(pool *pgxpool.Pool, tenant pick) op {
	return func(ctx context.Context, rng *rand.Rand) error {
		s := scope(tenant(rng))
		rows, err := db.One(ctx, pool, s, func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
			rows, err := q.ProductSearch(ctx, dbsqlc.ProductSearchParams{Prefix: searchPrefix, AfterCreatedAt: firstPage, RowLimit: 21})
			return db.ProductsFromSearch(rows), err
		})
		return expectRows(len(rows), err, 21)
	}
}

func bareSearch(pool *pgxpool.Pool, tenant pick) op {
	return twinSearch(pool, tenant, bareSearchSQL, searchPrefix)
}

func naiveSearch(pool *pgxpool.Pool, tenant pick) op {
	return twinSearch(pool, tenant, naiveSearchSQL, searchPrefix+"%")
}

func twinSearch(pool *pgxpool.Pool, tenant pick, sql, pattern string) op {
	return func(ctx context.Context, rng *rand.Rand) error {
		rows, err := pool.Query(ctx, sql, tenantID(tenant(rng)), pattern, firstPage, uuid.Nil, 21)
		if err != nil {
			return err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var i dbsqlc.Product
			if err := rows.Scan(&i.TenantID, &i.ID, &i.Name, &i.Description, &i.Price, &i.CreatedAt, &i.UpdatedAt, &i.NameLower); err != nil {
				return err
			}
			n++
		}
		return expectRows(n, rows.Err(), 21)
	}
}

func scopedGet(pool *pgxpool.Pool, d dataset) op {
	return func(ctx context.Context, rng *rand.Rand) error {
		t := 1 + rng.IntN(d.tenants)
		id := productID(t, 1+rng.IntN(d.perTenant))
		_, err := db.One(ctx, pool, scope(t), func(q *dbsqlc.Queries) (dbsqlc.Product, error) {
			return q.ProductGet(ctx, id)
		})
		return err
	}
}

func bareGet(pool *pgxpool.Pool, d dataset) op {
	return func(ctx context.Context, rng *rand.Rand) error {
		t := 1 + rng.IntN(d.tenants)
		var i dbsqlc.Product
		return pool.QueryRow(ctx, bareGetSQL, tenantID(t), productID(t, 1+rng.IntN(d.perTenant))).Scan(
			&i.TenantID, &i.ID, &i.Name, &i.Description, &i.Price, &i.CreatedAt, &i.UpdatedAt, &i.NameLower)
	}
}

func expectRows(got int, err error, want int) error {
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("got %d rows, want %d", got, want)
	}
	return nil
}

// measure runs fn from workers goroutines for dur and reports throughput and
// latency percentiles. Any error fails the measurement.
func measure(ctx context.Context, label string, workers int, dur time.Duration, fn op) (result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		all     []time.Duration
		firstEr error
		wg      sync.WaitGroup
	)
	deadline := time.Now().Add(dur)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			lat := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := fn(ctx, rng); err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstEr != nil {
		return result{}, fmt.Errorf("%s: %w", label, firstEr)
	}
	r := summarize(label, all, elapsed)
	r.rounds = []float64{r.ops}
	return r, nil
}

func summarize(label string, lat []time.Duration, elapsed time.Duration) result {
	p50, p99 := percentiles(lat)
	return result{label: label, ops: float64(len(lat)) / elapsed.Seconds(), p50: p50, p99: p99, lat: lat, elapsed: elapsed}
}

// interleave measures several ops side by side: rounds of each in turn, so
// that drift on a shared machine hits all of them alike; the rounds' latencies
// are pooled.
func interleave(ctx context.Context, rounds, workers int, dur time.Duration, labels []string, ops map[string]op) (map[string]result, error) {
	out := map[string]result{}
	for range rounds {
		for _, label := range labels {
			r, err := measure(ctx, label, workers, dur, ops[label])
			if err != nil {
				return nil, err
			}
			out[label] = merge(out[label], r)
		}
	}
	return out, nil
}

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return at(0.50), at(0.99)
}

// merge pools two rounds of one measurement: latencies pooled where both have
// them (else the rounds' percentiles averaged), throughput weighted by time.
func merge(prev, r result) result {
	if prev.elapsed == 0 {
		return r
	}
	total := prev.elapsed + r.elapsed
	ops := (prev.ops*prev.elapsed.Seconds() + r.ops*r.elapsed.Seconds()) / total.Seconds()
	rounds := append(append([]float64{}, prev.rounds...), r.rounds...)
	if len(prev.lat) > 0 && len(r.lat) > 0 {
		m := summarize(r.label, append(prev.lat, r.lat...), total)
		m.ops = ops
		m.rounds = rounds
		return m
	}
	w := prev.elapsed.Seconds() / total.Seconds()
	avg := func(a, b time.Duration) time.Duration { return time.Duration(w*float64(a) + (1-w)*float64(b)) }
	return result{label: r.label, ops: ops, p50: avg(prev.p50, r.p50), p99: avg(prev.p99, r.p99), elapsed: total, rounds: rounds}
}
