package db

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Pooler is what ProbePooler found between rowfence and PostgreSQL.
//
// A transaction pooler (PgBouncer with pool_mode = transaction) hands each
// transaction of a client connection to whichever server connection is free.
// Every tenant setting is transaction-local, so isolation holds through it
// (leak vector 2; db.TestPoolingPropertyThroughPgBouncer). What does not
// survive is session state: LISTEN, and named prepared statements, which
// pgx's default mode (cache_statement) makes for every statement. PgBouncer
// before 1.21, or with max_prepared_statements = 0, passes them through to
// one server connection: the next transaction runs elsewhere and fails with
// 26000 (prepared statement does not exist) or 42P05 (already exists).
type Pooler struct {
	// TransactionPooled: consecutive transactions of one client connection
	// may run on different server connections.
	TransactionPooled bool
	// PreparedStatementsKept: a named prepared statement still works after
	// the client connection moved to another server connection (PgBouncer
	// 1.21+ with max_prepared_statements > 0). Always true without a
	// transaction pooler.
	PreparedStatementsKept bool
}

func (p Pooler) String() string {
	switch {
	case !p.TransactionPooled:
		return "no transaction pooler"
	case p.PreparedStatementsKept:
		return "a transaction pooler that keeps prepared statements"
	default:
		return "a transaction pooler that cannot keep prepared statements"
	}
}

// probeHolders is how many other client connections ProbePooler opens to
// take the first one's server connection away from it.
const probeHolders = 3

// probeWait bounds ProbePooler's wait for a server connection to run its
// statement on while another client holds the one it had.
const probeWait = 3 * time.Second

// ProbePooler finds out whether a transaction pooler is between cfg and
// PostgreSQL, and whether named prepared statements survive it. It opens up to
// four connections with cfg and closes them, within 15 s; apart from the one
// statement it prepares on purpose, its statements use the simple protocol,
// which works through any pooler:
//
//  1. connection A prepares a named statement (select pg_backend_pid()) and
//     runs it, which tells its server process;
//  2. connections B, C, D each open a transaction, which holds a server
//     connection until it ends, until one of them holds A's server process:
//     that only happens through a pooler that shares server connections
//     between transactions (PgBouncer hands out the most recently freed one);
//  3. A executes its prepared statement: on a different server process it
//     either fails with 26000 (the statement stayed behind) or works (the
//     pooler prepared it again: PgBouncer 1.21+ with max_prepared_statements);
//     if it waits 3 s for a server connection while a holder has A's, the
//     pooler had no other (a pool of one): pooled, statements not kept.
//
// Without a pooler, or through a session pooler, A keeps its server process
// and nothing moves. If no holder lands on A's process and A's stays the same,
// the pooler (if any) did not show itself: reported as none.
func ProbePooler(ctx context.Context, cfg *pgx.ConnConfig) (Pooler, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cc := cfg.Copy()
	cc.Tracer = nil
	cc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	a, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return Pooler{}, err
	}
	defer a.Close(context.WithoutCancel(ctx))
	// The server process is read through the prepared statement itself, so
	// that each answer also says the statement exists where it ran.
	name := "rowfence_pooler_probe_" + randomHex(8)
	if _, err := a.Prepare(ctx, name, "select pg_backend_pid()"); err != nil {
		return Pooler{}, fmt.Errorf("prepare a statement: %w", err)
	}
	preparedPID := func(ctx context.Context) (pid uint32, lost bool, err error) {
		res := a.PgConn().ExecPrepared(ctx, name, nil, nil, nil).Read()
		var pgErr *pgconn.PgError
		switch {
		case errors.As(res.Err, &pgErr) && pgErr.Code == "26000": // invalid_sql_statement_name
			return 0, true, nil
		case res.Err != nil:
			return 0, false, fmt.Errorf("run a prepared statement: %w", res.Err)
		case len(res.Rows) != 1 || len(res.Rows[0]) != 1:
			return 0, false, errors.New("run a prepared statement: no answer")
		}
		n, err := strconv.ParseUint(string(res.Rows[0][0]), 10, 32)
		return uint32(n), false, err
	}
	first, lost, err := preparedPID(ctx)
	if err != nil || lost {
		return Pooler{TransactionPooled: lost}, err
	}
	// Holders that did not land on A's server process give theirs back at
	// once: with them all held, A could not get one (a deadlock on a small
	// pool). The one that did holds it while A runs its statement.
	taken := false
	for range probeHolders {
		h, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return Pooler{}, err
		}
		defer h.Close(context.WithoutCancel(ctx))
		tx, err := h.Begin(ctx)
		if err != nil {
			return Pooler{}, fmt.Errorf("begin a transaction: %w", err)
		}
		var p uint32
		if err := tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&p); err != nil {
			return Pooler{}, err
		}
		if p == first {
			taken = true
			defer tx.Rollback(context.WithoutCancel(ctx))
			break
		}
		if err := tx.Rollback(ctx); err != nil {
			return Pooler{}, err
		}
	}
	// Without a pooler A's own server process answers at once. Through a
	// pooler whose every server connection is busy (a pool of one, held
	// above) it waits: a pooler.
	actx, cancel := context.WithTimeout(ctx, probeWait)
	second, lost, err := preparedPID(actx)
	cancel()
	if taken && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return Pooler{TransactionPooled: true}, nil
	}
	if err != nil || lost {
		return Pooler{TransactionPooled: lost}, err
	}
	// Without a pooler the statement goes with the connection; PgBouncer
	// 1.21+ prepares it on its servers under names of its own. Deallocating
	// is tidy, not needed.
	_, _ = a.Exec(ctx, "deallocate "+pgx.Identifier{name}.Sanitize())
	return Pooler{TransactionPooled: taken || second != first, PreparedStatementsKept: true}, nil
}

// ErrExecModeBehindPooler: the pool's default_query_exec_mode, set in its
// connection string, cannot work through the pooler ProbePooler found.
// Its text is for the operator, who set that mode.
var ErrExecModeBehindPooler = errors.New("default_query_exec_mode cannot work through the connection pooler in front of PostgreSQL")

// AdaptToPooler sets cfg's exec mode for the pooler p describes, and returns
// a sentence for the log when it found one ("" when there is none). It fails
// with ErrExecModeBehindPooler when the connection string sets a mode that
// cannot work there, rather than override the operator:
//
//   - describe_exec binds, in a second round trip, the unnamed statement that
//     the first one parsed: outside a transaction that is another
//     transaction, possibly on another server connection, behind any
//     transaction pooler;
//   - cache_statement needs prepared statements kept (PgBouncer 1.21+ with
//     max_prepared_statements). When nothing was set, serve switches to exec
//     (every statement unprepared, one round trip; every query works in
//     every mode, db.TestEveryQueryInEveryExecMode).
func AdaptToPooler(cfg *pgxpool.Config, p Pooler) (string, error) {
	if !p.TransactionPooled {
		return "", nil
	}
	mode := cfg.ConnConfig.DefaultQueryExecMode
	explicit := execModeExplicit(cfg.ConnString())
	switch {
	case mode == pgx.QueryExecModeDescribeExec:
		return "", fmt.Errorf("%w: found %s, where default_query_exec_mode=describe_exec binds a statement in a later transaction than the one that parsed it; use exec (or leave it unset)", ErrExecModeBehindPooler, p)
	case mode == pgx.QueryExecModeCacheStatement && !p.PreparedStatementsKept && explicit:
		return "", fmt.Errorf("%w: found %s (PgBouncer before 1.21, or max_prepared_statements = 0), where default_query_exec_mode=cache_statement fails with \"prepared statement … already exists\"; use exec (or leave it unset), or PgBouncer 1.21+ with max_prepared_statements", ErrExecModeBehindPooler, p)
	case mode == pgx.QueryExecModeCacheStatement && !p.PreparedStatementsKept:
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		return fmt.Sprintf("found %s (PgBouncer before 1.21, or max_prepared_statements = 0): statements run unprepared (default_query_exec_mode=exec)", p), nil
	}
	return fmt.Sprintf("found %s: statements run in default_query_exec_mode=%s", p, modeName(mode)), nil
}

// execModeExplicit reports whether connString sets default_query_exec_mode
// (pgx removes it from the parsed configuration, so parse it again).
func execModeExplicit(connString string) bool {
	c, err := pgconn.ParseConfig(connString)
	if err != nil {
		return false
	}
	_, ok := c.RuntimeParams["default_query_exec_mode"]
	return ok
}

// modeName is mode as default_query_exec_mode spells it.
func modeName(mode pgx.QueryExecMode) string {
	switch mode {
	case pgx.QueryExecModeCacheStatement:
		return "cache_statement"
	case pgx.QueryExecModeCacheDescribe:
		return "cache_describe"
	case pgx.QueryExecModeDescribeExec:
		return "describe_exec"
	case pgx.QueryExecModeExec:
		return "exec"
	case pgx.QueryExecModeSimpleProtocol:
		return "simple_protocol"
	}
	return mode.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
