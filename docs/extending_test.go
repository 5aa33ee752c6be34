// Package docs_test follows docs/EXTENDING.md on a copy of the repository,
// so that the guide cannot drift from what the checks require.
package docs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/leakcheck"
	"github.com/rowfence/rowfence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// step is one marked block of the guide: a file to create, a block to insert
// after the one line of a file that matches an anchor, or shell commands.
type step struct {
	action, file, anchor, body string
}

var stepPattern = regexp.MustCompile("(?s)<!-- extending: (new|after|run)(?: ([^ |]+))?(?: \\| (.*?))? -->\n```[a-z]*\n(.*?)```")

// guideSteps reads the marked blocks of docs/EXTENDING.md, in order.
func guideSteps(t *testing.T) []step {
	t.Helper()
	raw, err := os.ReadFile("EXTENDING.md")
	require.NoError(t, err)
	var steps []step
	for _, m := range stepPattern.FindAllStringSubmatch(string(raw), -1) {
		steps = append(steps, step{action: m[1], file: m[2], anchor: m[3], body: m[4]})
	}
	// Every marker must have become a step: a typo in one would silently
	// skip a block of the guide.
	require.Equal(t, strings.Count(string(raw), "<!-- extending: "), len(steps), "a marker the test does not understand")
	return steps
}

// insertAfter puts block after the line equal to anchor (else the one line
// containing it).
func insertAfter(t *testing.T, text, anchor, block, file string) string {
	t.Helper()
	lines := strings.SplitAfter(text, "\n")
	var exact, partial []int
	for i, l := range lines {
		switch {
		case strings.TrimRight(l, " \n") == anchor:
			exact = append(exact, i)
		case strings.Contains(l, anchor):
			partial = append(partial, i)
		}
	}
	at := exact
	if len(at) == 0 {
		at = partial
	}
	require.Len(t, at, 1, "the guide's anchor %q must match one line of %s", anchor, file)
	return strings.Join(lines[:at[0]+1], "") + block + strings.Join(lines[at[0]+1:], "")
}

// copyRepository copies the repository's files (tracked or not ignored)
// into dir.
func copyRepository(t *testing.T, dir string) {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "-z").Output()
	require.NoError(t, err, "git ls-files")
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		body, err := os.ReadFile(filepath.Join(root, name))
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		require.NoError(t, err)
		info, err := os.Stat(filepath.Join(root, name))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), body, info.Mode().Perm()))
	}
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	// -trimpath: the copy's packages build without its (random) directory
	// in them, so the build cache serves the next run.
	cmd.Env = append(append(os.Environ(), "GOFLAGS=-trimpath "+os.Getenv("GOFLAGS")), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// TestExtendingGuide follows docs/EXTENDING.md on a copy of the repository:
// applies every block to the file it names, runs its commands (sqlc, vet,
// the Go tests that know every tenant table, pgTAP), builds the binary,
// migrates a database, audits it (clean, and each planted defect
// reported), serves it, and lets leakcheck discover and attack /v1/notes
// (no leak, and a planted one found).
func TestExtendingGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests a copy of the repository")
	}
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	copyRepository(t, dir)
	steps := guideSteps(t)
	var commands []string
	for _, s := range steps {
		switch s.action {
		case "new":
			path := filepath.Join(dir, s.file)
			_, err := os.Stat(path)
			require.True(t, os.IsNotExist(err), "the guide creates %s, which exists", s.file)
			require.NoError(t, os.WriteFile(path, []byte(s.body), 0o644))
		case "after":
			path := filepath.Join(dir, s.file)
			text, err := os.ReadFile(path)
			require.NoError(t, err, "the guide changes %s", s.file)
			require.NoError(t, os.WriteFile(path, []byte(insertAfter(t, string(text), s.anchor, s.body, s.file)), 0o644))
		case "run":
			sc := bufio.NewScanner(strings.NewReader(s.body))
			for sc.Scan() {
				if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
					commands = append(commands, line)
				}
			}
		}
	}
	require.Contains(t, commands, "go tool sqlc generate")
	for _, c := range commands {
		start := time.Now()
		out := run(t, dir, nil, "sh", "-c", c)
		if strings.HasPrefix(c, "gofmt -l") {
			require.Empty(t, out, "gofmt")
		}
		t.Logf("$ %s (%s)\n%s", c, time.Since(start).Round(time.Second), out)
	}
	start := time.Now()
	defer func() { t.Logf("after the guide's commands: %s", time.Since(start).Round(time.Second)) }()
	bin := filepath.Join(t.TempDir(), "rowfence")
	run(t, dir, nil, "go", "build", "-o", bin, "./cmd/rowfence")

	// The real migrations, then the guide's, by the built binary.
	tdb := pgtest.New(t)
	admin := tdb.AdminPool(t)
	adminEnv := []string{"DATABASE_URL=" + tdb.AdminURL, "APP_DATABASE_PASSWORD=" + tdb.AppPassword}
	run(t, dir, adminEnv, bin, "migrate")
	var notes int
	require.NoError(t, admin.QueryRow(ctx, "select count(*) from pg_tables where tablename = 'notes'").Scan(&notes))
	require.Equal(t, 1, notes, "the guide's migration made the table")

	audit := func() (defects []string) {
		cmd := exec.Command(bin, "audit", "--format", "json")
		cmd.Env = append(os.Environ(), adminEnv...)
		out, _ := cmd.Output()
		var rep struct {
			Findings []struct {
				Check, Object, Detail string
				Accepted              bool
			} `json:"findings"`
		}
		require.NoError(t, json.Unmarshal(out, &rep), "%s", out)
		for _, f := range rep.Findings {
			if !f.Accepted {
				defects = append(defects, f.Check+" "+f.Object+": "+f.Detail)
			}
		}
		return defects
	}
	require.Empty(t, audit(), "the guide's table passes the audit")
	// Each planted defect, on a table that passed, is reported.
	for _, plant := range []struct{ sql, undo, want string }{
		{"alter table notes no force row level security", "alter table notes force row level security", "rls-not-forced public.notes"},
		{"create unique index notes_title_key on notes (title)", "drop index notes_title_key", "notes_title_key"},
		{"grant update (tenant_id) on notes to rowfence_app", "revoke update (tenant_id) on notes from rowfence_app", "public.notes"},
		{`drop policy tenant_isolation on notes; drop policy notes_select on notes;
		  create policy notes_select on notes for select using (true)`,
			`drop policy notes_select on notes;
			 create policy tenant_isolation on notes as restrictive
			   using (tenant_id = case when current_setting('app.role', true) in ('admin', 'member', 'viewer')
			                           then nullif(current_setting('app.tenant_id', true), '')::uuid end)
			   with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
			 create policy notes_select on notes for select
			   using (tenant_id = case when current_setting('app.role', true) in ('admin', 'member', 'viewer')
			                           then nullif(current_setting('app.tenant_id', true), '')::uuid end)`,
			"policy-without-tenant public.notes"},
	} {
		_, err := admin.Exec(ctx, "set role rowfence_owner; "+plant.sql+"; reset role")
		require.NoError(t, err)
		defects := audit()
		require.True(t, slices.ContainsFunc(defects, func(d string) bool { return strings.Contains(d, plant.want) }),
			"planted %q: want a defect on %q, got %v", plant.sql, plant.want, defects)
		_, err = admin.Exec(ctx, "set role rowfence_owner; "+plant.undo+"; reset role")
		require.NoError(t, err)
	}
	require.Empty(t, audit(), "clean again")

	// Served by the built binary, the new resource is discovered and attacked.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	srv := exec.Command(bin, "serve")
	srv.Env = append(os.Environ(), "APP_DATABASE_URL="+tdb.AppURL, "ADDR="+addr, "LOG_FORMAT=text")
	srv.Stdout, srv.Stderr = &logs, &logs
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "the server did not start:\n%s", logs.String())
	}
	owner := tdb.OwnerPool(t)
	check := func() leakcheck.Report {
		cfg := leakcheck.Config{URL: base, DB: tdb.AppURL}
		cleanup, err := leakcheck.OnboardPair(ctx, owner, &cfg)
		require.NoError(t, err)
		defer cleanup(io.Discard)
		rep, err := leakcheck.Run(ctx, cfg)
		require.NoError(t, err)
		require.Equal(t, []string{"/v1/notes", "/v1/products", "/v1/users"}, rep.Resources)
		return rep
	}
	rep := check()
	var notesVectors []string
	for _, r := range rep.Results {
		require.True(t, r.Pass, "%s: %s", r.Vector, r.Detail)
		if strings.Contains(r.Vector, "notes") {
			notesVectors = append(notesVectors, r.Vector)
		}
	}
	for _, v := range []string{"foreign id: GET /v1/notes/{B's id}", "foreign id: PATCH /v1/notes/{B's id}",
		"list notes holds only A's rows", "sql: A updating B's row changes nothing",
		"foreign reference: POST /v1/notes naming B's product_id"} {
		require.True(t, slices.Contains(notesVectors, v) || slices.ContainsFunc(rep.Results, func(r leakcheck.Result) bool { return r.Vector == v }),
			"vector %q tried on notes (tried: %v)", v, notesVectors)
	}

	for _, r := range rep.Results {
		if r.Vector == "foreign reference: POST /v1/notes naming B's product_id" {
			require.Contains(t, r.Detail, "422, identical to an absent id", "the composite foreign key answers B's product as an absent one")
		}
	}

	// A leaky policy on notes: leakcheck finds it through the API.
	_, err = admin.Exec(ctx, `set role rowfence_owner; drop policy tenant_isolation on notes; drop policy notes_select on notes;
		create policy notes_select on notes for select using (current_setting('app.role', true) in ('admin', 'member', 'viewer')); reset role`)
	require.NoError(t, err)
	rep = check()
	var leaks []string
	for _, r := range rep.Results {
		if !r.Pass {
			leaks = append(leaks, r.Vector)
		}
	}
	require.Contains(t, leaks, "foreign id: GET /v1/notes/{B's id}", "leaks found: %v", leaks)
	require.Contains(t, leaks, "list notes holds only A's rows", "leaks found: %v", leaks)
	for _, l := range leaks {
		require.False(t, strings.Contains(l, "products") || strings.Contains(l, "users"), "only notes leak: %v", leaks)
	}
}
