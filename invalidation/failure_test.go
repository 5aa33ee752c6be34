package invalidation_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/invalidation"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/pgtest"
)

// freezer proxies every connection of a pool through loopback TCP. Once
// frozen, no byte moves in either direction and the sockets stay open: a
// half-open connection (a NAT or firewall that dropped its state, a peer
// that vanished), as the client's kernel sees it. stall(d) holds every byte
// for d and then lets it through: a database or network slow for d.
type freezer struct {
	frozen chan struct{}
	once   sync.Once
	mu     sync.Mutex
	until  time.Time
}

func (f *freezer) freeze() { f.once.Do(func() { close(f.frozen) }) }

func (f *freezer) stall(d time.Duration) { f.mu.Lock(); f.until = time.Now().Add(d); f.mu.Unlock() }

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-f.frozen:
			<-make(chan struct{}) // hold everything
		default:
		}
		f.mu.Lock()
		hold := time.Until(f.until)
		f.mu.Unlock()
		time.Sleep(hold)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// proxied is a pool of the app role whose connections all go through a
// freezer.
func proxied(t *testing.T, tdb *pgtest.DB) (*freezer, *pgxpool.Pool) {
	t.Helper()
	f := &freezer{frozen: make(chan struct{})}
	cfg, err := pgxpool.ParseConfig(tdb.AppURL)
	require.NoError(t, err)
	cfg.ConnConfig.DialFunc = f.dial
	return f, open(t, cfg)
}

func (f *freezer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	server, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			server.Close()
			return
		}
		go f.pipe(server, c)
		go f.pipe(c, server)
	}()
	return net.Dial("tcp", ln.Addr().String())
}

// A listener whose connections go half-open just after a heartbeat came
// back must not go on saying every change is heard: the heartbeat's send
// has a deadline, so within a heartbeat or two the caches are back on their
// TTL (1 s here), and a revocation made meanwhile, which nobody heard, is
// refused within two heartbeats plus that TTL. (Review of 2026-12-01: the
// send had no deadline and blocked until TCP gave up, about 15 minutes,
// while the caches kept entries for ExtendedTTL.)
func TestHalfOpenListenerGoesQuiet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	app := tdb.AppPool(t, 4)
	a := onboard(t, admin, "acme")
	resolver, authn := serving(t, app, time.Second)
	f, listenPool := proxied(t, tdb)
	l := invalidation.New(slog.New(slog.DiscardHandler), resolver, authn)
	listen(t, l, invalidation.Source{Name: "default", Pool: listenPool}) // and Run returns with half-open connections
	require.Eventually(t, l.Live, 5*time.Second, 10*time.Millisecond)

	_, err := authn.Authenticate(ctx, a.secret)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // just after a heartbeat came back
	f.freeze()
	_, err = admin.Exec(ctx, "UPDATE api_keys SET revoked_at = now() WHERE id = $1", a.key.ID)
	require.NoError(t, err)
	revoked := time.Now()
	require.Eventually(t, func() bool { return !l.Live() }, 3*invalidation.Heartbeat, 10*time.Millisecond,
		"a half-open listener still says every change is heard")
	require.Eventually(t, func() bool { _, err := authn.Authenticate(ctx, a.secret); return err != nil },
		2*invalidation.Heartbeat+time.Second+2*time.Second, 20*time.Millisecond,
		"a revocation nobody heard passed for longer than two heartbeats plus AUTH_CACHE_TTL")
	t.Logf("refused %v after the revocation", time.Since(revoked).Round(time.Millisecond))
}

// slowCache is an invalidation.Cache whose ForgetTenants takes a while (a
// walk of large caches); it records when it forgot each tenant.
type slowCache struct {
	mu     sync.Mutex
	forgot map[uuid.UUID]time.Time
	delay  time.Duration
}

func (s *slowCache) ForgetTenants(ids map[uuid.UUID]struct{}) {
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range ids {
		s.forgot[id] = time.Now()
	}
}
func (s *slowCache) ForgetAll()     {}
func (s *slowCache) Listening(bool) {}

// A listener that forgets more slowly than changes arrive falls behind; it
// must not say every change is heard while a change committed over about
// two heartbeats ago is still unforgotten. (Review of 2026-12-01: one
// heartbeat payload per connection let a beat from rounds ago pass for the
// current one, and buffered notifications stretched a round: 4.7 s behind
// while live.)
func TestLaggingListenerIsNotLive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	s := &slowCache{forgot: map[uuid.UUID]time.Time{}, delay: 200 * time.Millisecond}
	l := invalidation.New(slog.New(slog.DiscardHandler), s)
	listen(t, l, invalidation.Source{Name: "default", Pool: tdb.AppPool(t, 2)})
	require.Eventually(t, l.Live, 5*time.Second, 10*time.Millisecond)

	// 12 changes a second, each its own transaction, for 6 s; the listener
	// forgets at most 5 bursts a second.
	type change struct {
		id uuid.UUID
		at time.Time
	}
	var mu sync.Mutex
	var sent []change
	var sending atomic.Bool
	sending.Store(true)
	go func() {
		defer sending.Store(false)
		for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(time.Second / 12) {
			id := uuid.New()
			if _, err := admin.Exec(ctx, "SELECT pg_notify($1, $2)", invalidation.Channel, id.String()); err != nil {
				return
			}
			mu.Lock()
			sent = append(sent, change{id, time.Now()})
			mu.Unlock()
		}
	}()
	worst := time.Duration(0)
	for sending.Load() {
		time.Sleep(10 * time.Millisecond)
		if !l.Live() {
			continue
		}
		now := time.Now()
		mu.Lock()
		s.mu.Lock()
		for _, c := range sent {
			if _, ok := s.forgot[c.id]; !ok && now.Sub(c.at) > worst {
				worst = now.Sub(c.at)
			}
		}
		s.mu.Unlock()
		mu.Unlock()
	}
	t.Logf("oldest change unforgotten while live: %v", worst.Round(time.Millisecond))
	require.Less(t, worst, 2*invalidation.Heartbeat+500*time.Millisecond, "live while a change committed over two heartbeats ago was unforgotten")
}

// Behind a transaction pooler (PgBouncer, transaction mode) the LISTEN ends
// with its transaction's server connection: other sessions' notifications
// never reach the listener. serve marks such a cell Unheard at start; if
// one slipped through, the heartbeat, sent from another session, must not
// come back, so the caches stay on their TTL. (Review of 2026-12-01: sent
// from the listening session itself, it came back every time, and a
// revocation passed 3 s later with a TTL of 1 s.)
func TestHeartbeatSeesThroughATransactionPooler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	app := tdb.AppPool(t, 4)
	a := onboard(t, admin, "acme")
	bouncer, err := pgserver.StartPgBouncer(ctx, tdb.AppURL, 2)
	require.NoError(t, err)
	t.Cleanup(bouncer.Stop)
	cfg, err := pgxpool.ParseConfig(bouncer.URL)
	require.NoError(t, err)
	p, err := db.ProbePooler(ctx, cfg.ConnConfig)
	require.NoError(t, err)
	_, err = db.AdaptToPooler(cfg, p)
	require.NoError(t, err)
	pooled := open(t, cfg)

	resolver, authn := serving(t, app, time.Second)
	l := invalidation.New(slog.New(slog.DiscardHandler), resolver, authn)
	listen(t, l, invalidation.Source{Name: "pooled", Pool: pooled})
	_, err = authn.Authenticate(ctx, a.secret)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "UPDATE api_keys SET revoked_at = now() WHERE id = $1", a.key.ID)
	require.NoError(t, err)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		require.False(t, l.Live(), "the heartbeat came back through a transaction pooler")
		time.Sleep(20 * time.Millisecond)
	}
	_, err = authn.Authenticate(ctx, a.secret)
	require.Error(t, err, "a revoked key passed 3 s later with a TTL of 1 s")
}

// counting is an invalidation.Cache that counts ForgetAll calls.
type counting struct{ forgetAll atomic.Int32 }

func (c *counting) ForgetTenants(map[uuid.UUID]struct{}) {}
func (c *counting) ForgetAll()                           { c.forgetAll.Add(1) }
func (c *counting) Listening(bool)                       {}

// A database slow for a few seconds (every byte held, none lost: a commit
// waiting for a lagging synchronous standby holds the lock every NOTIFY
// takes) makes the listener not live, but must not make it connect again:
// a reconnect empties every cache, which would add a herd of lookups to a
// slow database on every instance at once. (Review of 2026-12-01: a
// heartbeat that could not be sent within a second ended the session, and
// the reconnect emptied the caches about once a second.)
func TestSlowDatabaseDoesNotEmptyTheCaches(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	f, pool := proxied(t, tdb)
	c := &counting{}
	l := invalidation.New(slog.New(slog.DiscardHandler), c)
	listen(t, l, invalidation.Source{Name: "default", Pool: pool})
	require.Eventually(t, l.Live, 5*time.Second, 10*time.Millisecond)
	require.EqualValues(t, 1, c.forgetAll.Load())
	f.stall(2500 * time.Millisecond)
	require.Eventually(t, func() bool { return !l.Live() }, 3*invalidation.Heartbeat, 10*time.Millisecond)
	require.Eventually(t, l.Live, 10*time.Second, 10*time.Millisecond, "not live again after the stall")
	require.EqualValues(t, 1, c.forgetAll.Load(), "a database slow for 2.5 s emptied every cache")
}
