package config

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

var update = flag.Bool("update", false, "rewrite the README's configuration table from Vars (make docs)")

const (
	readme     = "../README.md"
	beginTable = "<!-- env:begin: generated from config.Vars by make docs; edit config/vars.go -->\n"
	endTable   = "<!-- env:end -->\n"
)

// Issue 15 item 8: the variables were described in three places (the usage
// text, the README, the parser) kept in step by hand. The README's table is
// Markdown(); with -update (make docs) this test rewrites it instead.
func TestREADMEMatchesTheTable(t *testing.T) {
	raw, err := os.ReadFile(readme)
	require.NoError(t, err)
	doc := string(raw)
	begin, end := strings.Index(doc, beginTable), strings.Index(doc, endTable)
	require.True(t, begin >= 0 && end > begin, "README.md needs the markers %q and %q around the configuration table", beginTable, endTable)
	begin += len(beginTable)
	if *update {
		doc = doc[:begin] + Markdown() + doc[end:]
		require.NoError(t, os.WriteFile(readme, []byte(doc), 0o644))
		return
	}
	require.Equal(t, Markdown(), doc[begin:end], "README.md's configuration table differs from config.Vars: run make docs")
}

// Every variable rowfence reads is read through the table: outside this
// package no code calls os.Getenv, os.LookupEnv or os.Environ, or a getenv
// it was given. Test and dev machinery (pgtest, pgserver: TEST_DATABASE_URL,
// DOCKER_HOST) and the benchmark programs (bench/) are not rowfence and keep
// their own.
func TestEveryVariableIsReadThroughTheTable(t *testing.T) {
	skip := map[string]bool{"config": true, "pgtest": true, "pgserver": true, "bench": true}
	var found []string
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != ".." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || skip[filepath.ToSlash(path)[3:]]) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				if fn.Name == "getenv" {
					found = append(found, fset.Position(call.Pos()).String()+": getenv(…)")
				}
			case *ast.SelectorExpr:
				if pkg, ok := fn.X.(*ast.Ident); ok && (pkg.Name == "os" || pkg.Name == "syscall") &&
					(fn.Sel.Name == "Getenv" || fn.Sel.Name == "LookupEnv" || fn.Sel.Name == "Environ") {
					found = append(found, fmt.Sprintf("%s: %s.%s(…)", fset.Position(call.Pos()), pkg.Name, fn.Sel.Name))
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, found, "environment read outside config.Load: declare the variable in config.Vars")
}

// The table is whole: each variable once, with a meaning, what unset means,
// known commands; every default parses and is the value its package uses.
func TestTheTableIsWhole(t *testing.T) {
	commands := map[string]bool{All: true, "migrate": true, "serve": true, "dev": true, "tenant": true, "key": true,
		"admin": true, "audit": true, "leakcheck": true, "cells": true}
	seen := map[string]bool{}
	for _, v := range Vars {
		require.False(t, seen[v.Name], "%s declared twice", v.Name)
		seen[v.Name] = true
		require.NotEmpty(t, v.Help, v.Name)
		require.NotEmpty(t, v.Type(), v.Name)
		require.NotEmpty(t, v.Commands, v.Name)
		require.True(t, (v.Default == "") != (v.Unset == ""), "%s: say either its default or what unset means", v.Name)
		for _, c := range v.Commands {
			require.True(t, commands[c], "%s: unknown command %q", v.Name, c)
		}
	}
	for c := range commands {
		_, err := Load(func(string) string { return "" }, c)
		require.NoError(t, err, "the defaults of %s", c)
	}
	c, err := Load(func(string) string { return "" }, "serve")
	require.NoError(t, err)
	require.Equal(t, Config{
		Addr: ":8080", TenantMode: httpapi.ModeHeader, ShutdownTimeout: 15 * time.Second,
		StatementTimeout: 5 * time.Second, RequestTimeout: 10 * time.Second, AcquireTimeout: 2 * time.Second,
		TenantCacheTTL: tenancy.DefaultTTL, AuthCacheTTL: auth.DefaultCacheTTL, PurgeInterval: time.Minute,
		ExportMaxCount: 10, ExportMaxBytes: 10 << 30, ExportRetention: 7 * 24 * time.Hour,
		AuthFailureLimit: ratelimit.DefaultFailureLimit, AuthFailureWindow: ratelimit.DefaultFailureWindow,
		JWTTenantClaim: "tenant_id", JWTUserClaim: "sub", JWTRoleClaim: "role", JWTLeeway: 30 * time.Second,
		JWTJWKSRefreshInterval: auth.DefaultJWKSRefreshInterval, JWTJWKSUnknownKIDInterval: auth.DefaultJWKSUnknownKIDInterval,
		JWTSubjectMapping: auth.SubjectID,
		RateLimit:         100, RateBurst: 200, MetricsTenantLabels: 100,
		TenantQueueLength: ratelimit.DefaultQueueLength, TenantQueueTimeout: ratelimit.DefaultQueueTimeout, LogFormat: "json", ServiceName: "rowfence",
	}, c)
	require.Nil(t, c.JWT(), "no bearer tokens without a secret or keys")
}

// A command reads only its own variables: a bad serving setting does not
// stop `rowfence tenant list`.
func TestACommandReadsOnlyItsVariables(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://x", "RATE_LIMIT": "-1", "LEAKCHECK_KEY_A": "k"}
	c, err := Load(func(k string) string { return env[k] }, "tenant")
	require.NoError(t, err)
	require.Equal(t, Config{DatabaseURL: "postgres://x", LogFormat: "json"}, c)
	_, err = Load(func(k string) string { return env[k] }, "serve")
	require.EqualError(t, err, `RATE_LIMIT must be a number from 0 to 1000000, not "-1"`)
}

// Each invalid value gets one line naming the variable and what it may be,
// every one at once; a secret is never repeated.
func TestInvalidValuesNameTheVariableAndWhatIsAllowed(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"TENANT_CACHE_TTL": "soon"}, `TENANT_CACHE_TTL must be a duration such as 5s or 1m30s, not "soon"`},
		{map[string]string{"AUTH_CACHE_TTL": "-1s"}, `AUTH_CACHE_TTL must be a duration such as 5s or 1m30s, not "-1s"`},
		{map[string]string{"AUTH_FAILURE_WINDOW": "0s"}, `AUTH_FAILURE_WINDOW must be a duration longer than 0, such as 1m, not "0s"`},
		{map[string]string{"TENANT_MODE": "cookie"}, `TENANT_MODE must be header, subdomain, path or token, not "cookie"`},
		{map[string]string{"LOG_FORMAT": "xml"}, `LOG_FORMAT must be json or text, not "xml"`},
		{map[string]string{"RATE_BURST": "0"}, `RATE_BURST must be a whole number from 1 to 1000000, not "0"`},
		{map[string]string{"TENANT_CONCURRENCY": "2.5"}, `TENANT_CONCURRENCY must be a whole number from 0 to 10000, not "2.5"`},
		{map[string]string{"METRICS_PPROF": "yes", "METRICS_ADDR": "127.0.0.1:0"}, `METRICS_PPROF must be true or false, not "yes"`},
		{map[string]string{"METRICS_PPROF": "true"}, "METRICS_PPROF needs METRICS_ADDR: the profiler is served only on that private listener"},
		{map[string]string{"TENANT_MODE": "subdomain"}, "TENANT_MODE=subdomain needs BASE_DOMAIN (tenants are then {slug}.BASE_DOMAIN)"},
		{map[string]string{"CURSOR_KEY": "short-and-secret"}, "CURSOR_KEY must be at least 32 bytes"},
		{map[string]string{"METRICS_TOKEN": "short-secret"}, "METRICS_TOKEN must be at least 16 bytes"},
		{map[string]string{"JWT_HS256_SECRET": "short-secret", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"}, "JWT_HS256_SECRET must be at least 32 bytes"},
		{map[string]string{"JWT_HS256_SECRET": strings.Repeat("s", 32), "JWT_AUDIENCE": "a"},
			"bearer tokens (JWT_HS256_SECRET, JWT_PUBLIC_KEYS_FILE or JWT_JWKS_URL) need JWT_ISSUER"},
		{map[string]string{"JWT_PUBLIC_KEYS_FILE": "/nonexistent.pem", "JWT_ISSUER": "i", "JWT_AUDIENCE": "a"},
			`JWT_PUBLIC_KEYS_FILE must be a readable PEM file of RSA (2048 bits or more) or P-256 public keys, not "/nonexistent.pem" (open /nonexistent.pem: no such file or directory)`},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 10.0.0.0/33"}, `TRUSTED_PROXIES must be addresses or CIDR prefixes, comma-separated, not "10.0.0.0/8, 10.0.0.0/33"`},
		{map[string]string{"RATE_LIMIT": "fast", "ACQUIRE_TIMEOUT": "soon"},
			"ACQUIRE_TIMEOUT must be a duration such as 5s or 1m30s, not \"soon\"\nRATE_LIMIT must be a number from 0 to 1000000, not \"fast\""},
	} {
		_, err := Load(func(k string) string { return tc.env[k] }, "serve")
		require.ErrorContains(t, err, tc.want, tc.env)
		require.NotContains(t, err.Error(), "secret", "a secret is never repeated")
	}
}

// The platform password is a field like any other; JWT() assembles the
// token configuration from its variables.
func TestJWTFromItsVariables(t *testing.T) {
	env := map[string]string{"JWT_HS256_SECRET": strings.Repeat("s", 32), "JWT_ISSUER": "i", "JWT_AUDIENCE": "a",
		"JWT_ROLE_CLAIM": "https://example.com/role", "JWT_LEEWAY": "1s", "PLATFORM_DATABASE_PASSWORD": "pw"}
	c, err := Load(func(k string) string { return env[k] }, "dev")
	require.NoError(t, err)
	require.Equal(t, "pw", c.PlatformDatabasePassword)
	require.Equal(t, &auth.JWTConfig{HMACSecret: []byte(env["JWT_HS256_SECRET"]), Issuer: "i", Audience: "a",
		TenantClaim: "tenant_id", UserClaim: "sub", RoleClaim: "https://example.com/role", Leeway: time.Second,
		JWKSRefreshInterval: auth.DefaultJWKSRefreshInterval, JWKSUnknownKIDInterval: auth.DefaultJWKSUnknownKIDInterval,
		SubjectMapping: auth.SubjectID}, c.JWT())
}

// JWT_JWKS_URL: https, or http to a loopback address only; one source of
// keys; creating users on sign-in needs a mapping other than id.
func TestJWKSVariables(t *testing.T) {
	base := map[string]string{"JWT_ISSUER": "i", "JWT_AUDIENCE": "a"}
	load := func(over map[string]string) (Config, error) {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range over {
			env[k] = v
		}
		return Load(func(k string) string { return env[k] }, "serve")
	}
	c, err := load(map[string]string{"JWT_JWKS_URL": "https://idp.example/.well-known/jwks.json",
		"JWT_SUBJECT_MAPPING": "external_id", "JWT_AUTO_CREATE_ROLE": "viewer", "JWT_JWKS_UNKNOWN_KID_INTERVAL": "10s"})
	require.NoError(t, err)
	j := c.JWT()
	require.Equal(t, "https://idp.example/.well-known/jwks.json", j.JWKSURL)
	require.Equal(t, auth.SubjectExternalID, j.SubjectMapping)
	require.Equal(t, dbtype.RoleViewer, j.AutoCreateRole)
	require.Equal(t, 10*time.Second, j.JWKSUnknownKIDInterval)

	for _, u := range []string{"http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/jwks"} {
		_, err := load(map[string]string{"JWT_JWKS_URL": u})
		require.NoError(t, err, u)
	}
	for name, over := range map[string]map[string]string{
		"http to a remote host": {"JWT_JWKS_URL": "http://idp.example/jwks"},
		"not a URL":             {"JWT_JWKS_URL": "idp.example/jwks"},
		"file":                  {"JWT_JWKS_URL": "file:///etc/jwks.json"},
		"with a secret too":     {"JWT_JWKS_URL": "https://idp.example/jwks", "JWT_HS256_SECRET": strings.Repeat("s", 32)},
		"auto-create with ids":  {"JWT_JWKS_URL": "https://idp.example/jwks", "JWT_AUTO_CREATE_ROLE": "member"},
		"unknown mapping":       {"JWT_JWKS_URL": "https://idp.example/jwks", "JWT_SUBJECT_MAPPING": "name"},
		"unknown role":          {"JWT_JWKS_URL": "https://idp.example/jwks", "JWT_SUBJECT_MAPPING": "email", "JWT_AUTO_CREATE_ROLE": "owner"},
		"no issuer":             {"JWT_JWKS_URL": "https://idp.example/jwks", "JWT_ISSUER": ""},
	} {
		_, err := load(over)
		require.Error(t, err, name)
	}
}

// `rowfence help` lists every variable; `rowfence serve -h` those serve reads.
func TestUsageListsTheVariables(t *testing.T) {
	all, serve := Usage(""), Usage("serve")
	for _, v := range Vars {
		require.Contains(t, "\n"+all, "\n  "+v.Name+" ")
		require.Equal(t, v.ReadBy("serve"), strings.Contains("\n"+serve, "\n  "+v.Name+" "), v.Name)
	}
	for _, line := range strings.Split(strings.TrimSuffix(all, "\n"), "\n") {
		require.LessOrEqual(t, len([]rune(line)), usageWidth, line)
	}
	require.Contains(t, all, "  TENANT_CACHE_TTL            how long a resolved tenant (or its absence) is cached when changes are")
	require.Contains(t, serve, "(duration; default 5s)")
}
