package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/bench/minimal/reference"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/metrics"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

// BenchmarkOverhead drives the API handler in process, against a real
// PostgreSQL, configured as `rowfence serve` runs by default (caches,
// limiter, failed-credential throttle, metrics with the pool's tracer, the
// JSON access log written by zerolog), beside "minimal": bench/minimal's handler, package
// bench/minimal/reference (the same db.One and rows, the tenant read from the
// key unverified, nothing else).
// No network between client and handler, so what separates the two is
// what rowfence adds per request: ns/op, allocs/op and cpu-ns/op (the
// process's user and system CPU per request: the Go side, pgx included,
// not PostgreSQL's). Profile it with
//
//	go test ./httpapi -run '^$' -bench Overhead -benchmem -cpuprofile cpu.out
//	go tool pprof -top httpapi.test cpu.out
func BenchmarkOverhead(b *testing.B) {
	const tenants, perTenant = 8, 50
	tdb := pgtest.New(b)
	admin := tdb.AdminPool(b)
	ctx := context.Background()
	type benchTenant struct {
		slug, key string
		products  []uuid.UUID
	}
	var ts []benchTenant
	for i := range tenants {
		slug := fmt.Sprintf("bench-%d", i)
		o, err := lifecycle.Onboard(ctx, admin, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "admin@" + slug + ".example"})
		if err != nil {
			b.Fatal(err)
		}
		rows, err := admin.Query(ctx, `INSERT INTO products (tenant_id, name, description, price)
			SELECT $1, 'product ' || p, 'a product for the benchmark', p FROM generate_series(1, $2::int) AS p RETURNING id`,
			o.Tenant.ID, perTenant)
		if err != nil {
			b.Fatal(err)
		}
		t := benchTenant{slug: slug, key: o.Key}
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				b.Fatal(err)
			}
			t.products = append(t.products, id)
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		ts = append(ts, t)
	}

	// As serve builds it (cmd/rowfence/serve.go), with the defaults, and
	// limits bench/http.go gives it: running, never reached. Its pool as
	// serve's: the metrics' query tracer and the reconnection guard's
	// connect tracer on every connection. minimal has a pool of its own, as
	// bench/minimal's main opens it (db.Open alone), so that neither
	// tracer is counted on its side.
	m := metrics.New(0)
	openPool := func(configure func(*pgxpool.Config)) *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(tdb.AppURL)
		if err != nil {
			b.Fatal(err)
		}
		cfg.MaxConns = 8
		configure(cfg)
		pool, err := db.Open(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		return pool
	}
	pool := openPool(func(cfg *pgxpool.Config) {
		cfg.ConnConfig.Tracer = m.Tracer()
		db.GuardConnects(cfg, "app", slog.New(slog.NewJSONHandler(io.Discard, nil)))
	})
	minimalPool := openPool(func(*pgxpool.Config) {})
	m.WatchPool(pool)
	resolver := tenancy.NewResolver(pool, tenancy.DefaultTTL)
	authn, err := auth.New(auth.Config{Pool: pool, CacheTTL: auth.DefaultCacheTTL, Tenants: resolver, StatementTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	failures := ratelimit.NewFailures(ratelimit.DefaultFailureLimit, ratelimit.DefaultFailureWindow)
	m.WatchCaches(append(resolver.Caches(), authn.Caches()...)...)
	m.WatchCaches(failures)
	product, err := httpapi.NewServer(httpapi.Config{
		Pool: pool, Resolver: resolver, Auth: authn,
		Logger:           slog.New(slog.NewJSONHandler(io.Discard, nil)),
		AccessLog:        io.Discard, // serve's with LOG_FORMAT=json
		CursorKey:        []byte(strings.Repeat("b", 32)),
		StatementTimeout: 5 * time.Second, RequestTimeout: 10 * time.Second, AcquireTimeout: 2 * time.Second,
		Limiter:      ratelimit.New(ratelimit.Defaults{RatePerSecond: 1e6, Burst: 1e6, MaxConcurrency: 10000}),
		Metrics:      m,
		AuthFailures: failures,
	})
	if err != nil {
		b.Fatal(err)
	}
	handlers := map[string]http.Handler{"rowfence": product, "minimal": reference.Handler(minimalPool)}

	// net/http gives every request a context it cancels when the
	// connection goes; pgx watches such a context during a query.
	reqCtx, cancel := context.WithCancel(ctx)
	b.Cleanup(cancel)
	request := func(path string, t benchTenant) *http.Request {
		r, err := http.NewRequestWithContext(reqCtx, "GET", "http://127.0.0.1:8080"+path, nil)
		if err != nil {
			b.Fatal(err)
		}
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("User-Agent", "wrk")
		r.Header.Set(httpapi.TenantHeader, t.slug)
		r.Header.Set("Authorization", "Bearer "+t.key)
		return r
	}
	var lists, gets []*http.Request
	for _, t := range ts {
		lists = append(lists, request("/v1/products", t))
		for _, p := range t.products[:8] {
			gets = append(gets, request("/v1/products/"+p.String(), t))
		}
	}
	for _, op := range []struct {
		name string
		reqs []*http.Request
	}{{"list", lists}, {"get", gets}} {
		for _, side := range []string{"rowfence", "minimal"} {
			h := handlers[side]
			b.Run(op.name+"/"+side, func(b *testing.B) {
				w := &discardWriter{header: http.Header{}}
				for _, r := range op.reqs { // warm: caches filled, statements prepared
					w.reset()
					h.ServeHTTP(w, r)
					if w.status != http.StatusOK {
						b.Fatalf("%s %s: status %d", side, r.URL.Path, w.status)
					}
				}
				b.ReportAllocs()
				cpu := cpuTime()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					w.reset()
					h.ServeHTTP(w, op.reqs[i%len(op.reqs)])
					if w.status != http.StatusOK {
						b.Fatalf("status %d", w.status)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
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
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}
func (w *discardWriter) reset() {
	clear(w.header)
	w.status = 0
}
