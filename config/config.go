// Package config is rowfence's one table of environment variables. Each
// variable is declared once, in Vars: its name, its type and unit, its
// default, the commands that read it, what it means and how it is checked.
// Load parses a command's variables into Config; the same table renders the
// Environment section of `rowfence help` (Usage) and the README's
// configuration table (Markdown), and TestREADMEMatchesTheTable fails when
// the README differs from it.
//
// Only cmd/rowfence imports this package: it is the composition root's
// reader, so it may name the types of the packages it configures.
package config

import (
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/httpapi"
)

// Config is every setting rowfence reads from its environment. Load fills
// only the fields of the variables the running command reads (Var.Commands);
// the others keep their zero value.
type Config struct {
	// Connections (connection strings as pgx parses them: URL or key=value).
	DatabaseURL              string // DATABASE_URL: the migrating role
	AppDatabaseURL           string // APP_DATABASE_URL: rowfence_app, serving
	AppDatabasePassword      string // APP_DATABASE_PASSWORD
	PlatformDatabaseURL      string // PLATFORM_DATABASE_URL: rowfence_platform
	PlatformDatabasePassword string // PLATFORM_DATABASE_PASSWORD
	// ReplicationDatabasePassword: REPLICATION_DATABASE_PASSWORD, the
	// password of tenant move's --replication-role.
	ReplicationDatabasePassword string
	// Cells are the tenant cells besides DATABASE_URL's (CELLS); nil: one.
	Cells []cells.URL
	// TenantMoves: this instance runs tenant moves (TENANT_MOVES).
	TenantMoves bool

	// The HTTP server.
	Addr            string             // ADDR: host:port to listen on
	CursorKey       []byte             // CURSOR_KEY; nil: serve makes a random one
	TenantMode      httpapi.TenantMode // TENANT_MODE
	BaseDomain      string             // BASE_DOMAIN (subdomain mode)
	CORSOrigins     []string           // CORS_ALLOWED_ORIGINS; nil: CORS off
	ShutdownTimeout time.Duration      // SHUTDOWN_TIMEOUT

	// HTTPS on ADDR: TLS_CERT_FILE and TLS_KEY_FILE, and the pair they
	// name, loaded (and so checked) by Load; all unset: plain HTTP.
	TLSCertFile, TLSKeyFile string
	TLSCertificate          *tls.Certificate

	// Time limits of a request's database work (0: none).
	StatementTimeout time.Duration // STATEMENT_TIMEOUT
	RequestTimeout   time.Duration // REQUEST_TIMEOUT
	AcquireTimeout   time.Duration // ACQUIRE_TIMEOUT

	// Caches (0: off) and background work.
	TenantCacheTTL time.Duration // TENANT_CACHE_TTL
	AuthCacheTTL   time.Duration // AUTH_CACHE_TTL
	PurgeInterval  time.Duration // PURGE_INTERVAL; 0: never

	// A tenant's exports (issue 16): how many and how many bytes it may keep,
	// and for how long.
	ExportMaxCount  int           // EXPORT_MAX_COUNT
	ExportMaxBytes  int64         // EXPORT_MAX_BYTES
	ExportRetention time.Duration // EXPORT_RETENTION, > 0

	// Credentials.
	AuthFailureLimit  int            // AUTH_FAILURE_LIMIT per window and client address; 0: no throttle
	AuthFailureWindow time.Duration  // AUTH_FAILURE_WINDOW, > 0
	TrustedProxies    []netip.Prefix // TRUSTED_PROXIES
	// Tracing: OTEL_EXPORTER_OTLP_ENDPOINT ("": off), OTEL_SERVICE_NAME.
	OTLPEndpoint      string
	ServiceName       string
	JWTHS256Secret    []byte // JWT_HS256_SECRET, >= 32 bytes
	JWTPublicKeysFile string // JWT_PUBLIC_KEYS_FILE
	JWTPublicKeys     []crypto.PublicKey
	JWTIssuer         string        // JWT_ISSUER
	JWTAudience       string        // JWT_AUDIENCE
	JWTTenantClaim    string        // JWT_TENANT_CLAIM
	JWTUserClaim      string        // JWT_USER_CLAIM
	JWTRoleClaim      string        // JWT_ROLE_CLAIM
	JWTLeeway         time.Duration // JWT_LEEWAY
	// JWT_JWKS_URL and its cache; JWT_SUBJECT_MAPPING; JWT_AUTO_CREATE_ROLE ("": off).
	JWTJWKSURL                                        string
	JWTJWKSRefreshInterval, JWTJWKSUnknownKIDInterval time.Duration
	JWTSubjectMapping                                 auth.SubjectMapping
	JWTAutoCreateRole                                 dbtype.Role

	// Each tenant's default limits.
	RateLimit         float64 // RATE_LIMIT in requests/s; 0: none
	RateBurst         int     // RATE_BURST in requests
	TenantConcurrency *int    // TENANT_CONCURRENCY; nil: half the pool
	// Fair sharing: a request past its tenant's share waits in its tenant's
	// queue (ratelimit.Defaults).
	TenantQueueLength  int           // TENANT_QUEUE_LENGTH in requests; 0: no queue
	TenantQueueTimeout time.Duration // TENANT_QUEUE_TIMEOUT; 0: no queue

	// Metrics.
	MetricsAddr         string // METRICS_ADDR; "": no private listener
	MetricsPprof        bool   // METRICS_PPROF
	MetricsToken        string // METRICS_TOKEN; "": not on the API listener
	MetricsTenantLabels int    // METRICS_TENANT_LABELS

	LogFormat string // LOG_FORMAT: "json" or "text"
	// LeakcheckKeyA and LeakcheckKeyB are the two tenants' admin API keys
	// (LEAKCHECK_KEY_A, LEAKCHECK_KEY_B): not flags, so they stay out of ps.
	LeakcheckKeyA, LeakcheckKeyB string
	// GOGC as the Go runtime reads it; "": serve sets its own default.
	GOGC string
}

// JWT is the bearer token configuration, or nil when none of
// JWT_HS256_SECRET, JWT_PUBLIC_KEYS_FILE and JWT_JWKS_URL is set.
func (c Config) JWT() *auth.JWTConfig {
	if !c.jwtOn() {
		return nil
	}
	return &auth.JWTConfig{HMACSecret: c.JWTHS256Secret, PublicKeys: c.JWTPublicKeys,
		Issuer: c.JWTIssuer, Audience: c.JWTAudience,
		TenantClaim: c.JWTTenantClaim, UserClaim: c.JWTUserClaim, RoleClaim: c.JWTRoleClaim,
		Leeway: c.JWTLeeway, JWKSURL: c.JWTJWKSURL, JWKSRefreshInterval: c.JWTJWKSRefreshInterval,
		JWKSUnknownKIDInterval: c.JWTJWKSUnknownKIDInterval, SubjectMapping: c.JWTSubjectMapping,
		AutoCreateRole: c.JWTAutoCreateRole}
}

func (c Config) jwtOn() bool {
	return c.JWTHS256Secret != nil || c.JWTPublicKeysFile != "" || c.JWTJWKSURL != ""
}

// Load reads the variables command reads from getenv: an empty variable is
// an unset one and takes its default. The error, when not nil, names every
// invalid variable and what it may be, one line each; cmd/rowfence reports it
// as a usage error (exit status 2).
func Load(getenv func(string) string, command string) (Config, error) {
	var c Config
	var errs []error
	var checks []func(*Config) error
	for i := range Vars {
		v := &Vars[i]
		if !v.ReadBy(command) || v.kind.parse == nil {
			continue
		}
		if v.check != nil {
			checks = append(checks, v.check)
		}
		raw := getenv(v.Name)
		if raw == "" {
			raw = v.Default
		}
		if raw == "" {
			continue
		}
		if err := v.kind.parse(&c, raw); err != nil {
			errs = append(errs, v.invalid(raw, err))
		}
	}
	for _, check := range checks {
		if err := check(&c); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

// ReadBy reports whether command reads v.
func (v *Var) ReadBy(command string) bool {
	return slices.Contains(v.Commands, All) || slices.Contains(v.Commands, command)
}

// invalid is the one message for a value v refuses: the variable, what it
// may be, and (unless it is a secret) the value given.
func (v *Var) invalid(raw string, err error) error {
	msg := fmt.Sprintf("%s must be %s", v.Name, plain(v.kind.allowed))
	if !v.kind.secret {
		msg += fmt.Sprintf(", not %q", raw)
	}
	if !errors.Is(err, errOutOfRange) {
		msg += " (" + err.Error() + ")"
	}
	return errors.New(msg)
}

// errOutOfRange is a parse error that the allowed text already explains.
var errOutOfRange = errors.New("out of range")

// plain is text with markdown's code quotes taken out, for the terminal.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }
