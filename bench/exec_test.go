package main

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/pgserver"
)

// The execution-level comparison as Go benchmarks (the same op functions the
// bench program runs): go test ./bench -run x -bench Exec. They use the bench
// cluster (.benchdata, or BENCH_DATABASE_URL) and its 1M-row dataset.

var (
	benchOnce sync.Once
	benchPool *pgxpool.Pool
	benchSet  = dataset{name: "m", tenants: 1000, perTenant: 1000, twin: true}
	benchErr  error
)

func benchSetup(b *testing.B) *pgxpool.Pool {
	b.Helper()
	benchOnce.Do(func() {
		ctx := context.Background()
		if err := os.Chdir(".."); err != nil { // .benchdata lives at the project root
			benchErr = err
			return
		}
		srv, err := pgserver.Start(ctx, pgserver.Options{EnvURL: os.Getenv("BENCH_DATABASE_URL"), DataDir: ".benchdata"})
		if err != nil {
			benchErr = err
			return
		}
		e := env{serverURL: srv.URL, appPassword: randomHex(16)}
		if benchErr = e.ensure(ctx, benchSet, func(string, ...any) {}); benchErr != nil {
			return
		}
		if benchErr = setAppPassword(ctx, srv.URL, e.appPassword); benchErr != nil {
			return
		}
		benchPool, benchErr = e.appPool(ctx, benchSet, 8)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchPool
}

func runParallel(b *testing.B, fn op) {
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		ctx := context.Background()
		for pb.Next() {
			if err := fn(ctx, rng); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkExec(b *testing.B) {
	pool := benchSetup(b)
	b.Run("list/scoped", func(b *testing.B) { runParallel(b, scopedList(pool, benchSet)) })
	b.Run("list/bare", func(b *testing.B) { runParallel(b, bareList(pool, benchSet)) })
	b.Run("get/scoped", func(b *testing.B) { runParallel(b, scopedGet(pool, benchSet)) })
	b.Run("get/bare", func(b *testing.B) { runParallel(b, bareGet(pool, benchSet)) })
	for _, t := range []struct {
		name string
		pick pick
	}{{"search", anyTenant(benchSet)}, {"search-large", largeTenant(benchSet)}} {
		b.Run(t.name+"/scoped", func(b *testing.B) { runParallel(b, scopedSearch(pool, t.pick)) })
		b.Run(t.name+"/bare", func(b *testing.B) { runParallel(b, bareSearch(pool, t.pick)) })
		b.Run(t.name+"/naive", func(b *testing.B) { runParallel(b, naiveSearch(pool, t.pick)) })
	}
}
