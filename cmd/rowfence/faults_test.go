package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/migrate"
	"github.com/rowfence/rowfence/pgserver"
	"github.com/rowfence/rowfence/pgtest"
)

// PostgreSQL crashes and comes back under load: while it is down rowfence
// answers 503 (never a 500, never a hang), it recovers on its own within
// seconds, and every write it acknowledged with a 201 is in the database
// afterwards.
func TestDatabaseCrashUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A server of our own to crash, with durable commits (the test clusters
	// trade durability for speed; this one must not).
	srv, err := pgserver.Start(ctx, pgserver.Options{Settings: []string{"fsync=on", "synchronous_commit=on"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	m, err := migrate.New(srv.URL, nil)
	require.NoError(t, err)
	require.NoError(t, migrateUp(ctx, m, "", ""))
	m.Close()
	adminCfg, err := pgxpool.ParseConfig(srv.URL)
	require.NoError(t, err)
	admin, err := db.Open(ctx, adminCfg)
	require.NoError(t, err)
	o, err := lifecycle.Onboard(ctx, admin, lifecycle.Tenant{Slug: "acme", Name: "Acme", AdminEmail: "a@acme.example"})
	admin.Close()
	require.NoError(t, err)

	base, logs, stop := startServer(t, map[string]string{"DATABASE_URL": srv.URL, "STATEMENT_TIMEOUT": "2s",
		"REQUEST_TIMEOUT": "3s", "ACQUIRE_TIMEOUT": "1s", "RATE_LIMIT": "0", "TENANT_CONCURRENCY": "0"}, "serve")
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(i int) (int, string) {
		req, _ := http.NewRequest("POST", base+"/v1/products", strings.NewReader(fmt.Sprintf(`{"name":"p%d","price":%d}`, i, i)))
		req.Header.Set("X-Tenant-ID", "acme")
		req.Header.Set("Authorization", "Bearer "+o.Key)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return -1, err.Error()
		}
		defer res.Body.Close()
		var body struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		if res.StatusCode == 503 && res.Header.Get("Retry-After") == "" {
			return -2, "503 without Retry-After"
		}
		return res.StatusCode, body.ID
	}

	var (
		mu       sync.Mutex
		acked    []string
		statuses = map[int]int{}
		phase    atomic.Int32 // 0 before, 1 down, 2 after
		downSeen = map[int]int{}
		n        atomic.Int64
		done     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				status, id := post(int(n.Add(1)))
				mu.Lock()
				statuses[status]++
				if phase.Load() == 1 {
					downSeen[status]++
				}
				if status == 201 {
					acked = append(acked, id)
				}
				mu.Unlock()
				if status != 201 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(time.Second)
	require.NoError(t, srv.Bounce(ctx, func() {
		phase.Store(1)
		time.Sleep(2 * time.Second)
	}))
	// Recovery: writes succeed again within a second of the server's return
	// (asserted below; waited for up to 10 s to report a slower one).
	phase.Store(2)
	back := time.Now()
	require.Eventually(t, func() bool {
		status, id := post(int(n.Add(1)))
		if status == 201 {
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		}
		return status == 201
	}, 10*time.Second, 50*time.Millisecond, "rowfence did not recover after the database came back; statuses %v\n%s", statuses, logs)
	recovered := time.Since(back)
	time.Sleep(time.Second)
	close(done)
	wg.Wait()

	t.Logf("statuses %v; while down %v; recovered %s after restart; %d writes acknowledged", statuses, downSeen, recovered, len(acked))
	require.Positive(t, downSeen[503], "while the database was down, requests got 503")
	require.Less(t, recovered, time.Second, "serving again within a second of the restart (one probe every db.ConnectBackoff)")
	for status := range statuses {
		require.Contains(t, []int{201, 503}, status, "only 201 or 503, never a 500 or a hang: %v\n%s", statuses, logs)
	}

	// Every acknowledged write survived the crash.
	check, err := pgxpool.ParseConfig(srv.URL)
	require.NoError(t, err)
	admin, err = db.Open(ctx, check)
	require.NoError(t, err)
	defer admin.Close()
	var missing int
	require.NoError(t, admin.QueryRow(ctx, `select count(*) from unnest($1::uuid[]) as a(id)
		where not exists (select 1 from products p where p.id = a.id)`, acked).Scan(&missing))
	require.Zero(t, missing, "acknowledged writes lost")
	require.NoError(t, stop())
}

// SIGTERM under load: requests in flight finish, new connections are
// refused, and serve returns nil (exit status 0).
func TestGracefulShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	o, err := lifecycle.Onboard(ctx, tdb.AdminPool(t), lifecycle.Tenant{Slug: "acme", Name: "Acme", AdminEmail: "a@acme.example"})
	require.NoError(t, err)
	base, _, stop := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL, "SHUTDOWN_TIMEOUT": "20s", "TENANT_CONCURRENCY": "0"}, "serve")
	status, product := httpDo(t, "POST", base+"/v1/products", "acme", o.Key, `{"name":"p","price":1}`)
	require.Equal(t, 201, status)
	id := product["id"].(string)

	// Hold three requests in flight behind a row lock.
	admin := tdb.AdminPool(t)
	lock, err := admin.Begin(ctx)
	require.NoError(t, err)
	defer lock.Rollback(ctx)
	_, err = lock.Exec(ctx, "select 1 from products where id = $1 for update", id)
	require.NoError(t, err)
	inFlight := make(chan int, 3)
	for i := range 3 {
		go func() {
			status, _ := httpDo(t, "PATCH", base+"/v1/products/"+id, "acme", o.Key, fmt.Sprintf(`{"price":%d}`, i+2))
			inFlight <- status
		}()
	}
	require.Eventually(t, func() bool {
		var n int
		_ = admin.QueryRow(ctx, "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()").Scan(&n)
		return n == 3
	}, 10*time.Second, 20*time.Millisecond)

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// New connections are refused once shutdown has begun.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	require.Eventually(t, func() bool {
		res, err := fresh.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err != nil
	}, 5*time.Second, 20*time.Millisecond, "new connections must be refused during shutdown")
	select {
	case err := <-stopped:
		t.Fatalf("serve returned while requests were in flight: %v", err)
	default:
	}
	require.NoError(t, lock.Rollback(ctx))
	for range 3 {
		require.Equal(t, 200, <-inFlight, "an in-flight request finished normally")
	}
	select {
	case err := <-stopped:
		require.NoError(t, err, "exit status 0")
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after its requests finished")
	}
}

// pgProxy stands between serve and PostgreSQL on a TCP port of its own and
// plays the server's outages. "up" forwards to the server; "refuse" listens
// no more, so dials are refused, as when PostgreSQL is down; "blackhole"
// listens with a full accept queue, so the kernel drops every SYN and dials
// hang until their timeout, as when the host or the network is gone.
// Leaving "up" cuts every connection, as a crash does.
type pgProxy struct {
	addr          string
	port          int
	network, dest string

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	holeFD  int // the blackhole's listening socket, -1 when none
	holeFil net.Conn
}

func startPGProxy(t *testing.T, serverURL string) *pgProxy {
	t.Helper()
	cfg, err := pgx.ParseConfig(serverURL)
	require.NoError(t, err)
	p := &pgProxy{network: "tcp", dest: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))),
		conns: map[net.Conn]struct{}{}, holeFD: -1}
	if strings.HasPrefix(cfg.Host, "/") {
		p.network, p.dest = "unix", filepath.Join(cfg.Host, fmt.Sprintf(".s.PGSQL.%d", cfg.Port))
	}
	// Outside the ephemeral range, or a refused dial could connect to itself.
	p.port, err = pgserver.FreePort()
	require.NoError(t, err)
	p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
	p.set(t, "up")
	t.Cleanup(func() { p.set(t, "refuse") })
	return p
}

// url is serverURL's role, password and database through the proxy.
func (p *pgProxy) url(t *testing.T, serverURL string, params string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(serverURL)
	require.NoError(t, err)
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable&%s", cfg.User, cfg.Password, p.addr, cfg.Database, params)
}

func (p *pgProxy) set(t *testing.T, mode string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	if p.holeFD >= 0 {
		if p.holeFil != nil {
			p.holeFil.Close()
			p.holeFil = nil
		}
		syscall.Close(p.holeFD)
		p.holeFD = -1
	}
	switch mode {
	case "refuse":
	case "blackhole":
		// A backlog of 0 holds one connection; once it is queued (and never
		// accepted), Linux drops further SYNs (tcp_abort_on_overflow = 0).
		// CLOEXEC: a process started meanwhile (a test's postgres) must not
		// inherit the socket and keep the port.
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		require.NoError(t, syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1))
		require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Port: p.port, Addr: [4]byte{127, 0, 0, 1}}))
		require.NoError(t, syscall.Listen(fd, 0))
		p.holeFD = fd
		// Fill the queue's one place ourselves. If a dial of the server
		// under test got there first, the queue is full already and ours
		// times out: the port is a black hole either way.
		p.holeFil, err = net.DialTimeout("tcp", p.addr, 500*time.Millisecond)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			require.NoError(t, err)
		}
	case "up":
		ln, err := net.Listen("tcp", p.addr)
		require.NoError(t, err)
		p.ln = ln
		go p.forward(ln)
	default:
		t.Fatalf("unknown proxy mode %q", mode)
	}
}

func (p *pgProxy) forward(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial(p.network, p.dest)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // switched meanwhile
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() { _, _ = io.Copy(c, s); c.Close() }()
	}
}

// countDials counts the dials of the pool built from cfg (connections and
// cancel requests).
func countDials(cfg *pgxpool.Config) *atomic.Int64 {
	var n atomic.Int64
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return dial(ctx, network, addr)
	}
	return &n
}

// serveConfigOf is serve's configuration in environment env.
func serveConfigOf(env map[string]string) (serveConfig, error) {
	c, err := config.Load(envOf(env), "serve")
	if err != nil {
		return serveConfig{}, err
	}
	return newServeConfig(c)
}

// serveInBackground runs serve with cfg until the test ends and waits for
// /healthz.
func serveInBackground(t *testing.T, cfg serveConfig) (base string, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil))) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-errc:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	base = "http://" + cfg.Addr
	require.Eventually(t, func() bool {
		select {
		case err := <-errc:
			t.Fatalf("serve exited: %v\n%s", err, logs)
		default:
		}
		res, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	}, 30*time.Second, 20*time.Millisecond)
	return base, logs
}

// An outage is not a connection storm (issue #14 item 9: each failing
// request dialled anew, about 235 attempts a second with 8 writers). While
// PostgreSQL refuses connections, and while its host drops them, requests
// on both of serve's pools (the app pool; the platform pool, which River
// shares) get a 503 problem with Retry-After at once, each pool dials at a
// bounded rate, and within a second of the server's return requests succeed
// again.
func TestOutageIsNotAConnectionStorm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	o, err := lifecycle.Onboard(ctx, tdb.AdminPool(t), lifecycle.Tenant{Slug: "acme", Name: "Acme", AdminEmail: "a@acme.example"})
	require.NoError(t, err)
	out, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, "admin", "key", "create", "--name", "ops")
	require.NoError(t, err)
	var platformKey struct{ Key string }
	require.NoError(t, json.Unmarshal([]byte(out), &platformKey))

	proxy := startPGProxy(t, tdb.AppURL)
	env := map[string]string{"APP_DATABASE_URL": proxy.url(t, tdb.AppURL, "connect_timeout=1"),
		"PLATFORM_DATABASE_URL": proxy.url(t, tdb.PlatformURL, "connect_timeout=1"), "ADDR": freeAddr(t),
		"ACQUIRE_TIMEOUT": "1s", "STATEMENT_TIMEOUT": "2s", "REQUEST_TIMEOUT": "3s", "RATE_LIMIT": "0", "TENANT_CONCURRENCY": "0"}
	cfg, err := serveConfigOf(env)
	require.NoError(t, err)
	appDials, platformDials := countDials(cfg.pool), countDials(cfg.platform)
	base, logs := serveInBackground(t, cfg)

	type result struct {
		phase       int32 // -1: began in one phase and ended in another
		status      int
		at          time.Time
		took        time.Duration
		retryAfter  bool
		problemJSON bool
	}
	var (
		phase   atomic.Int32 // 0 up, 1 refused, 2 back, 3 blackhole, 4 back; -1 switching
		mu      sync.Mutex
		results []result
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, path, key, body string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("X-Tenant-ID", "acme")
			req.Header.Set("Content-Type", "application/json")
		}
		start := time.Now()
		p := phase.Load()
		res, err := client.Do(req)
		r := result{phase: p, status: -1, at: start}
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			r.status = res.StatusCode
			r.retryAfter = res.Header.Get("Retry-After") != ""
			r.problemJSON = res.Header.Get("Content-Type") == "application/problem+json"
		}
		r.took = time.Since(start)
		if phase.Load() != p {
			r.phase = -1
		}
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
		if r.status >= 500 {
			time.Sleep(10 * time.Millisecond) // a client that retries at once
		}
	}
	for i := range 8 { // 8 writers, as in the report
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				do("POST", "/v1/products", o.Key, fmt.Sprintf(`{"name":"w%d-%d","price":1}`, i, n))
			}
		})
	}
	wg.Go(func() { // and a platform administrator
		for {
			select {
			case <-stop:
				return
			default:
			}
			do("GET", "/v1/admin/tenants", platformKey.Key, "")
		}
	})

	// outage switches the proxy to mode for d and returns each pool's dials.
	outage := func(mode string, p int32, d time.Duration) (app, platform int64) {
		a0, p0 := appDials.Load(), platformDials.Load()
		phase.Store(-1) // requests under way across the switch count in no phase
		proxy.set(t, mode)
		phase.Store(p) // requests counted in p begin after the switch
		time.Sleep(d)
		return appDials.Load() - a0, platformDials.Load() - p0
	}
	// recover brings the server back and returns how long each pool took to
	// answer a request with success again.
	recover := func(p int32) (app, platform time.Duration) {
		back := time.Now()
		phase.Store(-1)
		proxy.set(t, "up")
		phase.Store(p)
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			app, platform = 0, 0
			for _, r := range results {
				if !r.at.After(back) || r.status/100 != 2 {
					continue
				}
				d := r.at.Add(r.took).Sub(back)
				if r.status == 201 && (app == 0 || d < app) {
					app = d
				}
				if r.status == 200 && (platform == 0 || d < platform) {
					platform = d
				}
			}
			return app > 0 && platform > 0
		}, 10*time.Second, 10*time.Millisecond, "requests succeed again once the server is back\n%s", logs)
		return app, platform
	}

	const window = 3 * time.Second
	time.Sleep(500 * time.Millisecond)
	refusedApp, refusedPlatform := outage("refuse", 1, window)
	backApp, backPlatform := recover(2)
	time.Sleep(500 * time.Millisecond)
	holeApp, holePlatform := outage("blackhole", 3, window)
	back2App, back2Platform := recover(4)
	close(stop)
	wg.Wait()

	count := map[int32]map[int]int{}
	var slow, total [5]int
	for _, r := range results {
		if r.phase < 0 {
			continue
		}
		if count[r.phase] == nil {
			count[r.phase] = map[int]int{}
		}
		count[r.phase][r.status]++
		total[r.phase]++
		if r.took > 100*time.Millisecond {
			slow[r.phase]++
		}
	}
	perSecond := func(n int64) float64 { return float64(n) / window.Seconds() }
	t.Logf("dial attempts/s while refused: app %.1f, platform %.1f; in the blackhole: app %.1f, platform %.1f",
		perSecond(refusedApp), perSecond(refusedPlatform), perSecond(holeApp), perSecond(holePlatform))
	t.Logf("statuses by phase (0 up, 1 refused, 2 back, 3 blackhole, 4 back): %v", count)
	t.Logf("answers over 100 ms: refused %d of %d, blackhole %d of %d", slow[1], total[1], slow[3], total[3])
	t.Logf("first success after the server came back: app %s, platform %s; after the blackhole %s, %s",
		backApp, backPlatform, back2App, back2Platform)

	for _, r := range results {
		if r.phase == 1 || r.phase == 3 {
			require.Equal(t, 503, r.status, "phase %d: only 503 while the server is away", r.phase)
			require.True(t, r.retryAfter && r.problemJSON, "a 503 is a problem with Retry-After")
		}
	}
	// Per pool: one probe per ConnectBackoff, plus, when the outage began,
	// the attempts under way and a cancel request for each broken
	// connection (pgconn sends one), at most MaxConns of each.
	for _, c := range []struct {
		name  string
		dials int64
		max   int32
	}{{"app, refused", refusedApp, cfg.pool.MaxConns}, {"platform, refused", refusedPlatform, cfg.platform.MaxConns},
		{"app, blackhole", holeApp, cfg.pool.MaxConns}, {"platform, blackhole", holePlatform, cfg.platform.MaxConns}} {
		bound := int64(window/db.ConnectBackoff) + 1 + 2*int64(c.max)
		require.LessOrEqual(t, c.dials, bound, "%s: dials in %s", c.name, window)
	}
	// At once: only the requests that wait on a probe are slow, and, in the
	// blackhole, those that wait on the attempts under way when it began
	// (connect_timeout, 1 s). Before, every request there waited for its own.
	require.LessOrEqual(t, slow[1], total[1]/50, "refused: requests answered at once")
	require.LessOrEqual(t, slow[3], total[3]/10, "blackhole: requests answered at once, not after a connect timeout")
	// A restart (refused meanwhile): within a second, ConnectBackoff in
	// fact. Dropped SYNs: the probe's handshake is cut after
	// ProbeDialTimeout, and the next probe connects.
	require.Less(t, backApp, time.Second, "serving again within a second of the server's return")
	require.Less(t, backPlatform, time.Second, "serving again within a second of the server's return")
	require.Less(t, back2App, db.ProbeDialTimeout+db.ConnectBackoff+250*time.Millisecond, "after the blackhole")
	require.Less(t, back2Platform, db.ProbeDialTimeout+db.ConnectBackoff+250*time.Millisecond, "after the blackhole")
}
