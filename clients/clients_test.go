// Package clients_test generates API clients from the contract the server
// serves, with three common generators at their default settings, and runs
// each one through the same flow against a real server:
// openapi-typescript with openapi-fetch (npm), oapi-codegen and ogen (the Go
// module proxy). It also runs Redocly's linter on the contract. Versions are
// pinned in clients/ts/package-lock.json and clients/go/go.mod; what the
// generators write goes to temporary directories, never into the tree.
//
// Needs Go and Node.js with npm (make test-deps installs them as root), and
// the npm registry and the Go module proxy the first time: the npm packages
// are kept in clients/ts/node_modules (git-ignored), the Go modules in the
// module cache.
package clients_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgtest"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// generators are the clients the flow runs with, each in a tenant of its
// own so that its list holds exactly the products it made.
var generators = []string{"openapi-fetch", "oapi-codegen", "ogen"}

// served is a server the test started: its URL, an admin key per tenant
// (by slug), and a product of a tenant none of the clients belongs to.
type served struct {
	url     string
	keys    map[string]string
	otherID string
}

func serve(t *testing.T) served {
	t.Helper()
	tdb := pgtest.New(t)
	admin, app := tdb.AdminPool(t), tdb.AppPool(t, 8)
	s := served{keys: map[string]string{}}
	for _, slug := range append([]string{"globex"}, generators...) {
		o, err := lifecycle.Onboard(context.Background(), admin, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "admin@" + slug + ".example"})
		require.NoError(t, err)
		s.keys[slug] = o.Key
	}
	resolver := tenancy.NewResolver(app, 0)
	authn, err := auth.New(auth.Config{Pool: app, Tenants: resolver})
	require.NoError(t, err)
	handler, err := httpapi.NewServer(httpapi.Config{
		Pool: app, Resolver: resolver, Auth: authn,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		CursorKey: bytes.Repeat([]byte("k"), 32),
		// Limits far above what the flow needs: the RateLimit headers are
		// sent, and the clients read them.
		Limiter: ratelimit.New(ratelimit.Defaults{RatePerSecond: 1000, Burst: 1000}),
	})
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	s.url = srv.URL

	req, err := http.NewRequest("POST", s.url+"/v1/products", strings.NewReader(`{"name":"globex's","price":1}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.keys["globex"])
	req.Header.Set("X-Tenant-ID", "globex")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var p struct{ ID string }
	require.NoError(t, json.NewDecoder(res.Body).Decode(&p))
	require.Equal(t, http.StatusCreated, res.StatusCode)
	s.otherID = p.ID
	return s
}

// flowArgs are what a client program reads (clients/go/check.Load, flow.ts).
func (s served) flowArgs(tenant string) []string {
	return []string{"-url", s.url, "-tenant", tenant, "-key", s.keys[tenant], "-other", s.otherID}
}

func TestGeneratedClientsRunTheFlow(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := serve(t)
	// The contract as a client gets it: from the server.
	res, err := http.Get(s.url + "/openapi.json")
	require.NoError(t, err)
	spec, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	specFile := filepath.Join(t.TempDir(), "openapi.json")
	require.NoError(t, os.WriteFile(specFile, spec, 0o644))

	t.Run("openapi-fetch", func(t *testing.T) {
		t.Parallel()
		modules := nodeModules(t)
		dir := t.TempDir()
		copyTree(t, "ts", dir, "flow.ts", "tsconfig.json", "package.json")
		require.NoError(t, os.Symlink(modules, filepath.Join(dir, "node_modules")))
		run(t, dir, nil, "node_modules/.bin/openapi-typescript", specFile, "-o", "schema.ts")
		run(t, dir, nil, "node_modules/.bin/tsc", "-p", ".")
		t.Log(run(t, dir, nil, "node", append([]string{"out/flow.js"}, s.flowArgs("openapi-fetch")...)...))
	})

	// One copy of the Go module (clients/go) for both Go generators: each
	// writes its own package, ./<generator>/api. -trimpath keeps the temporary
	// directory out of the build cache's keys: an unchanged contract builds
	// from the cache (ogen's client is some 100,000 lines).
	goDir := t.TempDir()
	copyTree(t, "go", goDir)
	goEnv := []string{"GOWORK=off", "GOFLAGS=-mod=readonly"}
	t.Run("oapi-codegen", func(t *testing.T) {
		t.Parallel()
		run(t, goDir, goEnv, "go", "tool", "oapi-codegen", "-generate", "types,client", "-package", "api",
			"-o", "oapicodegen/api/api.gen.go", specFile)
		run(t, goDir, goEnv, "go", "build", "-trimpath", "-o", "bin/oapicodegen", "./oapicodegen")
		t.Log(run(t, goDir, nil, "bin/oapicodegen", s.flowArgs("oapi-codegen")...))
	})
	t.Run("ogen", func(t *testing.T) {
		t.Parallel()
		run(t, goDir, goEnv, "go", "tool", "ogen", "-package", "api", "-target", "ogen/api", "-clean", specFile)
		run(t, goDir, goEnv, "go", "build", "-trimpath", "-o", "bin/ogen", "./ogen")
		t.Log(run(t, goDir, nil, "bin/ogen", s.flowArgs("ogen")...))
	})
	t.Cleanup(func() { t.Logf("generated clients: %s", time.Since(start).Round(time.Second)) })
}

// TestContractLintsClean runs Redocly's linter (clients/ts/lint.mjs: the
// recommended rules, with the exceptions in
// clients/ts/.redocly.lint-ignore.yaml) on the contract: no error, no
// warning.
func TestContractLintsClean(t *testing.T) {
	t.Parallel()
	nodeModules(t)
	t.Log(run(t, "ts", nil, "node", "lint.mjs", "../../httpapi/openapi.yaml"))
}

// installMu keeps the package's tests from installing at once.
var installMu sync.Mutex

// nodeModules installs clients/ts's locked npm packages (npm ci) unless
// they are there already, and returns their directory. A stamp in it holds
// the hash of the lock file they were installed from.
func nodeModules(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: make test-deps installs Node.js and npm (as root), or apt-get install -y nodejs npm", tool)
		}
	}
	dir, err := filepath.Abs("ts")
	require.NoError(t, err)
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	require.NoError(t, err)
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	modules := filepath.Join(dir, "node_modules")
	stamp := filepath.Join(modules, ".rowfence-lock-sha256")
	installMu.Lock()
	defer installMu.Unlock()
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return modules
	}
	run(t, dir, []string{"npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false"},
		"npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	require.NoError(t, os.WriteFile(stamp, []byte(want), 0o644))
	return modules
}

// run runs a command in dir with env added to the test's, failing the test
// with its output if it fails; it returns the output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "node_modules/") {
		name = filepath.Join(dir, name)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	err := cmd.Run()
	require.NoError(t, err, "%s %s in %s:\n%s", name, strings.Join(args, " "), dir, out.String())
	t.Logf("%s: %s", strings.Join(append([]string{filepath.Base(name)}, args[:min(2, len(args))]...), " "), time.Since(began).Round(100*time.Millisecond))
	return out.String()
}

// copyTree copies the files of src (all of them when names is empty) into
// dst, keeping their relative paths; node_modules stays behind.
func copyTree(t *testing.T, src, dst string, names ...string) {
	t.Helper()
	if len(names) > 0 {
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(src, n))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dst, n), b, 0o644))
		}
		return
	}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			if d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	require.NoError(t, err, fmt.Sprintf("copy %s", src))
}
