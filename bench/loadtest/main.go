// Command loadtest (make loadtest) runs rowfence under mixed load from many
// tenants at once, reads and writes, for a bounded time on loopback, and
// checks every answer: a row of another tenant, anywhere, is a leak. It
// reports throughput, latency, statuses, errors and foreign rows, and exits
// 1 on any error or leak.
//
// It starts its own PostgreSQL (LOADTEST_DATABASE_URL, Docker, or a
// temporary local cluster), migrates it, onboards the tenants, builds and
// starts `rowfence serve`, and stops everything afterwards.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/pgserver"
)

func main() {
	var cfg loadConfig
	flag.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to load")
	flag.IntVar(&cfg.Workers, "workers", 16, "concurrent clients")
	flag.Float64Var(&cfg.WriteRatio, "writes", 0.3, "share of requests that create a product (0..0.6)")
	tenants := flag.Int("tenants", 20, "tenants to onboard and play")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	flag.Parse()
	if cfg.Duration <= 0 || cfg.Workers < 1 || *tenants < 2 || cfg.WriteRatio < 0 || cfg.WriteRatio > 0.6 {
		fmt.Fprintln(os.Stderr, "loadtest: need -duration > 0, -workers >= 1, -tenants >= 2, -writes in 0..0.6")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, cfg, *tenants)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Printf("%d requests in %.1fs: %.0f/s, p50 %.2f ms, p99 %.2f ms\n", rep.Requests, rep.Seconds, rep.PerSecond, rep.P50ms, rep.P99ms)
		fmt.Printf("ops %v\nstatuses %v\nerrors %d %v\nforeign rows seen: %d %v\n", rep.Ops, rep.Statuses, rep.Errors, rep.ErrorSample, rep.ForeignRows, rep.LeakSample)
	}
	if rep.Errors > 0 || rep.ForeignRows > 0 {
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg loadConfig, n int) (report, error) {
	srv, err := pgserver.Start(ctx, pgserver.Options{EnvURL: os.Getenv("LOADTEST_DATABASE_URL")})
	if err != nil {
		return report{}, err
	}
	defer srv.Stop(context.Background())
	m, err := migrate.New(srv.URL, nil)
	if err != nil {
		return report{}, err
	}
	_, err = m.Up(ctx)
	m.Close()
	if err != nil {
		return report{}, fmt.Errorf("migrate: %w", err)
	}
	password := randomHex(16)
	conn, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		return report{}, err
	}
	err = db.SetAppPassword(ctx, conn, password)
	conn.Close(context.Background())
	if err != nil {
		return report{}, err
	}

	poolCfg, err := pgxpool.ParseConfig(srv.URL)
	if err != nil {
		return report{}, err
	}
	db.AsOwner(poolCfg)
	admin, err := db.Open(ctx, poolCfg)
	if err != nil {
		return report{}, err
	}
	tag := randomHex(3)
	for i := range n {
		slug := fmt.Sprintf("load-%s-%d", tag, i)
		o, err := lifecycle.Onboard(ctx, admin, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "load@" + slug + ".example"})
		if err != nil {
			admin.Close()
			return report{}, fmt.Errorf("onboard %s: %w", slug, err)
		}
		cfg.Tenants = append(cfg.Tenants, tenant{ID: o.Tenant.ID.String(), Slug: slug, Key: o.Key})
	}
	admin.Close()

	dir, err := os.MkdirTemp("", "rfload-")
	if err != nil {
		return report{}, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "rowfence")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/rowfence/rowfence/cmd/rowfence").CombinedOutput(); err != nil {
		return report{}, fmt.Errorf("build rowfence: %w\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return report{}, err
	}
	addr := l.Addr().String()
	l.Close()
	serve := exec.Command(bin, "serve")
	// The load is the test, not a noisy neighbour: limits would turn it into 429s.
	serve.Env = append(os.Environ(), "DATABASE_URL="+srv.URL, "APP_DATABASE_PASSWORD="+password, "ADDR="+addr,
		"RATE_LIMIT=0", "TENANT_CONCURRENCY=0", "LOG_FORMAT=text")
	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return report{}, err
	}
	serve.Stderr = logFile
	if err := serve.Start(); err != nil {
		return report{}, err
	}
	defer func() {
		_ = serve.Process.Signal(os.Interrupt)
		_ = serve.Wait()
	}()
	cfg.Base = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(cfg.Base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			tail, _ := os.ReadFile(logFile.Name())
			return report{}, fmt.Errorf("rowfence serve did not become ready:\n%s", tail)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "loading %s: %d tenants, %d workers, %s, %.0f%% writes\n", cfg.Base, n, cfg.Workers, cfg.Duration, cfg.WriteRatio*100)
	return runLoad(ctx, cfg), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
