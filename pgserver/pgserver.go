// Package pgserver finds or starts the PostgreSQL server that `make run` and
// the tests use, in the order docs/DESIGN.md fixes ("PostgreSQL for tests and
// make run"):
//
//  1. a connection string from the environment (TEST_DATABASE_URL; DATABASE_URL
//     only when `rowfence dev` is told to seed an existing database);
//  2. a Docker daemon that answers: testcontainers-go starts a postgres container;
//  3. local server binaries: a private cluster (initdb) on a free port and a
//     private socket directory, as the postgres system user when run as root;
//  4. none of these: one error that says how to get one.
//
// Only tests, benchmarks and the dev build (cmd/rowfence/dev.go, -tags dev)
// may import it: cmd/rowfence's TestServingCodeLinksNoTestOrDevMachinery
// fails when the serving binary or other non-test code does.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL server and a superuser (or otherwise
// privileged) connection string for it.
type Server struct {
	// URL connects as a role that may create roles and databases.
	URL string
	// Source says which of the options was used: "env", "docker" or "local".
	Source string

	stop   func(context.Context) error
	bounce func(context.Context, func()) error
}

// ErrCannotBounce: only a server Start started locally can be bounced.
var ErrCannotBounce = errors.New("pgserver: only a local server that Start started can be bounced")

// Bounce crashes the server (an immediate shutdown: every connection cut, no
// checkpoint), runs whileDown, and starts it again on the same data and port,
// recovering from its WAL as after a crash. For fault-injection tests.
func (s *Server) Bounce(ctx context.Context, whileDown func()) error {
	if s == nil || s.bounce == nil {
		return ErrCannotBounce
	}
	return s.bounce(ctx, whileDown)
}

// Stop stops a server that Start started; it leaves a server it only found alone.
func (s *Server) Stop(ctx context.Context) error {
	if s == nil || s.stop == nil {
		return nil
	}
	return s.stop(ctx)
}

// Options say where to look and what to keep.
type Options struct {
	// EnvURL is the connection string from the environment, if any.
	EnvURL string
	// DataDir keeps a local cluster between runs; empty means a temporary
	// cluster that Stop removes.
	DataDir string
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
	// Settings are extra server settings ("name=value") for a local cluster
	// that Start starts, such as shared_buffers for benchmarks.
	Settings []string
	// OwnClusterOnly refuses, with ErrForeignCluster, a DataDir that holds
	// anything but a cluster Start created there (Start marks those with
	// MarkerFile). `rowfence dev` sets it: it writes public demo keys, and
	// only into a cluster of its own.
	OwnClusterOnly bool
}

// MarkerFile is the file Start writes into a kept cluster's data directory
// after initdb, so that it can tell its own clusters from others later.
const MarkerFile = "rowfence-pgserver"

// ErrForeignCluster: OwnClusterOnly was set and DataDir holds something Start
// did not create.
var ErrForeignCluster = errors.New("the data directory holds something rowfence did not create (no " + MarkerFile + " file)")

// ErrNoServer is returned when no option could provide a server.
var ErrNoServer = errors.New(`no PostgreSQL server available: set DATABASE_URL (or TEST_DATABASE_URL for tests) to a server's connection string, start a Docker daemon, or install the PostgreSQL server binaries (Debian: apt-get install -y postgresql)`)

// Start finds or starts a server.
func Start(ctx context.Context, opts Options) (*Server, error) {
	log := orDiscard(opts.Log)
	if opts.EnvURL != "" {
		if err := waitReady(ctx, opts.EnvURL, 10*time.Second); err != nil {
			return nil, fmt.Errorf("connect to the configured server %s: %w", Redact(opts.EnvURL), err)
		}
		log.Info("using the configured PostgreSQL server", "url", Redact(opts.EnvURL))
		return &Server{URL: opts.EnvURL, Source: "env"}, nil
	}
	if dockerAnswers(ctx) {
		s, err := startContainer(ctx, log)
		if err == nil {
			return s, nil
		}
		log.Warn("Docker answered but the postgres container did not start; trying local binaries", "err", err)
	}
	bindir, err := findBinDir()
	if err != nil {
		return nil, ErrNoServer
	}
	return startLocal(ctx, bindir, opts.DataDir, opts.OwnClusterOnly, log, opts.Settings...)
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return log
}

// waitReady polls until a connection succeeds or the timeout passes.
func waitReady(ctx context.Context, connString string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		conn, err := pgx.Connect(ctx, connString)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(context.Background())
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return last
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Redact hides the password of a connection string for logs and messages.
func Redact(connString string) string {
	u, err := url.Parse(connString)
	if err != nil || u.User == nil {
		return connString
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
