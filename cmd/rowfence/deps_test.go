package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The lint rule of docs/SECURITY.md's "Demo credentials and dev tooling":
// no package that serving code links may be test or dev machinery. It runs
// the go command on the module's own source, so it holds for every package
// added later, and make test enforces it.

// machinery is what only tests, benchmarks and `rowfence dev` may link:
// the PostgreSQL finder and starter, the per-test databases, the demo seed
// with its public keys, what those bring (testcontainers, the Docker and moby
// clients, testify) and the standard library's test packages.
func machinery(module string) []string {
	return []string{
		module + "/pgserver", module + "/pgtest", module + "/sql/seed",
		"github.com/testcontainers/", "github.com/docker/", "github.com/moby/",
		"github.com/stretchr/testify", "testing", "net/http/httptest",
	}
}

// isMachinery reports whether pkg is one of prefixes or below one.
func isMachinery(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		p = strings.TrimSuffix(p, "/")
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// goCmd runs the go command (go test puts its own first in PATH) in dir.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go %s\n%s", strings.Join(args, " "), stderr.String())
	return string(out)
}

func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	fields := strings.Fields(goCmd(t, ".", "list", "-m", "-f", "{{.Dir}} {{.Path}}"))
	require.Len(t, fields, 2)
	return fields[0], fields[1]
}

// Issue 15 item 1: pgserver (and through it testcontainers, the Docker
// client and testify) and the demo seed were linked into the binary that
// serves.
func TestServingCodeLinksNoTestOrDevMachinery(t *testing.T) {
	t.Parallel()
	root, module := moduleRoot(t)
	banned := machinery(module)

	// The serving binary, built as `make build` builds it: default tags.
	binary := module + "/cmd/rowfence"
	var found []string
	for _, dep := range strings.Fields(goCmd(t, root, "list", "-deps", "./cmd/rowfence")) {
		if isMachinery(dep, banned) {
			found = append(found, dep)
		}
	}
	require.Empty(t, found, "%s links test or dev machinery; keep it behind the dev build tag", binary)

	// Every other package of the module that is neither machinery itself
	// nor a benchmark (bench/ may start its own PostgreSQL).
	exempt := []string{module + "/pgserver", module + "/pgtest", module + "/sql/seed", module + "/bench"}
	lines := strings.Split(strings.TrimSpace(goCmd(t, root, "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./...")), "\n")
	require.Greater(t, len(lines), 5, "go list found the module's packages")
	for _, line := range lines {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		if isMachinery(pkg, exempt) {
			continue
		}
		for _, dep := range deps {
			if isMachinery(dep, banned) {
				t.Errorf("%s (non-test code) links %s: only tests, bench/ and the dev build may", pkg, dep)
			}
		}
	}

	// The rule can fail: the dev build links exactly what it keeps out.
	devDeps := strings.Fields(goCmd(t, root, "list", "-tags", "dev", "-deps", "./cmd/rowfence"))
	require.Contains(t, devDeps, module+"/pgserver")
	require.Contains(t, devDeps, module+"/sql/seed")
}

// demoSecrets are the public strings of sql/seed/demo.sql: the demo API and
// platform keys and their secrets.
func demoSecrets(t *testing.T, root string) []string {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join(root, "sql", "seed", "demo.sql"))
	require.NoError(t, err)
	var out []string
	for _, m := range regexp.MustCompile(`rf[kp]_[0-9a-f_]{40,}|'([0-9a-f]{64})'`).FindAllSubmatch(seed, -1) {
		if len(m[1]) > 0 {
			out = append(out, string(m[1]))
		} else {
			out = append(out, string(m[0]))
		}
	}
	require.GreaterOrEqual(t, len(out), 8, "the seed's four keys and their four secrets")
	return out
}

// The binary `make build` makes carries no demo credential and no dev
// subcommand: it cannot write the public keys anywhere.
func TestServingBinaryHasNoDemoCredentials(t *testing.T) {
	t.Parallel()
	root, _ := moduleRoot(t)
	bin := filepath.Join(t.TempDir(), "rowfence")
	goCmd(t, root, "build", "-buildvcs=false", "-o", bin, "./cmd/rowfence")
	raw, err := os.ReadFile(bin)
	require.NoError(t, err)
	for _, secret := range append(demoSecrets(t, root), "rfp_d0000000000040008000000000000001") {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the serving binary contains %s from sql/seed/demo.sql", secret)
		}
	}

	// `rowfence dev` says where the dev tooling is. The environment would
	// make an old binary's dev fail rather than start a cluster here.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "dev")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "DATABASE_URL=postgres://nobody@127.0.0.1:1/none?connect_timeout=1", "ADDR=127.0.0.1:0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "dev must fail in the serving binary: %v\n%s", err, stderr.String())
	require.Equal(t, 2, exit.ExitCode(), "a usage error")
	require.Contains(t, stderr.String(), "built without dev tooling; use make run")
}
