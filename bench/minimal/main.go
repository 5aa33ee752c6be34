// Command minimal serves the HTTP benchmark's reference server (package
// bench/minimal/reference) as its own process, for bench's HTTP level: never
// deploy it.
//
// Usage: APP_DATABASE_URL=postgres://… ADDR=127.0.0.1:8081 minimal
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/bench/minimal/reference"
	"github.com/rowfence/rowfence/db"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "minimal:", err)
		os.Exit(1)
	}
}

func run() error {
	// As serve has them: its garbage collection target and its pool (db.Open
	// registers the binary UUID codec).
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(200)
	}
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(os.Getenv("APP_DATABASE_URL"))
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	return http.ListenAndServe(os.Getenv("ADDR"), reference.Handler(pool))
}
