package db_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/pgtest"
)

// startBouncer starts Debian's PgBouncer (1.18 here) in front of backend.
func startBouncer(t *testing.T, backend string, opts pgserver.BouncerOptions) *pgserver.Bouncer {
	t.Helper()
	b, err := pgserver.StartPgBouncerWith(context.Background(), backend, opts)
	require.NoError(t, err, "make test installs pgbouncer (make test-deps); or apt-get install -y pgbouncer")
	t.Cleanup(b.Stop)
	return b
}

// atLeast reports whether version ("1.18.0") is at least major.minor.
func atLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(parts[1])
	return ma > major || ma == major && mi >= minor
}

func probe(t *testing.T, connString string) db.Pooler {
	t.Helper()
	cfg, err := pgx.ParseConfig(connString)
	require.NoError(t, err)
	p, err := db.ProbePooler(context.Background(), cfg)
	require.NoError(t, err)
	return p
}

// ProbePooler against the real thing: PostgreSQL itself, PgBouncer in session
// mode (no pooler as far as sessions go), PgBouncer in transaction mode (the
// installed 1.18 cannot keep prepared statements), and, where installed,
// PgBouncer 1.21+ with max_prepared_statements. Each probe is repeated: a
// probe that guesses would flip.
func TestProbePooler(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	direct := db.Pooler{PreparedStatementsKept: true}
	transaction := startBouncer(t, tdb.AppURL, pgserver.BouncerOptions{PoolSize: 4})
	session := startBouncer(t, tdb.AppURL, pgserver.BouncerOptions{PoolSize: 4, PoolMode: "session"})
	want := db.Pooler{TransactionPooled: true, PreparedStatementsKept: atLeast(transaction.Version, 1, 21)}
	for range 5 {
		require.Equal(t, direct, probe(t, tdb.AppURL), "PostgreSQL itself")
		require.Equal(t, direct, probe(t, session.URL), "PgBouncer %s in session mode", session.Version)
		require.Equal(t, want, probe(t, transaction.URL), "PgBouncer %s in transaction mode", transaction.Version)
	}
	// A pool of one server connection: the holder takes it, and the probe's
	// own statement waits for it, which only happens through a pooler.
	one := startBouncer(t, tdb.AppURL, pgserver.BouncerOptions{PoolSize: 1})
	require.Equal(t, db.Pooler{TransactionPooled: true}, probe(t, one.URL))
	if !atLeast(transaction.Version, 1, 21) {
		t.Logf("PgBouncer %s: max_prepared_statements needs 1.21+, not tested here", transaction.Version)
		return
	}
	kept := startBouncer(t, tdb.AppURL, pgserver.BouncerOptions{PoolSize: 4, Settings: map[string]string{"max_prepared_statements": "200"}})
	require.Equal(t, db.Pooler{TransactionPooled: true, PreparedStatementsKept: true}, probe(t, kept.URL))
}

// AdaptToPooler: what serve does with each exec mode behind each kind of
// pooler. Only a mode the operator set and that cannot work is refused.
func TestAdaptToPooler(t *testing.T) {
	t.Parallel()
	none := db.Pooler{PreparedStatementsKept: true}
	old := db.Pooler{TransactionPooled: true}                                // PgBouncer < 1.21
	kept := db.Pooler{TransactionPooled: true, PreparedStatementsKept: true} // 1.21+, max_prepared_statements
	const base = "postgres://u@localhost/d"
	for _, c := range []struct {
		url    string
		pooler db.Pooler
		mode   pgx.QueryExecMode // after; 0: refused
	}{
		{base, none, pgx.QueryExecModeCacheStatement},
		{base + "?default_query_exec_mode=describe_exec", none, pgx.QueryExecModeDescribeExec},
		{base, old, pgx.QueryExecModeExec},
		{base, kept, pgx.QueryExecModeCacheStatement},
		{base + "?default_query_exec_mode=cache_statement", old, 0},
		{base + "?default_query_exec_mode=cache_statement", kept, pgx.QueryExecModeCacheStatement},
		{base + "?default_query_exec_mode=describe_exec", old, 0},
		{base + "?default_query_exec_mode=describe_exec", kept, 0},
		{"host=localhost user=u default_query_exec_mode=describe_exec", kept, 0},
		{base + "?default_query_exec_mode=cache_describe", old, pgx.QueryExecModeCacheDescribe},
		{base + "?default_query_exec_mode=exec", old, pgx.QueryExecModeExec},
		{base + "?default_query_exec_mode=simple_protocol", old, pgx.QueryExecModeSimpleProtocol},
	} {
		cfg, err := pgxpool.ParseConfig(c.url)
		require.NoError(t, err)
		note, err := db.AdaptToPooler(cfg, c.pooler)
		if c.mode == 0 {
			require.ErrorIs(t, err, db.ErrExecModeBehindPooler, "%s behind %s", c.url, c.pooler)
			require.ErrorContains(t, err, "use exec")
			continue
		}
		require.NoError(t, err, "%s behind %s", c.url, c.pooler)
		require.Equal(t, c.mode, cfg.ConnConfig.DefaultQueryExecMode, "%s behind %s", c.url, c.pooler)
		require.Equal(t, c.pooler.TransactionPooled, note != "", "a pooler is worth one line in the log: %q", note)
	}
}

// Every query, through PgBouncer 1.18 in transaction mode, in each exec mode
// that serve accepts there, while other clients move the server connections
// around: the same answers as straight to PostgreSQL.
func TestEveryQueryThroughPgBouncer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	seedSamples(t, tdb.AdminPool(t))
	bouncer := startBouncer(t, tdb.AdminURL, pgserver.BouncerOptions{PoolSize: 2})
	var modes []pgx.QueryExecMode
	for _, mode := range ExecModes {
		cfg, err := pgxpool.ParseConfig(bouncer.URL)
		require.NoError(t, err)
		cfg.ConnConfig.DefaultQueryExecMode = mode
		if _, err := db.AdaptToPooler(cfg, probe(t, bouncer.URL)); err == nil && cfg.ConnConfig.DefaultQueryExecMode == mode {
			modes = append(modes, mode)
		}
	}
	if !atLeast(bouncer.Version, 1, 21) {
		require.Equal(t, []pgx.QueryExecMode{pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}, modes)
	}

	// Noise: short transactions from other clients, so that consecutive
	// statements of one client land on different server connections.
	noiseCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(noiseCtx, bouncer.URL+"&default_query_exec_mode=simple_protocol")
			if err != nil {
				return
			}
			defer conn.Close(ctx)
			for noiseCtx.Err() == nil {
				_, _ = conn.Exec(noiseCtx, "begin; select pg_sleep(0.0005); commit")
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	everyQuery(t, tdb, bouncer.URL, modes)
}

// Control for AdaptToPooler's refusal of describe_exec: through a
// transaction pooler its second round trip binds the unnamed statement of
// whichever server connection it lands on. Outside a transaction (a plain
// pool query) that fails (26000), or runs this client's parameters in
// another client's statement.
func TestDescribeExecThroughPgBouncerControl(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	bouncer := startBouncer(t, tdb.AppURL, pgserver.BouncerOptions{PoolSize: 2})
	cfg, err := pgxpool.ParseConfig(bouncer.URL)
	require.NoError(t, err)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	cfg.MaxConns = 4
	pool, err := db.Open(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	var mu sync.Mutex
	failed := map[string]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				var n int
				var err error
				if (w+i)%2 == 0 {
					err = pool.QueryRow(ctx, "select $1::int", i).Scan(&n)
				} else {
					err = pool.QueryRow(ctx, "select length($1::text)", "abc").Scan(&n)
				}
				if err != nil {
					mu.Lock()
					failed[err.Error()]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("describe_exec through PgBouncer %s: %v", bouncer.Version, failed)
	require.NotEmpty(t, failed, "control: describe_exec breaks through a transaction pooler")
}
