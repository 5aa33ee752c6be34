package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/config"
	"github.com/rowfence/rowfence/pgtest"
)

// Issue 17, item 3: a command line that helps. These run the binary itself
// where the exit status or the stream matters (main decides both), and
// run() in-process elsewhere.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// rowfenceBinary builds the serving binary once per test run.
func rowfenceBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rowfence-cli-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "rowfence")
		out, err := exec.Command("go", "build", "-buildvcs=false", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// runBinary runs the built binary with only env as its environment and
// returns its stdout, stderr and exit status.
func runBinary(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rowfenceBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=text"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// helpCommands is every command and subcommand of the CLI.
var helpCommands = [][]string{
	{},
	{"migrate"}, {"migrate", "up"}, {"migrate", "down"}, {"migrate", "status"},
	{"serve"},
	{"tenant"}, {"tenant", "create"}, {"tenant", "list"}, {"tenant", "limits"}, {"tenant", "suspend"},
	{"tenant", "activate"}, {"tenant", "delete"}, {"tenant", "purge"}, {"tenant", "export"}, {"tenant", "import"},
	{"tenant", "move"}, {"cells"}, {"cells", "list"}, {"cells", "placements"}, {"cells", "register"},
	{"tenant", "archive"}, {"tenant", "restore"},
	{"key"}, {"key", "create"}, {"key", "list"}, {"key", "revoke"},
	{"admin"}, {"admin", "key"}, {"admin", "key", "create"}, {"admin", "key", "list"}, {"admin", "key", "revoke"},
	{"audit"}, {"leakcheck"}, {"version"}, {"dev"},
}

// --help and -h at every level: the usage on stdout, nothing on stderr,
// exit 0, and no database or environment needed.
func TestHelpAtEveryLevel(t *testing.T) {
	t.Parallel()
	for _, cmd := range helpCommands {
		for _, flag := range []string{"--help", "-h"} {
			args := append(append([]string{}, cmd...), flag)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				t.Parallel()
				var out, errOut bytes.Buffer
				err := run(context.Background(), append([]string{"rowfence"}, args...), envOf(nil), &out, &errOut)
				require.NoError(t, err)
				require.Zero(t, exitCode(err))
				require.Contains(t, out.String(), "Usage: "+strings.Join(append([]string{"rowfence"}, cmd...), " "))
				require.Empty(t, errOut.String())
			})
		}
	}
	// The process itself: stdout, exit 0; `help X` is `X --help`.
	for _, args := range [][]string{{"--help"}, {"tenant", "import", "--help"}, {"help", "tenant", "import"}, {"serve", "-h"}} {
		out, errOut, status := runBinary(t, nil, args...)
		require.Zero(t, status, "%v: %s", args, errOut)
		require.Contains(t, out, "Usage: rowfence", args)
		require.Empty(t, errOut, args)
	}
}

// helpCommands names every command the parser has, so a new one is in the
// help test (and in its help) the day it is added.
func TestHelpCommandsAreEveryCommand(t *testing.T) {
	t.Parallel()
	parser, err := newParser(io.Discard, io.Discard)
	require.NoError(t, err)
	var declared []string
	var walk func(n *kong.Node, path []string)
	walk = func(n *kong.Node, path []string) {
		declared = append(declared, strings.Join(path, " "))
		for _, c := range n.Children {
			if c.Type == kong.CommandNode {
				walk(c, append(append([]string{}, path...), c.Name))
			}
		}
	}
	walk(parser.Model.Node, nil)
	var listed []string
	for _, c := range helpCommands {
		listed = append(listed, strings.Join(c, " "))
	}
	require.ElementsMatch(t, declared, listed)
}

// serve --help lists the variables serve reads, from the one table, and no
// others; the top level lists the exit statuses and every variable.
func TestHelpListsTheEnvironmentAndExitStatuses(t *testing.T) {
	t.Parallel()
	out, err := runCmd(t, nil, "serve", "--help")
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(out, "\nEnvironment (empty is unset):\n"+config.Usage("serve")), out)
	require.Contains(t, out, "\n  TENANT_CACHE_TTL ")
	require.NotContains(t, out, "LEAKCHECK_KEY_A")

	out, err = runCmd(t, nil, "leakcheck", "--help")
	require.NoError(t, err)
	require.Contains(t, out, "LEAKCHECK_KEY_A")
	require.NotContains(t, out, "TENANT_CACHE_TTL")

	out, err = runCmd(t, nil, "--help")
	require.NoError(t, err)
	for _, status := range []string{"\n  0  ", "\n  1  ", "\n  2  ", "\n  3  "} {
		require.Contains(t, out, status)
	}
	require.True(t, strings.HasSuffix(out, "\nEnvironment (read by the commands in brackets; empty is unset):\n"+config.Usage("")), out)
}

// Flags may follow positional arguments, for every command that has any.
func TestFlagsAfterPositionals(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL}
	_, err := runCmd(t, env, "tenant", "create", "--slug", "acme", "--name", "Acme", "--admin-email", "a@acme.example")
	require.NoError(t, err)
	file := t.TempDir() + "/acme.jsonl"
	_, err = runCmd(t, env, "tenant", "export", "--slug", "acme", "--out", file)
	require.NoError(t, err)
	out, err := runCmd(t, env, "tenant", "import", file, "--slug", "acme-copy", "--name", "Acme copy")
	require.NoError(t, err, out)
	require.Contains(t, out, `"slug": "acme-copy"`)
	require.Contains(t, out, `"name": "Acme copy"`)
	// And the old order still works.
	out, err = runCmd(t, env, "tenant", "import", "--slug", "acme-again", file)
	require.NoError(t, err, out)
	require.Contains(t, out, `"slug": "acme-again"`)
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// The exit statuses a CI job tells apart: 0 clean, 1 a finding or a leak,
// 2 a usage error, 3 could not run.
func TestExitStatuses(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	finding := pgtest.New(t)
	_, err := finding.AdminPool(t).Exec(context.Background(), "alter table products no force row level security")
	require.NoError(t, err)
	dead := closedAddr(t)
	deadDB := "postgres://rowfence@" + dead + "/rowfence?sslmode=disable&connect_timeout=5"
	deadURL := "http://" + dead
	keys := map[string]string{"LEAKCHECK_KEY_A": "rfk_a", "LEAKCHECK_KEY_B": "rfk_b"}
	clean := map[string]string{"DATABASE_URL": tdb.AdminURL}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		status int
	}{
		{"clean audit", clean, []string{"audit"}, 0},
		{"clean migrate status", clean, []string{"migrate", "status"}, 0},
		{"clean tenant list", clean, []string{"tenant", "list"}, 0},
		{"audit finding", map[string]string{"DATABASE_URL": finding.AdminURL}, []string{"audit"}, 1},
		{"audit finding, json", map[string]string{"DATABASE_URL": finding.AdminURL}, []string{"audit", "--format", "json"}, 1},

		{"no command", nil, nil, 2},
		{"unknown command", nil, []string{"frobnicate"}, 2},
		{"unknown subcommand", clean, []string{"tenant", "frobnicate"}, 2},
		{"unknown migrate action", clean, []string{"migrate", "sideways"}, 2},
		{"unknown flag", clean, []string{"tenant", "list", "--bogus"}, 2},
		{"missing flag", clean, []string{"tenant", "suspend"}, 2},
		{"missing argument", clean, []string{"tenant", "import", "--slug", "acme"}, 2},
		{"bad flag value", clean, []string{"audit", "--format", "yaml"}, 2},
		{"bad duration", clean, []string{"tenant", "delete", "--slug", "acme", "--grace", "soon"}, 2},
		{"bad environment", map[string]string{"LOG_FORMAT": "xml", "DATABASE_URL": tdb.AdminURL}, []string{"audit"}, 2},
		{"no DATABASE_URL", nil, []string{"audit"}, 2},
		{"leakcheck without tenants", nil, []string{"leakcheck", "--url", deadURL}, 2},
		{"leakcheck URL without a scheme", keys, []string{"leakcheck", "--url", dead, "--tenant-a", "aaa", "--tenant-b", "bbb"}, 2},

		{"audit, database unreachable", map[string]string{"DATABASE_URL": deadDB}, []string{"audit"}, 3},
		{"migrate, database unreachable", map[string]string{"DATABASE_URL": deadDB}, []string{"migrate"}, 3},
		{"migrate status, database unreachable", map[string]string{"DATABASE_URL": deadDB}, []string{"migrate", "status"}, 3},
		{"tenant list, database unreachable", map[string]string{"DATABASE_URL": deadDB}, []string{"tenant", "list"}, 3},
		{"tenant create, database unreachable", map[string]string{"DATABASE_URL": deadDB},
			[]string{"tenant", "create", "--slug", "acme", "--name", "Acme", "--admin-email", "a@acme.example"}, 3},
		{"key list, database unreachable", map[string]string{"DATABASE_URL": deadDB}, []string{"key", "list", "--tenant", "acme"}, 3},
		{"leakcheck, dead URL", keys, []string{"leakcheck", "--url", deadURL, "--tenant-a", "aaa", "--tenant-b", "bbb"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, errOut, status := runBinary(t, tc.env, tc.args...)
			require.Equal(t, tc.status, status, "rowfence %v:\n%s", tc.args, errOut)
			if status != 0 {
				require.NotEmpty(t, errOut, "a failure says why on stderr")
			}
		})
	}
}

func countTenants(t *testing.T, tdb *pgtest.DB) int {
	t.Helper()
	var n int
	require.NoError(t, tdb.AdminPool(t).QueryRow(context.Background(), "select count(*) from tenants").Scan(&n))
	return n
}

// leakcheck --create checks that the deployment answers before it creates
// anything, and deletes the two tenants it created however it ends.
func TestLeakcheckCreateLeavesNoTenants(t *testing.T) {
	t.Parallel()
	t.Run("dead URL", func(t *testing.T) {
		t.Parallel()
		tdb := pgtest.New(t)
		_, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, "leakcheck", "--url", "http://"+closedAddr(t), "--create")
		require.Error(t, err)
		require.Equal(t, 3, exitCode(err), err)
		require.Zero(t, countTenants(t, tdb), "nothing created for a deployment that does not answer")
	})
	t.Run("server error while seeding", func(t *testing.T) {
		t.Parallel()
		tdb := pgtest.New(t)
		broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}))
		defer broken.Close()
		_, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, "leakcheck", "--url", broken.URL, "--create")
		require.Error(t, err)
		require.Equal(t, 3, exitCode(err), err)
		require.Zero(t, countTenants(t, tdb))
	})
	t.Run("interrupted", func(t *testing.T) {
		t.Parallel()
		tdb := pgtest.New(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The first write stands for a SIGINT arriving mid-run: main's
		// context is cancelled, as signal.NotifyContext does.
		hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				_, _ = io.Copy(io.Discard, r.Body) // so the server sees the client go
				cancel()
				select { // until the client gives up, which it must
				case <-r.Context().Done():
				case <-time.After(20 * time.Second):
				}
				return
			}
			w.WriteHeader(http.StatusNotFound)
		}))
		defer hanging.Close()
		var out bytes.Buffer
		err := run(ctx, []string{"rowfence", "leakcheck", "--url", hanging.URL, "--create"},
			envOf(map[string]string{"DATABASE_URL": tdb.AdminURL}), &out, io.Discard)
		require.Error(t, err)
		require.Equal(t, 3, exitCode(err), err)
		require.Zero(t, countTenants(t, tdb))
	})
	t.Run("clean run", func(t *testing.T) {
		t.Parallel()
		tdb := pgtest.New(t)
		base, _, _ := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL}, "serve")
		out, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, "leakcheck", "--url", base, "--create")
		require.NoError(t, err, out)
		require.Contains(t, out, ", 0 leak(s)")
		require.Zero(t, countTenants(t, tdb), "its two tenants deleted, with their rows")
	})
}
