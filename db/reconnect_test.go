package db_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/pgtest"
)

// countingDials counts cfg's dials (connections and cancel requests).
func countingDials(cfg *pgxpool.Config) *atomic.Int64 {
	var n atomic.Int64
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return dial(ctx, network, addr)
	}
	return &n
}

// hammer runs workers that ping pool for d and returns how many pings ran
// and the slowest.
func hammer(t *testing.T, pool *pgxpool.Pool, workers int, d time.Duration) (pings int64, slowest time.Duration) {
	t.Helper()
	var n atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				start := time.Now()
				err := pool.Ping(context.Background())
				took := time.Since(start)
				n.Add(1)
				mu.Lock()
				slowest = max(slowest, took)
				mu.Unlock()
				if err == nil {
					t.Error("a ping to a dead port succeeded")
					return
				}
				if !errors.Is(db.MapError(err), db.ErrUnavailable) {
					t.Errorf("not an ErrUnavailable (a 503): %v", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	return n.Load(), slowest
}

// A pool whose server refuses connections dials about once per
// ConnectBackoff, however many callers want a connection, and each caller
// gets ErrUnavailable at once; without the guard every caller dials
// (issue #14 item 9).
func TestGuardedPoolBacksOffWhileTheServerIsDown(t *testing.T) {
	t.Parallel()
	port, err := pgserver.FreePort() // nothing listens there
	require.NoError(t, err)
	url := "postgres://nobody@127.0.0.1:" + strconv.Itoa(port) + "/none?sslmode=disable"
	const workers, d = 8, 1500 * time.Millisecond

	open := func(guard bool) (*pgxpool.Pool, *atomic.Int64) {
		cfg, err := pgxpool.ParseConfig(url)
		require.NoError(t, err)
		dials := countingDials(cfg)
		if guard {
			db.GuardConnects(cfg, "test", nil)
		}
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool, dials
	}
	bare, bareDials := open(false)
	barePings, _ := hammer(t, bare, workers, d)
	guarded, guardedDials := open(true)
	pings, slowest := hammer(t, guarded, workers, d)
	t.Logf("%d callers for %s: unguarded %d dials for %d pings; guarded %d dials for %d pings, slowest %s",
		workers, d, bareDials.Load(), barePings, guardedDials.Load(), pings, slowest)
	require.Greater(t, bareDials.Load(), int64(100), "control: without the guard every ping dials")
	require.LessOrEqual(t, guardedDials.Load(), int64(d/db.ConnectBackoff)+1+int64(workers),
		"one probe per ConnectBackoff, plus the attempts under way at the first failure")
	require.Less(t, slowest, time.Second, "callers are answered at once, never after a connect timeout")
}

// Errors of queries on live connections say nothing about the server's
// reachability: after a unique violation, a statement timeout, a cancelled
// context, a syntax error and a terminated backend, new connections are
// made at once.
func TestGuardedPoolIgnoresQueryErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	cfg, err := pgxpool.ParseConfig(tdb.AdminURL)
	require.NoError(t, err)
	cfg.MaxConns = 4
	dials := countingDials(cfg)
	db.GuardConnects(cfg, "test", nil)
	pool, err := db.Open(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()

	_, err = pool.Exec(ctx, "create table guard_u (v int unique); insert into guard_u values (1)")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "insert into guard_u values (1)")
	require.ErrorIs(t, db.MapError(err), db.ErrConflict)
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "set statement_timeout = '10ms'; select pg_sleep(1)")
	require.ErrorIs(t, db.MapError(err), db.ErrTimeout)
	conn.Release()
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = pool.Exec(short, "select pg_sleep(1)")
	cancel()
	require.Error(t, err)
	_, err = pool.Exec(ctx, "selec 1")
	require.Error(t, err)
	victim, err := pool.Acquire(ctx)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "select pg_terminate_backend($1)", victim.Conn().PgConn().PID())
	require.NoError(t, err)
	_, err = victim.Exec(ctx, "select 1")
	require.ErrorIs(t, db.MapError(err), db.ErrUnavailable, "a broken connection: 503 for its caller")
	victim.Release()

	// Every connection now is new: none may be refused by the guard.
	pool.Reset()
	before := dials.Load()
	conns := make([]*pgxpool.Conn, cfg.MaxConns)
	for i := range conns {
		conns[i], err = pool.Acquire(ctx)
		require.NoError(t, err, "connection %d after query errors", i)
	}
	for _, c := range conns {
		c.Release()
	}
	require.GreaterOrEqual(t, dials.Load()-before, int64(cfg.MaxConns), "new connections were made")
}

// A TCP dial that the kernel connects to itself (nothing listens on the
// port, and the source port chosen is the same number) is closed at once
// and fails the attempt, so the port is free for the server again.
func TestGuardedPoolRefusesASelfConnectedSocket(t *testing.T) {
	t.Parallel()
	// The kernel picks the source port at random; binding it makes the
	// self-connection certain.
	selfDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}}
		return d.DialContext(ctx, network, addr)
	}
	freeAddr := func() string {
		port, err := pgserver.FreePort()
		require.NoError(t, err)
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	// Control: the dial does connect to itself.
	c, err := selfDial(context.Background(), "tcp", freeAddr())
	require.NoError(t, err)
	require.True(t, db.IsSelfConnected(c))
	c.Close()

	addr := freeAddr()
	cfg, err := pgxpool.ParseConfig("postgres://nobody@" + addr + "/none?sslmode=disable")
	require.NoError(t, err)
	cfg.ConnConfig.DialFunc = selfDial
	db.GuardConnects(cfg, "test", nil)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer pool.Close()
	err = pool.Ping(context.Background())
	require.ErrorIs(t, err, db.ErrSelfConnect)
	require.ErrorIs(t, db.MapError(err), db.ErrUnavailable)
	require.Eventually(t, func() bool {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		return true
	}, 2*time.Second, 10*time.Millisecond, "the port is free again")
}
