// Package cells places tenants on several PostgreSQL databases ("cells").
//
// A cell is a PostgreSQL database holding rowfence's whole schema, roles
// and policies (sql/migrations); every tenant lives in exactly one. The
// default cell is the database DATABASE_URL names; it also holds the
// catalog: the `cells` table (each cell's name and labels) and each tenant's
// placement (tenants.cell), both in sql/migrations/00021_cells.sql. The
// other cells' connection strings are configuration (CELLS: name=url pairs),
// never stored in a database. Tenant resolution reads the placement from
// the catalog together with the tenant (tenant_lookup, cached by
// package tenancy), so routing a request to its cell adds no round trip.
//
// Inside a cell nothing changes: the same roles, policies, forced RLS and
// one-round-trip requests. A tenant's rows, its users and API keys
// included, live in its cell only; its credentials work through any
// instance, because every instance reads the one catalog and holds a pool
// for every cell.
package cells

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

// Default is the default cell's name (tenancy.DefaultCell).
const Default = tenancy.DefaultCell

// namePattern is the cells_name_format constraint of the catalog.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}[a-z0-9]$`)

// ValidName reports whether s is a well-formed cell name: 2-32 characters
// of a-z, 0-9 and -, starting with a letter and ending with a letter or
// digit (the catalog's cells_name_format).
func ValidName(s string) bool { return namePattern.MatchString(s) }

// URL is one configured cell: its name and its migrating role's connection
// string (like DATABASE_URL: serve derives rowfence_app's and
// rowfence_platform's connections from it, with APP_DATABASE_PASSWORD and
// PLATFORM_DATABASE_PASSWORD).
type URL struct {
	Name, URL string
}

// ParseURLs reads CELLS: name=url pairs separated by white space (a
// connection string holds none; a multi-host one holds commas), e.g.
//
//	eu1=postgres://rowfence@eu1.db.internal/rowfence us1=postgres://…
//
// The default cell is DATABASE_URL and is not named here. Errors name the
// faulty pair's name, never its URL (it may carry a password).
func ParseURLs(raw string) ([]URL, error) {
	var out []URL
	for _, pair := range strings.Fields(raw) {
		name, url, ok := strings.Cut(pair, "=")
		switch {
		case !ok || url == "":
			return nil, fmt.Errorf("each cell is name=url; %q has no url", name)
		case !ValidName(name):
			return nil, fmt.Errorf("cell name %q: 2-32 characters of a-z, 0-9 and -, starting with a letter", name)
		case name == Default:
			return nil, errors.New("the default cell is DATABASE_URL; name the other cells only")
		case slices.ContainsFunc(out, func(u URL) bool { return u.Name == name }):
			return nil, fmt.Errorf("cell %q is named twice", name)
		case !strings.Contains(url, "://") && !strings.Contains(url, "="):
			return nil, fmt.Errorf("cell %q: the url is not a PostgreSQL connection string", name)
		}
		out = append(out, URL{Name: name, URL: url})
	}
	return out, nil
}

// Cell is one cell as serve holds it.
type Cell struct {
	Name string
	// App serves the cell's tenants' requests (rowfence_app).
	App *pgxpool.Pool
	// AppPooled says App's connections go through a transaction pooler
	// (db.Pooler.TransactionPooled), which cannot hold a LISTEN: this
	// instance cannot hear the cell's changes (package invalidation).
	AppPooled bool
	// Platform runs /v1/admin and background work in the cell
	// (rowfence_platform); nil when platform administration is off.
	Platform *pgxpool.Pool
	// Limiter shares the cell's App connections fairly among its tenants
	// (ratelimit: sized from App's pool); nil: the server's own limiter.
	// One per cell: a tenant keeping one cell's pool busy must not make the
	// tenants of another cell, whose pool is free, wait
	// (httpapi.TestFairSharingIsPerCell).
	Limiter *ratelimit.Limiter
}

// Set is the cells one instance can reach, the default one included.
type Set struct {
	cells map[string]*Cell
	names []string
}

// NewSet returns the set of cs; one of them must be named Default.
func NewSet(cs ...*Cell) (*Set, error) {
	s := &Set{cells: map[string]*Cell{}}
	for _, c := range cs {
		if _, dup := s.cells[c.Name]; dup {
			return nil, fmt.Errorf("cell %q is named twice", c.Name)
		}
		s.cells[c.Name] = c
		s.names = append(s.names, c.Name)
	}
	if _, ok := s.cells[Default]; !ok {
		return nil, errors.New("cells: no default cell")
	}
	slices.Sort(s.names)
	return s, nil
}

// Names are the cells' names, sorted.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Get returns the cell named name ("" is the default cell); a nil Set (no
// cells configured) has none.
func (s *Set) Get(name string) (*Cell, bool) {
	if s == nil {
		return nil, false
	}
	if name == "" {
		name = Default
	}
	c, ok := s.cells[name]
	return c, ok
}

// ErrNotConfigured: the catalog places a tenant in a cell this instance has
// no connection for (CELLS lacks it). A server's configuration fault, not
// the client's: the HTTP edge answers 503, as for an unreachable database.
var ErrNotConfigured = &db.Error{Code: db.ErrUnavailable, Message: "the tenant's cell is not configured on this instance"}

// App returns the app role's pool of the cell holding t (t.Cell; empty:
// the default cell). Errors: ErrNotConfigured.
func (s *Set) App(t tenancy.Tenant) (*pgxpool.Pool, error) {
	c, ok := s.Get(t.Cell)
	if !ok {
		return nil, fmt.Errorf("cell %q: %w", t.Cell, ErrNotConfigured)
	}
	return c.App, nil
}

// Version is the migration version of the database pool connects to (any
// role: the serving roles may read goose's version table, 00021).
func Version(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var v int64
	err := pool.QueryRow(ctx, "SELECT coalesce(max(version_id), 0) FROM goose_db_version").Scan(&v)
	return v, err
}

// ErrBehind: a cell's schema is older than the default cell's. serve
// refuses to start with it: its policies or columns may be missing.
var ErrBehind = errors.New("cell is behind the default cell's migration version: run rowfence migrate (it migrates every cell)")

// CheckVersions returns ErrBehind, naming the cell and both versions, when
// a cell of s is at a lower migration version than the default cell.
func (s *Set) CheckVersions(ctx context.Context) error {
	def, _ := s.Get(Default)
	want, err := Version(ctx, def.App)
	if err != nil {
		return fmt.Errorf("cell %s: migration version: %w", Default, err)
	}
	for _, name := range s.names {
		c := s.cells[name]
		got, err := Version(ctx, c.App)
		if err != nil {
			// 00021 lets the serving roles read it: a cell where they cannot
			// is not migrated that far.
			return fmt.Errorf("cell %s: cannot read its migration version (%v): %w", name, err, ErrBehind)
		}
		if got < want {
			return fmt.Errorf("cell %s at version %d, the default cell at %d: %w", name, got, want, ErrBehind)
		}
	}
	return nil
}
