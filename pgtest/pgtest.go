// Package pgtest gives each test its own migrated PostgreSQL database.
//
// A package's TestMain calls Main, which finds or starts a server (pgserver:
// TEST_DATABASE_URL, then Docker, then a private local cluster) and migrates a
// template database once. New then creates a database from that template for
// one test (CREATE DATABASE … TEMPLATE), which takes milliseconds, and drops
// it when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/pgserver"
)

var (
	server           *pgserver.Server
	template         string
	appPassword      string
	platformPassword string
	counter          atomic.Int64
)

// Main runs m against a server and exits.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	server, err = pgserver.Start(ctx, pgserver.Options{EnvURL: os.Getenv("TEST_DATABASE_URL"), Log: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	defer server.Stop(context.Background())
	if err := prepareTemplate(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: prepare template database:", err)
		return 1
	}
	defer dropDatabase(template)
	return m.Run()
}

func prepareTemplate(ctx context.Context) error {
	template = fmt.Sprintf("rf_tmpl_%d_%s", os.Getpid(), randomHex(4))
	if err := adminExec(ctx, "CREATE DATABASE "+pgx.Identifier{template}.Sanitize()); err != nil {
		return err
	}
	m, err := migrate.New(URL(server.URL, template), nil)
	if err != nil {
		return err
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		return err
	}
	// A server we started is private to this run, so the app role may get a
	// password; on a given server it comes from TEST_APP_DATABASE_PASSWORD.
	// The platform role gets the same one (TEST_PLATFORM_DATABASE_PASSWORD).
	appPassword = os.Getenv("TEST_APP_DATABASE_PASSWORD")
	platformPassword = os.Getenv("TEST_PLATFORM_DATABASE_PASSWORD")
	if server.Source != "env" {
		appPassword = randomHex(16)
		platformPassword = appPassword
		conn, err := pgx.Connect(ctx, server.URL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if err := db.SetAppPassword(ctx, conn, appPassword); err != nil {
			return err
		}
		return db.SetRolePassword(ctx, conn, db.PlatformRole, platformPassword)
	}
	return nil
}

// DB is one test's database.
type DB struct {
	Name string
	// AdminURL connects as the migrating role (a superuser on our own servers).
	AdminURL string
	// AppURL connects as rowfence_app, the role that serves requests.
	AppURL string
	// AppPassword is rowfence_app's password in AppURL ("" where trusted).
	AppPassword string
	// PlatformURL connects as rowfence_platform (platform administration).
	PlatformURL string
}

// New creates a migrated database for t and drops it when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	if server == nil {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main")
	}
	name := fmt.Sprintf("rf_t_%d_%d", os.Getpid(), counter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stmt := fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize())
	if err := adminExec(ctx, stmt); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
		}
	})
	// A database's own privileges are not copied from its template: take
	// TEMPORARY back as migration 00013 did on the template.
	if err := adminExec(ctx, "REVOKE TEMPORARY ON DATABASE "+pgx.Identifier{name}.Sanitize()+" FROM PUBLIC"); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	adminURL := URL(server.URL, name)
	u, _ := url.Parse(adminURL)
	if appPassword != "" {
		u.User = url.UserPassword(db.AppRole, appPassword)
	} else {
		u.User = url.User(db.AppRole)
	}
	p, _ := url.Parse(adminURL)
	if platformPassword != "" {
		p.User = url.UserPassword(db.PlatformRole, platformPassword)
	} else {
		p.User = url.User(db.PlatformRole)
	}
	return &DB{Name: name, AdminURL: adminURL, AppURL: u.String(), AppPassword: appPassword, PlatformURL: p.String()}
}

// Empty creates an empty database for t (from template1, not the migrated
// template: a database for `rowfence migrate` to bring up, such as a new
// cell), drops it when t ends, and returns its URL for the server's
// privileged role.
func Empty(t testing.TB) string {
	t.Helper()
	if server == nil {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main")
	}
	name := fmt.Sprintf("rf_e_%d_%d", os.Getpid(), counter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
		}
	})
	return URL(server.URL, name)
}

// PlatformPool opens a pool as rowfence_platform.
func (d *DB) PlatformPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return openPool(t, d.PlatformURL, 2)
}

// AdminPool opens a pool as the migrating role, closed when t ends.
func (d *DB) AdminPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return openPool(t, d.AdminURL, 0)
}

// OwnerPool opens a pool whose connections act as rowfence_owner, as the
// operator tools do (db.AsOwner): RLS binds it, unlike the superuser.
func (d *DB) OwnerPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(d.AdminURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	db.AsOwner(cfg)
	pool, err := db.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// AppPool opens a pool as the app role with at most maxConns connections
// (0: pgxpool's default), closed when t ends.
func (d *DB) AppPool(t testing.TB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	return openPool(t, d.AppURL, maxConns)
}

func openPool(t testing.TB, connString string, maxConns int32) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := db.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// URL returns connString with its database replaced by name.
func URL(connString, name string) string {
	u, err := url.Parse(connString)
	if err != nil {
		panic(fmt.Sprintf("pgtest: server connection strings must be URLs: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}

func adminExec(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, server.URL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

func dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return adminExec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Source says where the server came from: "env" (TEST_DATABASE_URL),
// "docker" or "local".
func Source() string {
	if server == nil {
		return ""
	}
	return server.Source
}
