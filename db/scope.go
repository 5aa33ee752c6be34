package db

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
)

// This file is where the database learns the tenant. Every request's SQL runs
// through One or Tx, which send
//
//	select set_config('app.tenant_id', <tenant>, true), set_config('app.role', <role>, true),
//	       set_config('statement_timeout', …, true)
//
// in the same transaction as the request's statements. is_local=true means the
// setting ends with the transaction: nothing is left on the pooled connection
// (docs/DESIGN.md, "Known ways RLS leaks", vector 2). The policies on the
// tenant tables read both: a restrictive policy confines every statement to
// the tenant, permissive ones let each role do only its part
// (sql/migrations/00004_auth.sql; docs/DESIGN.md, "Tenant tables").
//
// Cost: One sends the setting and a single statement as one pipeline ending in
// one Sync, an implicit transaction in one network round trip. Tx pipelines
// BEGIN and the setting with its first statement, so n statements cost n+1
// round trips (n+3 the naive way). The sqlc-generated code is used unchanged:
// it talks to the DBTX implementations below.

// setScopeSQL is the only statement that tells PostgreSQL the tenant and the
// role. The request's statement_timeout rides in the same statement, so it
// costs nothing more; all three settings end with the transaction. An empty
// timeout keeps the role's or server's default.
const setScopeSQL = "select set_config('app.tenant_id', $1, true), set_config('app.role', $2, true), " +
	"set_config('statement_timeout', coalesce(nullif($3, ''), current_setting('statement_timeout')), true)"

// setScopeGenericSQL is setScopeSQL for the statements in genericPlan when
// One runs them: it also sets plan_cache_mode = force_generic_plan, for the
// implicit transaction of that one statement.
const setScopeGenericSQL = setScopeSQL + ", set_config('plan_cache_mode', 'force_generic_plan', true)"

// genericPlan lists the statements that must run with their generic plan.
//
// Under RLS the tenant is never a plan-time constant (the policy reads
// current_setting), so a custom plan only knows a statement's other
// parameters, which for these statements change nothing: the keyset lists
// walk the (tenant_id, created_at, id) index, or (tenant_id, updated_at, id)
// for ?updated_since= (the *ListUpdated statements), whatever the cursor and
// the limit, and the name-prefix search chooses its strategy at run time (a
// bounded walk or the name range, queries/products.sql). But PostgreSQL
// estimates a generic plan with an unknown LIMIT as reading a tenth of the
// table, prefers the custom plans it estimates cheaper, and so plans these
// statements afresh on every execution: for a product list page, planning
// took three times as long as executing (0.09 against 0.03 ms), the search
// lost a third of its time to it (bench/RESULTS.md). Forcing the generic plan
// keeps the plan that PostgreSQL prepared once (and replans, as always, when
// ANALYZE changes the table's statistics). The *ListSorted statements hold
// one branch per order, gated by parameters, and UserListByEmail compares a
// stored lower-cased email: their generic plans are index walks too
// (sql/migrations/00018_list_indexes.sql; httpapi's TestListPlansAreIndexWalks
// checks every documented list's), and planning the sorted lists afresh
// would cost more than executing them. Not listed: those PostgreSQL already
// runs generic after its five custom trials (a get by id), and ExportList
// (no tenant-leading index; exports are few).
//
// Keyed by the query's name in queries/*.sql (sqlc starts each statement's
// text with its "-- name: X :kind" line; queryName reads it back).
var genericPlan = map[string]bool{"ProductList": true, "ProductSearch": true, "UserList": true, "APIKeyList": true,
	"ProductListUpdated": true, "UserListUpdated": true,
	"ProductListSorted": true, "UserListSorted": true, "UserListByEmail": true}

// queryName is the name sqlc gives a statement in its first line,
// "-- name: ProductList :many", or "" for SQL that has none.
func queryName(sql string) string {
	const prefix = "-- name: "
	if !strings.HasPrefix(sql, prefix) {
		return ""
	}
	name, _, _ := strings.Cut(sql[len(prefix):], " ")
	return name
}

// Scope is what a unit of work runs as.
type Scope struct {
	TenantID uuid.UUID
	Role     dbtype.Role
	// StatementTimeout bounds each statement of the unit (0: the default).
	StatementTimeout time.Duration
	// AcquireTimeout bounds the wait for a pooled connection (0: only ctx's
	// deadline). Past it: ErrPoolExhausted, an ErrUnavailable.
	AcquireTimeout time.Duration
}

func (s Scope) timeoutSetting() string {
	if s.StatementTimeout <= 0 {
		return ""
	}
	return strconv.FormatInt(max(1, s.StatementTimeout.Milliseconds()), 10)
}

// ErrNoTenant is returned, before anything is sent, for a Scope without a
// tenant: work outside a tenant fails closed (leak vector 10).
var ErrNoTenant = errors.New("db: no tenant in scope")

// ErrNoRole is returned, before anything is sent, for a Scope without a valid
// role: the policies would show and allow nothing, so fail loudly instead.
var ErrNoRole = errors.New("db: no valid role in scope")

// ErrRolledBack is returned by Tx when fn returned nil although one of its
// statements failed, so PostgreSQL rolled the transaction back.
var ErrRolledBack = errors.New("db: transaction rolled back: a statement in it failed")

// errSecondStatement guards One's promise of a single round trip.
var errSecondStatement = errors.New("db: One runs a single statement; use Tx for more")

// queueSet queues the scope's settings statement on b: setScopeGenericSQL
// when generic (a transaction of one statement from genericPlan), else
// setScopeSQL.
func (s Scope) queueSet(b *pgx.Batch, generic bool) {
	set := setScopeSQL
	if generic {
		set = setScopeGenericSQL
	}
	b.Queue(set, s.TenantID.String(), string(s.Role), s.timeoutSetting())
}

func (s Scope) check() error {
	if s.TenantID == uuid.Nil {
		return ErrNoTenant
	}
	if !s.Role.Valid() {
		return ErrNoRole
	}
	return nil
}

// One runs fn, which issues exactly one statement through q, for the scope in
// one round trip. A second statement fails with an error, not silently.
// Errors, those q returns to fn included, are mapped (errors.go).
func One[T any](ctx context.Context, pool *pgxpool.Pool, s Scope, fn func(q *dbsqlc.Queries) (T, error)) (T, error) {
	var zero T
	if err := s.check(); err != nil {
		return zero, err
	}
	conn, err := acquire(ctx, pool, s)
	if err != nil {
		return zero, err
	}
	defer conn.Release()
	p := &pipeline{conn: conn.Conn(), scope: s}
	res, err := fn(dbsqlc.New(p))
	if cerr := p.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return zero, mapError(err)
	}
	return res, nil
}

// Tx runs fn in an explicit transaction for the scope, committed when fn
// returns nil and rolled back otherwise. BEGIN and the setting travel with fn's
// first statement.
func Tx(ctx context.Context, pool *pgxpool.Pool, s Scope, fn func(q *dbsqlc.Queries) error) error {
	return tx(ctx, pool, s, "begin", fn)
}

// Snapshot is Tx in one REPEATABLE READ, READ ONLY transaction: every
// statement of fn sees the same consistent snapshot (exports).
func Snapshot(ctx context.Context, pool *pgxpool.Pool, s Scope, fn func(q *dbsqlc.Queries) error) error {
	return tx(ctx, pool, s, "begin isolation level repeatable read read only", fn)
}

func tx(ctx context.Context, pool *pgxpool.Pool, s Scope, begin string, fn func(q *dbsqlc.Queries) error) error {
	if err := s.check(); err != nil {
		return err
	}
	conn, err := acquire(ctx, pool, s)
	if err != nil {
		return err
	}
	// pgxpool destroys, rather than reuses, a connection released inside a
	// transaction, so a failed ROLLBACK cannot hand a tenant's transaction on.
	defer conn.Release()
	p := &pipeline{conn: conn.Conn(), scope: s, begin: begin}
	err = fn(dbsqlc.New(p))
	if cerr := p.close(); err == nil {
		err = cerr
	}
	if !p.sent {
		return mapError(err)
	}
	if err != nil {
		_, _ = p.conn.Exec(ctx, "rollback")
		return mapError(err)
	}
	tag, err := p.conn.Exec(ctx, "commit")
	if err != nil {
		return mapError(err)
	}
	// COMMIT of a failed transaction succeeds as a ROLLBACK: fn swallowed a
	// statement's error, and nothing was written.
	if tag.String() == "ROLLBACK" {
		return ErrRolledBack
	}
	return nil
}

// ErrPoolExhausted: no pooled connection came free within the scope's
// AcquireTimeout. It is an ErrUnavailable (a 503 with Retry-After).
var ErrPoolExhausted = errors.Join(ErrUnavailable, errors.New("db: no pooled connection free in time"))

func acquire(ctx context.Context, pool *pgxpool.Pool, s Scope) (*pgxpool.Conn, error) {
	if s.AcquireTimeout <= 0 {
		conn, err := pool.Acquire(ctx)
		return conn, mapError(err)
	}
	actx, cancel := context.WithTimeout(ctx, s.AcquireTimeout)
	defer cancel()
	conn, err := pool.Acquire(actx)
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		return nil, ErrPoolExhausted
	}
	return conn, mapError(err)
}

// pipeline is a DBTX whose first statement carries the tenant setting (and,
// for Tx, BEGIN) in the same pipeline. In One mode it accepts one statement;
// in Tx mode later statements go to the connection as they are.
type pipeline struct {
	conn  *pgx.Conn
	scope Scope
	begin string // the BEGIN statement in Tx mode; "" in One mode

	sent     bool
	br       pgx.BatchResults
	closeErr error
}

// first sends the pipeline with the caller's statement last and reads the
// results of everything before it.
func (p *pipeline) first(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	if p.begin != "" {
		b.Queue(p.begin)
	}
	// One only: in Tx the generic plan would bind later statements too.
	p.scope.queueSet(b, p.begin == "" && genericPlan[queryName(sql)])
	b.Queue(sql, args...)
	p.sent = true
	p.br = p.conn.SendBatch(withScope(ctx, p.scope), b)
	for range len(b.QueuedQueries) - 1 {
		if _, err := p.br.Exec(); err != nil {
			p.close()
			return nil, err
		}
	}
	return p.br, nil
}

// close ends the batch (in One mode, this is where the implicit transaction
// commits) and keeps its first error.
func (p *pipeline) close() error {
	if p.br != nil {
		p.closeErr = p.br.Close()
		p.br = nil
	}
	return p.closeErr
}

func (p *pipeline) next() (ok bool, err error) {
	switch {
	case !p.sent:
		return true, nil
	case p.begin != "":
		return false, p.close()
	default:
		return false, errSecondStatement
	}
}

// The pipeline is a boundary (errors.go): what its methods return has passed
// through mapError, so fn sees the same errors as One's and Tx's callers.
// Statements after the first (Tx mode) go through mapped.

func (p *pipeline) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	isFirst, err := p.next()
	if err != nil {
		return pgconn.CommandTag{}, mapError(err)
	}
	if !isFirst {
		return mapped{p.conn}.Exec(withScope(ctx, p.scope), sql, args...)
	}
	br, err := p.first(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, mapError(err)
	}
	tag, err := br.Exec()
	if cerr := p.close(); err == nil {
		err = cerr
	}
	return tag, mapError(err)
}

func (p *pipeline) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	isFirst, err := p.next()
	if err != nil {
		return nil, mapError(err)
	}
	if !isFirst {
		return mapped{p.conn}.Query(withScope(ctx, p.scope), sql, args...)
	}
	br, err := p.first(ctx, sql, args)
	if err != nil {
		return nil, mapError(err)
	}
	rows, err := br.Query()
	if err != nil {
		p.close()
		return nil, mapError(err)
	}
	return &batchRows{Rows: rows, p: p}, nil
}

func (p *pipeline) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	isFirst, err := p.next()
	if err != nil {
		return errRow{mapError(err)}
	}
	if !isFirst {
		return mapped{p.conn}.QueryRow(withScope(ctx, p.scope), sql, args...)
	}
	br, err := p.first(ctx, sql, args)
	if err != nil {
		return errRow{mapError(err)}
	}
	return batchRow{row: br.QueryRow(), p: p}
}

// batchRows closes the batch with the rows, so the connection is free again
// as soon as the generated code is done with them. The batch's own error (the
// implicit commit) is kept by the pipeline and returned by One or Tx.
type batchRows struct {
	pgx.Rows
	p *pipeline
}

func (r *batchRows) Close() {
	r.Rows.Close()
	r.p.close()
}

func (r *batchRows) Scan(dest ...any) error { return mapError(r.Rows.Scan(dest...)) }
func (r *batchRows) Err() error             { return mapError(r.Rows.Err()) }

type batchRow struct {
	row pgx.Row
	p   *pipeline
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.p.close(); err == nil {
		err = cerr
	}
	return mapError(err)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
