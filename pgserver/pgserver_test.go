package pgserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestCanReach(t *testing.T) {
	t.Parallel()
	base, err := os.MkdirTemp("", "rf-reach-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	open := filepath.Join(base, "open", "project")
	closed := filepath.Join(base, "closed", "project")
	require.NoError(t, os.MkdirAll(open, 0o755))
	require.NoError(t, os.MkdirAll(closed, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(closed), 0o700))
	require.NoError(t, os.Chmod(base, 0o755))
	// An account that owns none of these folders, like postgres under root.
	stranger := &runAs{uid: 54321, gid: 54321}
	if !stranger.canReach(filepath.Dir(base)) {
		t.Skip("the temp dir's parents are not searchable by others here")
	}
	require.True(t, stranger.canReach(open))
	require.False(t, stranger.canReach(closed), "a 0700 parent blocks the server account")
	var self *runAs
	require.True(t, self.canReach(closed), "not root: the current user runs the server")
}

func TestRedact(t *testing.T) {
	t.Parallel()
	require.Equal(t, "postgres://u:xxxxx@h:5432/db", Redact("postgres://u:secret@h:5432/db"))
	require.Equal(t, "postgres://u@h/db", Redact("postgres://u@h/db"))
}

// The Docker option must be chosen where a daemon answers; where none does
// (as on the machines this project is built on) the test says so and skips.
func TestDockerOption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if !dockerAnswers(ctx) {
		t.Skip("no Docker daemon answers here: the testcontainers option is not exercised")
	}
	s, err := startContainer(ctx, nil)
	require.NoError(t, err)
	defer s.Stop(ctx)
	require.Equal(t, "docker", s.Source)
	require.NoError(t, waitReady(ctx, s.URL, 10*time.Second))
}

func TestLocalClusterIsKeptAndReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bindir, err := findBinDir()
	if err != nil {
		t.Skip("no PostgreSQL server binaries here")
	}
	base, err := os.MkdirTemp("", "rf-keep-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o755))
	t.Cleanup(func() { os.RemoveAll(base) })
	dataDir := filepath.Join(base, "pgdata")

	s, err := startLocal(ctx, bindir, dataDir, false, nil)
	require.NoError(t, err)
	execSQL(t, s.URL, "create table kept (v int); insert into kept values (42)")
	lo, hi := ephemeralRange()
	port := one(t, s.URL, "select current_setting('port')::int")
	require.False(t, port >= lo && port <= hi, "the cluster's TCP port %d must lie outside the ephemeral range %d-%d", port, lo, hi)

	require.FileExists(t, filepath.Join(dataDir, MarkerFile), "marked as ours")

	// While it runs, a second start finds it rather than starting another;
	// being ours, it passes the check of `rowfence dev` (ownOnly).
	found, err := startLocal(ctx, bindir, dataDir, true, nil)
	require.NoError(t, err)
	require.Equal(t, 42, one(t, found.URL, "select v from kept"))
	require.NoError(t, found.Stop(ctx), "a found server is left alone")
	require.Equal(t, 42, one(t, s.URL, "select v from kept"))
	require.NoError(t, s.Stop(ctx))

	again, err := startLocal(ctx, bindir, dataDir, true, nil)
	require.NoError(t, err)
	require.Equal(t, 42, one(t, again.URL, "select v from kept"), "data survives a restart")
	require.NoError(t, again.Stop(ctx))
	require.FileExists(t, filepath.Join(dataDir, "PG_VERSION"))
}

// `rowfence dev` seeds public demo keys, so it starts (OwnClusterOnly) only
// a cluster pgserver created: a data directory holding anything else, such
// as a real cluster named by --data, is refused before anything runs.
func TestOwnClusterOnlyRefusesOthers(t *testing.T) {
	t.Parallel()
	base, err := os.MkdirTemp("", "rf-own-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(base, 0o755)) // reachable by the postgres user under root
	t.Cleanup(func() { os.RemoveAll(base) })
	require.NoError(t, checkOwn(filepath.Join(base, "absent")), "created by us next")
	empty := filepath.Join(base, "empty")
	require.NoError(t, os.Mkdir(empty, 0o700))
	require.NoError(t, checkOwn(empty), "initdb fills it")

	foreign := filepath.Join(base, "foreign")
	require.NoError(t, os.Mkdir(foreign, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(foreign, "PG_VERSION"), []byte("15\n"), 0o600))
	require.ErrorIs(t, checkOwn(foreign), ErrForeignCluster)
	_, err = startLocal(context.Background(), "/nonexistent", foreign, true, nil)
	require.ErrorIs(t, err, ErrForeignCluster, "refused before initdb or postgres would run")
	if _, binErr := findBinDir(); binErr == nil && !dockerAnswers(context.Background()) {
		// Start passes the option on (with Docker, a container of our own
		// would be used instead of any data directory).
		_, err = Start(context.Background(), Options{DataDir: foreign, OwnClusterOnly: true})
		require.ErrorIs(t, err, ErrForeignCluster)
	}

	require.NoError(t, os.WriteFile(filepath.Join(foreign, MarkerFile), nil, 0o600))
	require.NoError(t, checkOwn(foreign), "marked: created by pgserver")
}

// As root the server runs as postgres, which cannot enter a 0700 folder: the
// cluster then goes to the temp dir instead of failing.
func TestLocalClusterFallsBackFromUnreachableFolder(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to the postgres user")
	}
	ctx := context.Background()
	bindir, err := findBinDir()
	if err != nil {
		t.Skip("no PostgreSQL server binaries here")
	}
	private, err := os.MkdirTemp("", "rf-private-") // 0700, root's
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(private) })
	dataDir := filepath.Join(private, "project", ".pgdata")
	require.NoError(t, os.MkdirAll(filepath.Dir(dataDir), 0o755))
	sum := sha256.Sum256([]byte(dataDir))
	fallback := filepath.Join(os.TempDir(), "rowfence-pgdata-"+hex.EncodeToString(sum[:4]))
	t.Cleanup(func() { os.RemoveAll(fallback) })

	s, err := startLocal(ctx, bindir, dataDir, false, nil)
	require.NoError(t, err)
	defer s.Stop(ctx)
	require.Equal(t, 1, one(t, s.URL, "select 1"))
	require.FileExists(t, filepath.Join(fallback, "PG_VERSION"))
	require.NoDirExists(t, dataDir)
}

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), sql)
	require.NoError(t, err)
}

func one(t *testing.T, url, sql string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var v int
	require.NoError(t, conn.QueryRow(context.Background(), sql).Scan(&v))
	return v
}

// Servers we start listen outside the kernel's ephemeral port range: inside
// it, a client dialling the port while the server is down can be connected
// to itself (the kernel picks the same number as the source port), and the
// socket then holds the port so that the server cannot start again
// (issue #14 item 9). The old picker (listen on port 0) always returned a
// port inside the range.
func TestFreePortIsOutsideTheEphemeralRange(t *testing.T) {
	t.Parallel()
	lo, hi := ephemeralRange()
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		require.Equal(t, strings.Join(strings.Fields(string(raw)), " "), fmt.Sprintf("%d %d", lo, hi), "the kernel's range is read")
	}
	for range 200 {
		port, err := FreePort()
		require.NoError(t, err)
		require.True(t, port > 1023 && port <= 65535, "port %d", port)
		require.False(t, port >= lo && port <= hi, "port %d is inside the ephemeral range %d-%d", port, lo, hi)
	}
}
