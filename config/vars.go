package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/metrics"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

// All, in Var.Commands, is every command.
const All = "all"

// Var is one environment variable: everything rowfence knows about it.
type Var struct {
	Name string
	// Commands are the subcommands that read it (or All). Load gives a
	// command only these, so the docs cannot claim less than the code reads.
	Commands []string
	// Default is the value an unset (or empty) variable takes, as it would
	// be written in the environment; Load parses it like a set value.
	Default string
	// Unset says what an unset variable means when there is no Default.
	Unset string
	// Help says what it means; markdown: code is in backquotes.
	Help string
	kind kind
	// check is a rule across variables, run after each is parsed.
	check func(*Config) error
}

// Type is the variable's type and unit as the docs show it (markdown).
func (v *Var) Type() string { return v.kind.typ }

// kind is how a variable is parsed and described.
type kind struct {
	typ     string // for the docs: type and unit, markdown
	allowed string // completes "NAME must be …" (markdown)
	secret  bool   // never repeated in messages
	// parse stores raw in the Config; nil: rowfence itself does not parse
	// the variable (the Go runtime reads GOMEMLIMIT).
	parse func(c *Config, raw string) error
}

// The commands that serve: dev serves what it starts, with serve's variables.
var serving = []string{"serve", "dev"}

// Vars is the table: every environment variable rowfence reads.
var Vars = []Var{
	{Name: "DATABASE_URL", Commands: []string{"migrate", "serve", "dev", "tenant", "key", "admin", "audit", "leakcheck", "cells"},
		Unset: "none",
		Help: "the migrating role, which may create roles and own tables; never used to serve requests (`serve` derives " +
			"its own roles' connections from it when theirs are unset). `leakcheck` reads it with `--create`; `dev` refuses " +
			"it unless given `--seed-public-keys-into-existing-database`",
		kind: text("connection string", func(c *Config, s string) { c.DatabaseURL = s })},
	{Name: "APP_DATABASE_URL", Commands: serving, Unset: "derived from `DATABASE_URL`",
		Help: "the `rowfence_app` role's connection, the one that serves requests",
		kind: text("connection string", func(c *Config, s string) { c.AppDatabaseURL = s })},
	{Name: "APP_DATABASE_PASSWORD", Commands: []string{"migrate", "serve", "dev"},
		Unset: "none: the server must trust the connection (`dev` makes one up for a server it started)",
		Help:  "`migrate` sets it as `rowfence_app`'s password; `serve` uses it when it derives its connection from `DATABASE_URL`",
		kind:  secret(0, "", func(c *Config, s string) { c.AppDatabasePassword = s })},
	{Name: "PLATFORM_DATABASE_URL", Commands: serving,
		Unset: "derived from `DATABASE_URL` when `PLATFORM_DATABASE_PASSWORD` is set; otherwise off",
		Help:  "the `rowfence_platform` role's connection: turns on `/v1/admin`, exports and the background jobs",
		kind:  text("connection string", func(c *Config, s string) { c.PlatformDatabaseURL = s })},
	{Name: "PLATFORM_DATABASE_PASSWORD", Commands: []string{"migrate", "serve", "dev"},
		Unset: "none (`dev` makes one up for a server it started)",
		Help:  "`migrate` sets it as `rowfence_platform`'s password; `serve` derives the platform connection from `DATABASE_URL` with it",
		kind:  secret(0, "", func(c *Config, s string) { c.PlatformDatabasePassword = s })},
	{Name: "REPLICATION_DATABASE_PASSWORD", Commands: []string{"tenant"},
		Unset: "none: the source cell's server must trust the replication role's connection",
		Help: "the password of `tenant move --replication-role`'s role, with which the target cell's subscription connects " +
			"to the source cell instead of as the source's migrating role (docs/SCALING.md, \"The replication role\")",
		kind: secret(0, "", func(c *Config, s string) { c.ReplicationDatabasePassword = s })},
	{Name: "CELLS", Commands: []string{"migrate", "serve", "dev", "tenant", "audit", "cells"},
		Unset: "none: `DATABASE_URL`'s database is the only cell",
		Help: "the other tenant cells (docs/SCALING.md): `name=url` pairs separated by spaces, each url the migrating " +
			"role's connection to a database of its own, like `DATABASE_URL`'s (the default cell, which holds the catalog). " +
			"`migrate` and `audit` work on every cell; `serve` derives each cell's app and platform connections from its url " +
			"with `APP_DATABASE_PASSWORD` and `PLATFORM_DATABASE_PASSWORD`, and refuses a cell that is behind",
		kind: kind{typ: "name=url …", allowed: "space-separated name=url pairs", secret: true, parse: func(c *Config, s string) error {
			var err error
			c.Cells, err = cells.ParseURLs(s)
			return err
		}}},
	{Name: "TENANT_MOVES", Commands: serving, Default: "false",
		Help: "`true`: this instance runs the tenant moves asked through `POST /v1/admin/tenants/{id}/move` (docs/SCALING.md), " +
			"connecting to every cell as `DATABASE_URL`'s and `CELLS`' role, which must then be a superuser (serve refuses to " +
			"start otherwise). Those connections serve the move's background job only, never a request; other instances " +
			"answer such a POST with 409",
		kind: boolean(func(c *Config, b bool) { c.TenantMoves = b })},

	{Name: "ADDR", Commands: serving, Default: ":8080", Help: "the API's listen address",
		kind: text("host:port", func(c *Config, s string) { c.Addr = s })},
	{Name: "TLS_CERT_FILE", Commands: serving, Unset: "none: plain HTTP (terminate TLS at a proxy: docs/TLS.md)",
		Help: "serve HTTPS (TLS 1.2 or later) on `ADDR` with this PEM certificate chain, leaf first; with `TLS_KEY_FILE`. " +
			"Read once at start: restart to renew",
		kind: text("file (PEM)", func(c *Config, s string) { c.TLSCertFile = s })},
	{Name: "TLS_KEY_FILE", Commands: serving, Unset: "none",
		Help: "the PEM private key of `TLS_CERT_FILE`'s certificate; set both or neither",
		kind: text("file (PEM)", func(c *Config, s string) { c.TLSKeyFile = s }),
		check: func(c *Config) error {
			if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
				return errors.New("TLS_CERT_FILE and TLS_KEY_FILE go together: set both (HTTPS) or neither (plain HTTP)")
			}
			if c.TLSCertFile == "" {
				return nil
			}
			cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
			if err != nil {
				return fmt.Errorf("TLS_CERT_FILE and TLS_KEY_FILE must be a readable PEM certificate chain and its private key (%w)", err)
			}
			c.TLSCertificate = &cert
			return nil
		}},
	{Name: "CURSOR_KEY", Commands: serving, Unset: "random per process",
		Help: "signs list cursors; give every instance the same one, or cursors fail on another instance and after a restart",
		kind: secret(32, "bytes", func(c *Config, s string) { c.CursorKey = []byte(s) })},
	{Name: "TENANT_MODE", Commands: serving, Default: string(httpapi.ModeHeader),
		Help: "how requests name their tenant: the `X-Tenant-ID` header, a subdomain of `BASE_DOMAIN`, " +
			"a path prefix (`/t/{slug}/v1/...`), or the credential alone",
		kind: choice(func(c *Config, m httpapi.TenantMode) { c.TenantMode = m },
			httpapi.ModeHeader, httpapi.ModeSubdomain, httpapi.ModePath, httpapi.ModeToken)},
	{Name: "BASE_DOMAIN", Commands: serving, Unset: "none; subdomain mode requires it",
		Help: "subdomain mode: tenants are `{slug}.BASE_DOMAIN`",
		kind: text("domain", func(c *Config, s string) { c.BaseDomain = s }),
		check: func(c *Config) error {
			if c.TenantMode == httpapi.ModeSubdomain && c.BaseDomain == "" {
				return errors.New("TENANT_MODE=subdomain needs BASE_DOMAIN (tenants are then {slug}.BASE_DOMAIN)")
			}
			return nil
		}},
	{Name: "CORS_ALLOWED_ORIGINS", Commands: serving, Unset: "none: CORS off",
		Help: "browser origins allowed to call the API (`https://app.example.com,…`), or `*`",
		kind: custom("origins, comma-separated, or `*`", "origins (scheme://host[:port]), comma-separated, or *",
			func(c *Config, s string) (err error) {
				c.CORSOrigins, err = httpapi.ParseCORSOrigins(s)
				return err
			})},
	{Name: "SHUTDOWN_TIMEOUT", Commands: serving, Default: "15s",
		Help: "time in-flight requests get to finish after SIGTERM or SIGINT",
		kind: duration(0, func(c *Config, d time.Duration) { c.ShutdownTimeout = d })},

	{Name: "STATEMENT_TIMEOUT", Commands: serving, Default: "5s",
		Help: "`statement_timeout` of every request's SQL, sent in the same statement as the tenant, so free " +
			"(`0`: the database's). Past it: 503 with `Retry-After`",
		kind: duration(0, func(c *Config, d time.Duration) { c.StatementTimeout = d })},
	{Name: "REQUEST_TIMEOUT", Commands: serving, Default: "10s",
		Help: "deadline for a request's database work, waiting for a pooled connection included (`0`: none). " +
			"Past it: 503 with `Retry-After`",
		kind: duration(0, func(c *Config, d time.Duration) { c.RequestTimeout = d })},
	{Name: "ACQUIRE_TIMEOUT", Commands: serving, Default: "2s",
		Help: "longest wait for a pooled connection; past it, 503 with `Retry-After`",
		kind: duration(0, func(c *Config, d time.Duration) { c.AcquireTimeout = d })},

	{Name: "TENANT_CACHE_TTL", Commands: serving, Default: durationText(tenancy.DefaultTTL),
		Help: "how long a resolved tenant (or its absence) is cached when changes are not heard: a suspension takes effect within it (while they are, at once, and a found tenant is kept for 5 min; `0` disables)",
		kind: duration(0, func(c *Config, d time.Duration) { c.TenantCacheTTL = d })},
	{Name: "AUTH_CACHE_TTL", Commands: serving, Default: durationText(auth.DefaultCacheTTL),
		Help: "how long a verified credential is cached when changes are not heard: the bound on revocation (while they are, at once, and a credential is kept for 5 min; `0` disables)",
		kind: duration(0, func(c *Config, d time.Duration) { c.AuthCacheTTL = d })},
	{Name: "PURGE_INTERVAL", Commands: serving, Default: "1m",
		Help: "how often tenants past their deletion grace period are looked for and purged (`0`: never)",
		kind: duration(0, func(c *Config, d time.Duration) { c.PurgeInterval = d })},
	{Name: "EXPORT_MAX_COUNT", Commands: serving, Default: "10",
		Help: "exports a tenant may keep at once (`POST /v1/exports` past it: `409 export-quota`); expired ones and archives do not count",
		kind: integer(1, 1e6, "exports", func(c *Config, n int) { c.ExportMaxCount = n })},
	{Name: "EXPORT_MAX_BYTES", Commands: serving, Default: "10737418240",
		Help: "bytes a tenant's kept exports may hold together: a request past it gets `409 export-quota`, an export that outgrows what is left fails",
		kind: integer(1, 1<<50, "bytes", func(c *Config, n int) { c.ExportMaxBytes = int64(n) })},
	{Name: "EXPORT_RETENTION", Commands: serving, Default: "168h",
		Help: "how long an export is kept: then the API no longer shows it and the hourly cleanup job deletes it",
		kind: duration(1, func(c *Config, d time.Duration) { c.ExportRetention = d })},

	{Name: "AUTH_FAILURE_LIMIT", Commands: serving, Default: strconv.Itoa(ratelimit.DefaultFailureLimit),
		Help: "failed credentials a client address may send per `AUTH_FAILURE_WINDOW` before `429 auth-throttled` (`0`: no throttle)",
		kind: integer(0, 1e6, "failures", func(c *Config, n int) { c.AuthFailureLimit = n })},
	{Name: "AUTH_FAILURE_WINDOW", Commands: serving, Default: durationText(ratelimit.DefaultFailureWindow),
		Help: "the window of `AUTH_FAILURE_LIMIT`: one more failure is allowed every window/limit " +
			"(`AUTH_FAILURE_LIMIT=0`, not a zero window, turns the throttle off)",
		kind: duration(1, func(c *Config, d time.Duration) { c.AuthFailureWindow = d })},
	{Name: "TRUSTED_PROXIES", Commands: serving, Unset: "none: the connection's peer is the client",
		Help: "proxies and load balancers (`10.0.0.0/8,fd00::/8`) whose `X-Forwarded-For` names the client address " +
			"(the rightmost hop not in the list)",
		kind: custom("addresses or CIDR prefixes, comma-separated", "addresses or CIDR prefixes, comma-separated",
			func(c *Config, s string) (err error) {
				c.TrustedProxies, err = httpapi.ParseTrustedProxies(s)
				return err
			})},

	{Name: "JWT_HS256_SECRET", Commands: serving, Unset: "none: no HS256 tokens",
		Help: "enables HS256 bearer tokens",
		kind: secret(32, "bytes", func(c *Config, s string) { c.JWTHS256Secret = []byte(s) })},
	{Name: "JWT_PUBLIC_KEYS_FILE", Commands: serving, Unset: "none: no RS256 or ES256 tokens",
		Help: "PEM file of RSA (≥ 2048 bits, RS256) and P-256 (ES256) public keys; enables those tokens",
		kind: custom("file (PEM)", "a readable PEM file of RSA (2048 bits or more) or P-256 public keys",
			func(c *Config, path string) error {
				pemData, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				if c.JWTPublicKeys, err = auth.ParsePublicKeys(pemData); err != nil {
					return err
				}
				c.JWTPublicKeysFile = path
				return nil
			})},
	{Name: "JWT_JWKS_URL", Commands: serving, Unset: "none: keys from `JWT_HS256_SECRET` or `JWT_PUBLIC_KEYS_FILE`",
		Help: "the identity provider's JWK Set (RFC 7517): its keys verify the tokens, fetched every " +
			"`JWT_JWKS_REFRESH_INTERVAL` and for a `kid` it lacks. Exclusive with `JWT_HS256_SECRET` and " +
			"`JWT_PUBLIC_KEYS_FILE`. `https://` only (`http://` for a loopback address): the set is the trust anchor of every token",
		kind: custom("URL", "an https:// URL (http:// only to a loopback address)", func(c *Config, s string) error {
			if err := auth.CheckJWKSURL(s); err != nil {
				return err
			}
			c.JWTJWKSURL = s
			return nil
		}),
		check: func(c *Config) error {
			if c.JWTJWKSURL != "" && (c.JWTHS256Secret != nil || c.JWTPublicKeysFile != "") {
				return errors.New("JWT_JWKS_URL excludes JWT_HS256_SECRET and JWT_PUBLIC_KEYS_FILE: one source of keys, so that a key the provider removes verifies nothing")
			}
			return nil
		}},
	{Name: "JWT_JWKS_REFRESH_INTERVAL", Commands: serving, Default: durationText(auth.DefaultJWKSRefreshInterval),
		Help: "how often the JWK Set is fetched again: a key removed from the set verifies nothing after at most this plus `AUTH_CACHE_TTL`",
		kind: duration(time.Second, func(c *Config, d time.Duration) { c.JWTJWKSRefreshInterval = d })},
	{Name: "JWT_JWKS_UNKNOWN_KID_INTERVAL", Commands: serving, Default: durationText(auth.DefaultJWKSUnknownKIDInterval),
		Help: "at most one fetch of the JWK Set per interval for tokens naming a `kid` the cached set lacks " +
			"(a rotation, or made-up tokens: they are refused without waiting, and never hammer the provider)",
		kind: duration(time.Second, func(c *Config, d time.Duration) { c.JWTJWKSUnknownKIDInterval = d })},
	{Name: "JWT_SUBJECT_MAPPING", Commands: serving, Default: string(auth.SubjectID),
		Help: "how a token names its user: `id`, the `JWT_USER_CLAIM` is a rowfence user id; `external_id`, it is the " +
			"user's `external_id` in the token's tenant; `email`, the `email` claim, with `email_verified` true, is the user's " +
			"email in the token's tenant",
		kind: choice(func(c *Config, m auth.SubjectMapping) { c.JWTSubjectMapping = m },
			auth.SubjectID, auth.SubjectExternalID, auth.SubjectEmail)},
	{Name: "JWT_AUTO_CREATE_ROLE", Commands: serving, Unset: "none: a token for a user the tenant lacks is refused",
		Help: "creates that user on first sign-in instead, with this role or the token's role claim, whichever is less " +
			"(`admin` only when set so); needs `JWT_SUBJECT_MAPPING` `external_id` or `email` and a verified `email` claim",
		kind: choice(func(c *Config, r dbtype.Role) { c.JWTAutoCreateRole = r }, dbtype.RoleViewer, dbtype.RoleMember, dbtype.RoleAdmin),
		check: func(c *Config) error {
			if c.JWTAutoCreateRole != "" && c.JWTSubjectMapping == auth.SubjectID {
				return errors.New("JWT_AUTO_CREATE_ROLE needs JWT_SUBJECT_MAPPING=external_id or email (a new user's id is the database's)")
			}
			return nil
		}},
	{Name: "JWT_ISSUER", Commands: serving, Unset: "none; bearer tokens require it",
		Help:  "the tokens' `iss`; required with bearer tokens",
		kind:  text("text", func(c *Config, s string) { c.JWTIssuer = s }),
		check: requiredWithJWT("JWT_ISSUER", func(c *Config) string { return c.JWTIssuer })},
	{Name: "JWT_AUDIENCE", Commands: serving, Unset: "none; bearer tokens require it",
		Help:  "the tokens' `aud`; required with bearer tokens",
		kind:  text("text", func(c *Config, s string) { c.JWTAudience = s }),
		check: requiredWithJWT("JWT_AUDIENCE", func(c *Config) string { return c.JWTAudience })},
	{Name: "JWT_TENANT_CLAIM", Commands: serving, Default: auth.DefaultTenantClaim,
		Help: "the claim naming the tenant (its UUID or slug)",
		kind: text("claim name", func(c *Config, s string) { c.JWTTenantClaim = s })},
	{Name: "JWT_USER_CLAIM", Commands: serving, Default: auth.DefaultUserClaim,
		Help: "the claim naming the user (a user id of that tenant, or its `external_id`: `JWT_SUBJECT_MAPPING`)",
		kind: text("claim name", func(c *Config, s string) { c.JWTUserClaim = s })},
	{Name: "JWT_ROLE_CLAIM", Commands: serving, Default: auth.DefaultRoleClaim,
		Help: "the claim naming the role (`admin`, `member` or `viewer`; absent from a token: the user's own role)",
		kind: text("claim name", func(c *Config, s string) { c.JWTRoleClaim = s })},
	{Name: "JWT_LEEWAY", Commands: serving, Default: durationText(auth.DefaultLeeway),
		Help: "clock skew allowed on `exp` and `nbf`",
		kind: duration(0, func(c *Config, d time.Duration) { c.JWTLeeway = d })},

	{Name: "RATE_LIMIT", Commands: serving, Default: "100",
		Help: "each tenant's default token bucket rate (`0`: no rate limit); `rowfence tenant limits` sets a tenant's own",
		kind: number(0, 1e6, "requests/s", func(c *Config, f float64) { c.RateLimit = f })},
	{Name: "RATE_BURST", Commands: serving, Default: "200",
		Help: "each tenant's default token bucket size",
		kind: integer(1, 1e6, "requests", func(c *Config, n int) { c.RateBurst = n })},
	{Name: "TENANT_CONCURRENCY", Commands: serving, Unset: "half the pool",
		Help: "each tenant's default cap on requests doing database work at once (`0`: none)",
		kind: integer(0, 1e4, "requests", func(c *Config, n int) { c.TenantConcurrency = &n })},
	{Name: "TENANT_QUEUE_TIMEOUT", Commands: serving, Default: durationText(ratelimit.DefaultQueueTimeout),
		Help: "longest wait of a request for its turn when its tenant's share or the server's slots (the pool's size) are in use; past it, 429 `concurrency-limited` (its own requests held its share) or 503 `unavailable` (others' held the server), with `Retry-After` (`0`: refuse at once)",
		kind: duration(0, func(c *Config, d time.Duration) { c.TenantQueueTimeout = d })},
	{Name: "TENANT_QUEUE_LENGTH", Commands: serving, Default: strconv.Itoa(ratelimit.DefaultQueueLength),
		Help: "most requests of one tenant waiting for their turn; one more is refused at once, 429 `concurrency-limited` (`0`: refuse at once)",
		kind: integer(0, 1e5, "requests", func(c *Config, n int) { c.TenantQueueLength = n })},

	{Name: "METRICS_ADDR", Commands: serving, Unset: "none",
		Help: "a private listener serving `/metrics` for Prometheus, e.g. `127.0.0.1:9090`",
		kind: text("host:port", func(c *Config, s string) { c.MetricsAddr = s })},
	{Name: "METRICS_PPROF", Commands: serving, Default: "false",
		Help: "`true`: also serve Go's profiler (`/debug/pprof/`) on the private `METRICS_ADDR` listener",
		kind: boolean(func(c *Config, b bool) { c.MetricsPprof = b }),
		check: func(c *Config) error {
			if c.MetricsPprof && c.MetricsAddr == "" {
				return errors.New("METRICS_PPROF needs METRICS_ADDR: the profiler is served only on that private listener")
			}
			return nil
		}},
	{Name: "METRICS_TOKEN", Commands: serving, Unset: "none: `/metrics` only on `METRICS_ADDR`",
		Help: "serve `/metrics` on the API's listener too, to requests bearing this token",
		kind: secret(16, "bytes", func(c *Config, s string) { c.MetricsToken = s })},
	{Name: "METRICS_TENANT_LABELS", Commands: serving, Default: strconv.Itoa(metrics.DefaultTenantLabels),
		Help: "how many tenants get their own metrics label per instance; the rest are `other`",
		kind: integer(1, 1e5, "tenants", func(c *Config, n int) { c.MetricsTenantLabels = n })},

	{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Commands: serving, Unset: "none: tracing is off",
		Help: "turns tracing on: OpenTelemetry spans for each request and each database unit of work, exported over " +
			"OTLP/HTTP (protobuf) to this collector URL, e.g. `http://otel-collector:4318` (`/v1/traces` is appended); " +
			"spans carry the route and the tenant, never a credential or an SQL parameter value",
		kind: custom("URL", "an `http` or `https` URL such as `http://collector:4318`", func(c *Config, s string) error {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("not an http or https URL with a host, such as http://collector:4318")
			}
			c.OTLPEndpoint = s
			return nil
		})},
	{Name: "OTEL_SERVICE_NAME", Commands: serving, Default: "rowfence",
		Help: "the `service.name` of the spans, when `OTEL_EXPORTER_OTLP_ENDPOINT` turns tracing on",
		kind: text("name", func(c *Config, s string) { c.ServiceName = s })},

	{Name: "LEAKCHECK_KEY_A", Commands: []string{"leakcheck"}, Unset: "none; required without `--create`",
		Help: "an admin API key of `--tenant-a`, the attacker (not a flag, so it stays out of `ps`)",
		kind: secret(0, "", func(c *Config, s string) { c.LeakcheckKeyA = s })},
	{Name: "LEAKCHECK_KEY_B", Commands: []string{"leakcheck"}, Unset: "none; required without `--create`",
		Help: "an admin API key of `--tenant-b`, the victim",
		kind: secret(0, "", func(c *Config, s string) { c.LeakcheckKeyB = s })},

	{Name: "LOG_FORMAT", Commands: []string{All}, Default: "json",
		Help: "the log lines' format; logs go to stderr",
		kind: choice(func(c *Config, s string) { c.LogFormat = s }, "json", "text")},
	{Name: "GOGC", Commands: serving, Unset: "`200` (Go's own default: 100)",
		Help: "the garbage collector's target, read by the Go runtime; `serve` and `dev` set their own when it is unset " +
			"(`bench/RESULTS.md` measured it)",
		kind: kind{typ: "percent, or `off`", parse: func(c *Config, s string) error { c.GOGC = s; return nil }}},
	{Name: "GOMEMLIMIT", Commands: []string{All}, Unset: "none",
		Help: "the Go runtime's soft memory limit, read by the runtime alone",
		kind: kind{typ: "bytes (`512MiB`)"}},
}

func requiredWithJWT(name string, get func(*Config) string) func(*Config) error {
	return func(c *Config) error {
		if c.jwtOn() && get(c) == "" {
			return fmt.Errorf("bearer tokens (JWT_HS256_SECRET, JWT_PUBLIC_KEYS_FILE or JWT_JWKS_URL) need %s", name)
		}
		return nil
	}
}

// text is any string.
func text(typ string, set func(*Config, string)) kind {
	return kind{typ: typ, allowed: typ, parse: func(c *Config, s string) error { set(c, s); return nil }}
}

// secret is a string of at least least units, never repeated in a message.
func secret(least int, unit string, set func(*Config, string)) kind {
	k := kind{typ: "secret", allowed: "a secret", secret: true}
	if least > 0 {
		k.typ = fmt.Sprintf("secret, ≥ %d %s", least, unit)
		k.allowed = fmt.Sprintf("at least %d %s", least, unit)
	}
	k.parse = func(c *Config, s string) error {
		if len(s) < least {
			return errOutOfRange
		}
		set(c, s)
		return nil
	}
	return k
}

// custom is a value parse checks; its error says what was wrong.
func custom(typ, allowed string, parse func(*Config, string) error) kind {
	return kind{typ: typ, allowed: allowed, parse: parse}
}

// duration is a Go duration (time.ParseDuration) of at least least.
func duration(least time.Duration, set func(*Config, time.Duration)) kind {
	k := kind{typ: "duration", allowed: "a duration such as `5s` or `1m30s`"}
	if least > 0 {
		k.typ, k.allowed = "duration > 0", "a duration longer than 0, such as `1m`"
	}
	k.parse = func(c *Config, s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < least {
			return errOutOfRange
		}
		set(c, d)
		return nil
	}
	return k
}

// number is a decimal number from lo to hi.
func number(lo, hi float64, unit string, set func(*Config, float64)) kind {
	from, to := strconv.FormatFloat(lo, 'f', -1, 64), strconv.FormatFloat(hi, 'f', -1, 64)
	return kind{typ: unit + ", " + from + " to " + to, allowed: "a number from " + from + " to " + to,
		parse: func(c *Config, s string) error {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || !(f >= lo && f <= hi) {
				return errOutOfRange
			}
			set(c, f)
			return nil
		}}
}

// integer is a whole number from lo to hi (written as a number: 1e3
// and 2.0 are whole).
func integer(lo, hi int, unit string, set func(*Config, int)) kind {
	return kind{typ: fmt.Sprintf("%s, %d to %d", unit, lo, hi), allowed: fmt.Sprintf("a whole number from %d to %d", lo, hi),
		parse: func(c *Config, s string) error {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || !(f >= float64(lo) && f <= float64(hi)) || f != math.Trunc(f) {
				return errOutOfRange
			}
			set(c, int(f))
			return nil
		}}
}

// boolean is true or false (1 or 0).
func boolean(set func(*Config, bool)) kind {
	return kind{typ: "`true` or `false`", allowed: "`true` or `false`",
		parse: func(c *Config, s string) error {
			switch s {
			case "true", "1":
				set(c, true)
			case "false", "0":
				set(c, false)
			default:
				return errOutOfRange
			}
			return nil
		}}
}

// choice is one of values, in any case.
func choice[T ~string](set func(*Config, T), values ...T) kind {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "`" + string(v) + "`"
	}
	list := strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
	return kind{typ: list, allowed: list,
		parse: func(c *Config, s string) error {
			for _, v := range values {
				if strings.EqualFold(s, string(v)) {
					set(c, v)
					return nil
				}
			}
			return errOutOfRange
		}}
}

// durationText writes d as it would be set: 1m, not 1m0s.
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
