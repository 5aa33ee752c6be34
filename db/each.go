package db

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db/dbsqlc"
)

// ErrNotRun is a unit's error in Each when an earlier unit of the same call
// failed at the server: PostgreSQL skips everything after a failed statement
// up to the round trip's end (PostgreSQL documentation, 55.2.3 "Extended
// Query" and 55.2.4 "Pipelining"), so nothing of this unit ran. It is an
// ErrUnavailable: running it again is safe.
var ErrNotRun = errors.Join(ErrUnavailable, errors.New("db: not run: an earlier unit of the same round trip failed"))

// errRecorded is what Each's first call of fn gets from its statement: the
// statement is recorded, not sent. It never leaves Each.
var errRecorded = errors.New("db: Each recorded the statement (first call of fn)")

// errEachSecondStatement guards Each's one statement per unit.
var errEachSecondStatement = errors.New("db: Each runs a single statement per unit")

// errNotDeterministic: fn's second call issued another statement than its
// first, so the result read for it would belong to the wrong statement.
var errNotDeterministic = errors.New("db: Each's fn issued a different statement on its second call; it must be deterministic")

// Each runs fn once per scope, in order, each unit its own transaction
//
//	BEGIN; <scopes[i]'s settings statement, setScopeSQL>; <fn's one statement>; COMMIT
//
// and all units on one pooled connection in one round trip (one pgx batch,
// one Sync). It is One for many scopes at once: the same settings (tenant,
// role, statement_timeout, and the generic plan of genericPlan's statements),
// the same mapped errors (errors.go), and fn issues exactly one statement
// through q: a second one is refused and is errs[i] (the first may have run
// and committed, as with One). The batch's trace span names no tenant: it
// holds many.
//
// Cost: one round trip, one pool acquire and len(scopes) transactions
// (4 statements each), against len(scopes) of each for One in a loop. Under
// pgx's cache_statement mode a connection's first use of a statement costs a
// round trip more, to prepare it, as for One. A failed unit costs one more
// (the ROLLBACK), and pgx then drops every statement of the failed batch
// from the connection's cache, so the connection's next batch first
// deallocates and prepares them again (two more; TestEachIsOneRoundTrip).
// The caller bounds len(scopes): every unit's statement and results travel
// in the one round trip and hold the connection until the last is read.
//
// How: sqlc's generated code sends its statement and scans its answer in one
// call, so fn is called twice per unit. The first call records the statement
// (fn gets an internal error back from it and its answer is dropped); after
// the batch is sent, the second call gets the statement's real result. So fn
// must be deterministic: the same statement with the same arguments on both
// calls, and no effects of its own besides its answer (the second call's is
// the unit's). A unit whose first call issues no statement sends nothing: its
// answer is the first call's.
//
// Isolation (docs/SECURITY.md, vector 2): every unit is its own transaction,
// opened by its own BEGIN, scoped by its own settings statement, all of whose
// settings are is_local and so end at its COMMIT; the next unit starts on a
// connection that has none and sets its own. A unit sees only its tenant's
// rows, as its role (TestEachUnitSeesOnlyItsTenant).
//
// Results: results[i] and errs[i] are unit i's, and errs[i] is nil exactly
// when results[i] is the answer. When unit i's statement (or its BEGIN,
// settings or COMMIT) fails at the server, errs[i] is that error, mapped;
// PostgreSQL then skips the rest of the round trip, so every later unit's
// errs is ErrNotRun, and the earlier units' results stand (committed). A
// unit's ErrNotFound (no row) is its answer, not a failure: later units run.
// fn's own error after a successful statement does not undo the unit (it has
// committed, as with One). The connection is handed back clean: a
// transaction that a failure left open is rolled back (else pgxpool destroys
// the connection on release).
//
// The third result is the whole call's error; when it is not nil, it is also
// the errs of every unit it touched. Before anything is sent: a scope that
// fails One's checks (ErrNoTenant, ErrNoRole, naming the scope's index), or
// no connection within the largest AcquireTimeout of scopes
// (ErrPoolExhausted) or ctx (ErrUnavailable). After: a failure that is not a
// statement's (a broken connection; an argument pgx cannot encode, before
// sending): the units not yet read have that error, mapped, and their fate
// is unknown (they may have committed) or, before sending, none ran.
func Each[T any](ctx context.Context, pool *pgxpool.Pool, scopes []Scope, fn func(i int, q *dbsqlc.Queries) (T, error)) ([]T, []error, error) {
	results := make([]T, len(scopes))
	errs := make([]error, len(scopes))
	var acq Scope
	for i, s := range scopes {
		if err := s.check(); err != nil {
			err = fmt.Errorf("db: Each: scope %d: %w", i, err)
			for j := range errs {
				errs[j] = err
			}
			return results, errs, err
		}
		acq.AcquireTimeout = max(acq.AcquireTimeout, s.AcquireTimeout)
	}

	units := make([]*eachUnit, len(scopes))
	b := &pgx.Batch{}
	for i, s := range scopes {
		u := &eachUnit{}
		res, err := fn(i, dbsqlc.New(u))
		switch {
		case u.calls == 0:
			results[i], errs[i] = res, mapError(err)
			continue
		case u.err != nil:
			errs[i] = u.err
			continue
		}
		units[i] = u
		b.Queue("begin")
		s.queueSet(b, genericPlan[queryName(u.sql)]) // the unit is a transaction of one statement, as One's
		b.Queue(u.sql, u.args...)
		b.Queue("commit")
	}
	if len(b.QueuedQueries) == 0 {
		return results, errs, nil
	}
	fail := func(from int, err error) {
		for j := from; j < len(units); j++ {
			if units[j] != nil {
				errs[j] = err
			}
		}
	}

	conn, err := acquire(ctx, pool, acq)
	if err != nil {
		fail(0, err)
		return results, errs, err
	}
	// pgxpool destroys, rather than reuses, a connection released inside a
	// transaction: the last line of defence if the ROLLBACK below fails.
	defer conn.Release()
	c := conn.Conn()
	br := c.SendBatch(ctx, b)
	failedAt, failed := -1, error(nil)
	for i, u := range units {
		if u == nil {
			continue
		}
		if results[i], errs[i], failed = eachReplay(br, u, i, fn); failed != nil {
			failedAt = i
			break
		}
	}
	_ = br.Close() // its error is failed's, or the Sync's after every unit was read
	if !c.IsClosed() && c.PgConn().TxStatus() != 'I' {
		// A failed statement inside BEGIN leaves the transaction open and
		// aborted past the Sync (55.2.3): end it here, so the connection
		// goes back to the pool clean instead of being destroyed.
		_, _ = c.Exec(ctx, "rollback")
	}
	if failed == nil {
		return results, errs, nil
	}
	var pgErr *pgconn.PgError
	var prep pgx.ErrPreprocessingBatch
	switch {
	case errors.As(failed, &prep):
		// Nothing was sent, or only the statements' preparation: no unit ran.
		err = mapError(failed)
		fail(0, err)
		return results, errs, err
	case errors.As(failed, &pgErr) && !c.IsClosed():
		// The server refused unit failedAt and skipped the rest.
		fail(failedAt+1, ErrNotRun)
		return results, errs, nil
	default:
		err = mapError(failed)
		fail(failedAt, err)
		return results, errs, err
	}
}

// eachReplay reads unit i's results from br: its BEGIN and settings, its
// statement (through fn's second call) and its COMMIT. failed is the batch's
// first error (then the rest of br returns it too).
func eachReplay[T any](br pgx.BatchResults, u *eachUnit, i int, fn func(i int, q *dbsqlc.Queries) (T, error)) (res T, err, failed error) {
	var zero T
	for range 2 { // BEGIN and the settings statement
		if _, failed = br.Exec(); failed != nil {
			return zero, mapError(failed), failed
		}
	}
	u.replay(br)
	res, err = fn(i, dbsqlc.New(u))
	if !u.taken { // fn did not ask for the recorded statement's result: skip it
		u.err = cmp.Or(u.err, errNotDeterministic)
		_, failed = br.Exec()
	}
	// COMMIT's result; or the statement's error, which pgx keeps for every
	// later read, also when fn swallowed it (the unit did not commit).
	if failed == nil {
		_, failed = br.Exec()
	}
	if failed != nil {
		if err == nil {
			err = failed
		}
		return zero, mapError(err), failed
	}
	if err == nil {
		err = u.err
	}
	if err != nil {
		return zero, mapError(err), nil
	}
	return res, nil, nil
}

// eachUnit is the DBTX of one unit of Each: while recording, it keeps fn's
// statement and returns errRecorded; while replaying, it hands fn that
// statement's result from the batch, mapped as the pipeline's are.
type eachUnit struct {
	sql   string
	args  []any
	calls int
	br    pgx.BatchResults // nil while recording
	taken bool             // fn's second call read the statement's result
	err   error            // fn's fault: a second or different statement
}

func (u *eachUnit) replay(br pgx.BatchResults) { u.br, u.calls = br, 0 }

// next counts fn's statement and says where its result comes from: the
// batch (ok) or err.
func (u *eachUnit) next(sql string, args []any) (ok bool, err error) {
	u.calls++
	switch {
	case u.calls > 1:
		u.err = errEachSecondStatement
	case u.br == nil:
		u.sql, u.args = sql, args
		return false, errRecorded
	case sql != u.sql:
		u.err = errNotDeterministic
	default:
		u.taken = true
		return true, nil
	}
	return false, u.err
}

func (u *eachUnit) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if ok, err := u.next(sql, args); !ok {
		return pgconn.CommandTag{}, err
	}
	return mapped{batchNext{u.br}}.Exec(ctx, sql, args...)
}

func (u *eachUnit) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if ok, err := u.next(sql, args); !ok {
		return nil, err
	}
	return mapped{batchNext{u.br}}.Query(ctx, sql, args...)
}

func (u *eachUnit) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if ok, err := u.next(sql, args); !ok {
		return errRow{err}
	}
	return mapped{batchNext{u.br}}.QueryRow(ctx, sql, args...)
}

// batchNext is a DBTX that answers any statement with the batch's next
// result: the statement itself was queued earlier.
type batchNext struct{ br pgx.BatchResults }

func (b batchNext) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return b.br.Exec()
}
func (b batchNext) Query(context.Context, string, ...any) (pgx.Rows, error) { return b.br.Query() }
func (b batchNext) QueryRow(context.Context, string, ...any) pgx.Row        { return b.br.QueryRow() }
