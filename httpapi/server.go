// Package httpapi is rowfence's REST API: routes (routes.go), the tenant
// middleware (tenant.go), handlers, and JSON and problem+json encoding.
// Handlers never filter by tenant; they run their statements through the
// db.Executor their route gives them, which carries the request's db.Scope,
// and PostgreSQL's policies do the rest.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/metrics"
	"github.com/rowfence/rowfence/ratelimit"
	"github.com/rowfence/rowfence/tenancy"
)

// Config holds the server's dependencies.
type Config struct {
	// Pool connects as the app role (never a superuser, owner or BYPASSRLS).
	Pool     *pgxpool.Pool
	Resolver *tenancy.Resolver
	// Auth verifies credentials; every /v1 request needs one.
	Auth   *auth.Authenticator
	Logger *slog.Logger
	// AccessLog, when set, receives the access log's lines as JSON written
	// by zerolog, one Write per line, instead of through Logger: the same
	// keys and values as Logger's slog.JSONHandler writes (time, level, msg,
	// then the request's), at a fraction of the CPU (a line per request).
	// serve sets it to its log output when LOG_FORMAT is json.
	AccessLog io.Writer
	// TenantMode is how requests name their tenant (default ModeHeader);
	// BaseDomain is required by ModeSubdomain (tenants are {slug}.BaseDomain).
	TenantMode TenantMode
	BaseDomain string
	// CursorKey signs pagination cursors; instances behind one load balancer
	// must share it. At least 32 bytes.
	CursorKey []byte
	// StatementTimeout bounds each SQL statement of a request; it is set in
	// the same statement as the tenant (0: the database's default).
	StatementTimeout time.Duration
	// RequestTimeout bounds a /v1 request's database work as a whole,
	// waiting for a pooled connection included (0: none).
	RequestTimeout time.Duration
	// AcquireTimeout bounds the wait for a pooled connection (0: only the
	// request's deadline): past it, a fast 503 instead of a queue.
	AcquireTimeout time.Duration
	// Limiter applies per-tenant rate limits and concurrency caps (nil: none).
	Limiter *ratelimit.Limiter
	// Metrics records requests, rejections and rows (nil: nothing).
	Metrics *metrics.Metrics
	// MetricsToken, when set, serves Metrics at GET /metrics to requests
	// bearing it; unset, /metrics is not on this listener.
	MetricsToken string
	// PlatformPool (the rowfence_platform role's) and Platform (its key
	// verifier) enable /v1/admin; nil leaves platform administration off.
	PlatformPool *pgxpool.Pool
	Platform     *auth.Platform
	// CORSOrigins are the browser origins allowed to call the API ("*":
	// any); empty turns CORS off (ParseCORSOrigins reads the setting).
	CORSOrigins []string
	// AuthFailures throttles client addresses that send failed credentials
	// (nil: none): over budget, they get 429 auth-throttled instead of a
	// database lookup (leak vector 13).
	AuthFailures *ratelimit.Failures
	// TrustedProxies are the proxies whose X-Forwarded-For names the client
	// address (ParseTrustedProxies); empty: the connection's peer is.
	TrustedProxies []netip.Prefix
	// TracerProvider, when set, records an OpenTelemetry server span per
	// request (otelhttp; a W3C traceparent header continues the caller's
	// trace) with the route pattern and the tenant id as attributes, and
	// puts trace_id and span_id in the access log. nil: tracing is off.
	// Pass the same provider to db.Trace for the database spans.
	TracerProvider trace.TracerProvider
	// Cells are the tenant cells (package cells) when the deployment has
	// more than the default one: each request runs on the app pool of the
	// cell its tenant lives in (tenancy.Tenant.Cell), and /v1/admin lists
	// and places tenants in them. nil: every tenant is in Pool's database.
	Cells *cells.Set
	// Exports are a tenant's quota and retention of exports (the zero
	// value: DefaultExportLimits).
	Exports ExportLimits
	// MoveCells, when set, turns on POST /v1/admin/tenants/{id}/move: it
	// says which cells this instance's move job reaches (cells.Movers'
	// Reachable; TENANT_MOVES). Only that: the superuser connections a
	// move needs stay with the job, never on a request's path. nil: moves
	// through the API are off here (409 naming what to configure).
	MoveCells func(cell string) bool
}

type server struct {
	pool             *pgxpool.Pool
	resolver         *tenancy.Resolver
	auth             *auth.Authenticator
	mode             TenantMode
	baseDomain       string
	log              *slog.Logger
	accessLine       *zerolog.Logger // Config.AccessLog; nil: through log
	cursors          cursorCodec
	statementTimeout time.Duration
	requestTimeout   time.Duration
	acquireTimeout   time.Duration
	limiter          *ratelimit.Limiter
	metrics          *metrics.Metrics
	metricsToken     string
	platformPool     *pgxpool.Pool
	tracerProvider   trace.TracerProvider
	platform         *auth.Platform
	corsOrigins      []string
	authFailures     *ratelimit.Failures
	trustedProxies   []netip.Prefix
	cells            *cells.Set
	exports          ExportLimits
	moveCells        func(string) bool
	// skipRoleCheck turns the HTTP role check off, for the test proving
	// that PostgreSQL refuses on its own what a role may not do.
	skipRoleCheck bool
}

// NewServer returns the API as one handler.
func NewServer(cfg Config) (http.Handler, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	return s.handler(), nil
}

func newServer(cfg Config) (*server, error) {
	if cfg.Pool == nil || cfg.Resolver == nil || cfg.Auth == nil {
		return nil, errors.New("httpapi: Pool, Resolver and Auth are required")
	}
	if (cfg.PlatformPool == nil) != (cfg.Platform == nil) {
		return nil, errors.New("httpapi: PlatformPool and Platform go together")
	}
	if cfg.TenantMode == "" {
		cfg.TenantMode = ModeHeader
	}
	if _, err := ParseTenantMode(string(cfg.TenantMode)); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	cfg.BaseDomain = strings.TrimSuffix(strings.ToLower(cfg.BaseDomain), ".")
	if cfg.TenantMode == ModeSubdomain && (cfg.BaseDomain == "" || strings.HasPrefix(cfg.BaseDomain, ".")) {
		return nil, errors.New("httpapi: subdomain mode needs a base domain, e.g. api.example.com")
	}
	if len(cfg.CursorKey) < 32 {
		return nil, errors.New("httpapi: CursorKey must be at least 32 bytes")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AuthFailures != nil {
		// A key in use is verified again in the background, not in a
		// request (checkCredential vouches for those): vouch there too.
		cfg.Auth.OnVerified(cfg.AuthFailures.Vouch)
	}
	var accessLine *zerolog.Logger
	if cfg.AccessLog != nil {
		l := zerolog.New(cfg.AccessLog)
		accessLine = &l
	}
	return &server{accessLine: accessLine, pool: cfg.Pool, resolver: cfg.Resolver, auth: cfg.Auth, mode: cfg.TenantMode, baseDomain: cfg.BaseDomain,
		log: cfg.Logger, cursors: newCursorCodec(cfg.CursorKey),
		statementTimeout: cfg.StatementTimeout, requestTimeout: cfg.RequestTimeout, acquireTimeout: cfg.AcquireTimeout,
		limiter: cfg.Limiter, metrics: cfg.Metrics, metricsToken: cfg.MetricsToken,
		platformPool: cfg.PlatformPool, platform: cfg.Platform, corsOrigins: cfg.CORSOrigins,
		authFailures: cfg.AuthFailures, trustedProxies: cfg.TrustedProxies, tracerProvider: cfg.TracerProvider, cells: cfg.Cells,
		exports: cfg.Exports.orDefault(), moveCells: cfg.MoveCells}, nil
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	s.routes(mux)
	h := s.accessLog(s.recoverPanics(s.cors(problemsForMux(mux))))
	if s.tracerProvider == nil {
		return h
	}
	// The span starts outside the access log so that the log line can name
	// it; the access log names the span after the route once the mux chose.
	return otelhttp.NewHandler(h, "request", otelhttp.WithTracerProvider(s.tracerProvider),
		otelhttp.WithPropagators(propagation.TraceContext{}))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// RequestIDHeader carries a request's id: taken from the client when it is
// a sane token, made up otherwise, and always returned.
const RequestIDHeader = "X-Request-ID"

// requestInfo travels in the request's context so that inner handlers can
// tell the access log what they decided (the tenant).
type requestInfo struct {
	id     string
	tenant string
	// principal is who the request ran as, once authenticated: a copy,
	// kept here rather than pointed at, so that it need not go to the heap.
	principal     auth.Principal
	authenticated bool
	// resolved is the request's tenant, as authenticate resolved it. The
	// request's context points at it and at principal (tenancy.FromContext,
	// auth.FromContext) rather than carrying copies of its own.
	resolved tenancy.Tenant
	// authErr says why a credential was refused (never the credential).
	authErr string
	// client is the request's client address (clientAddr), worked out
	// once: the credential throttle and the access log both read it.
	client    netip.Addr
	clientSet bool
}

type requestInfoKey struct{}

func infoFrom(r *http.Request) *requestInfo {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// loggedRequest is what accessLog keeps of one request, in one allocation
// instead of four: the request's info, the recorder of its status, the
// X-Request-Id value, and the context node that carries the info.
type loggedRequest struct {
	info requestInfo
	rec  statusRecorder
	id   [1]string
	ctx  infoContext
}

// infoContext is context.WithValue(parent, requestInfoKey{}, info) as a
// field of loggedRequest. Every other method is the parent's, Done
// included, so the context package still finds the parent's cancelCtx
// (no goroutine for contexts derived from it).
type infoContext struct {
	context.Context
	info *requestInfo
}

func (c *infoContext) Value(key any) any {
	if key == (requestInfoKey{}) {
		return c.info
	}
	return c.Context.Value(key)
}

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:/+=~", c)) {
			return false
		}
	}
	return true
}

// accessLog writes one line per request, panics included: request id,
// method, path, route, tenant, who (user, role, key id), status, duration,
// client address (clientAddr: TRUSTED_PROXIES honoured), user agent, and
// trace_id and span_id when the request's span is recording. Never a
// credential or a body.
func (s *server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lr := &loggedRequest{}
		info, rec := &lr.info, &lr.rec
		if ids := r.Header[hdrRequestID]; len(ids) > 0 {
			info.id = ids[0]
		}
		if !validRequestID(info.id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			info.id = hex.EncodeToString(b[:])
		}
		lr.id[0] = info.id
		w.Header()[hdrRequestID] = lr.id[:]
		rec.ResponseWriter = w
		lr.ctx = infoContext{Context: r.Context(), info: info}
		r = r.WithContext(&lr.ctx)
		next.ServeHTTP(rec, r)
		end := time.Now()
		span := trace.SpanFromContext(r.Context())
		recording := span.IsRecording()
		if recording {
			s.annotateSpan(span, r, info)
		}
		s.metrics.Request(r.Pattern, r.Method, rec.status, end.Sub(start), info.tenant)
		if s.accessLine != nil {
			s.writeAccessLine(r, info, rec.status, end, end.Sub(start), span, recording)
			return
		}
		h := s.log.Handler()
		if !h.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		attrs := make([]slog.Attr, 0, 17)
		attrs = append(attrs, slog.String("request_id", info.id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Float64("duration_ms", float64(end.Sub(start).Microseconds())/1000))
		if a := s.client(r); a.IsValid() {
			attrs = append(attrs, slog.String("client", a.String()))
		}
		if ua := r.UserAgent(); ua != "" {
			attrs = append(attrs, slog.String("user_agent", ua))
		}
		if recording {
			sc := span.SpanContext()
			attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
		if r.Pattern != "" {
			attrs = append(attrs, slog.String("route", r.Pattern))
		}
		if info.tenant != "" {
			attrs = append(attrs, slog.String("tenant", info.tenant))
		}
		if info.authenticated {
			p := &info.principal
			attrs = append(attrs, slog.String("user", p.UserID.String()), slog.String("role", string(p.Role)), slog.String("credential", p.Kind))
			if p.KeyID != uuid.Nil {
				attrs = append(attrs, slog.String("key_id", p.KeyID.String()))
			}
		}
		if info.authErr != "" {
			attrs = append(attrs, slog.String("auth_error", info.authErr))
		}
		// The record is made here, as Logger.LogAttrs would make it but
		// without the caller's program counter, which LogAttrs captures on
		// every call (runtime.Callers) for handlers that add the source:
		// the access log's source would always be this line.
		line := slog.NewRecord(end, slog.LevelInfo, "request", 0)
		line.AddAttrs(attrs...)
		_ = h.Handle(r.Context(), line)
	})
}

// writeAccessLine writes accessLog's line to Config.AccessLog with zerolog:
// the keys, their order and their values as the slog path writes them
// through slog.JSONHandler (TestAccessLogEncodersAgree), without slog's
// attributes, record and reflection-driven handler.
func (s *server) writeAccessLine(r *http.Request, info *requestInfo, status int, end time.Time, d time.Duration, span trace.Span, recording bool) {
	var buf [64]byte
	e := s.accessLine.Log().
		Bytes(slog.TimeKey, end.AppendFormat(buf[:0], time.RFC3339Nano)).
		Str(slog.LevelKey, slog.LevelInfo.String()).
		Str(slog.MessageKey, "request").
		Str("request_id", info.id).Str("method", r.Method).Str("path", r.URL.Path).
		Int("status", status).RawJSON("duration_ms", appendJSONMillis(buf[:0], d))
	if a := s.client(r); a.IsValid() {
		e = e.Bytes("client", a.AppendTo(buf[:0]))
	}
	if ua := r.UserAgent(); ua != "" {
		e = e.Str("user_agent", ua)
	}
	if recording {
		sc := span.SpanContext()
		e = e.Str("trace_id", sc.TraceID().String()).Str("span_id", sc.SpanID().String())
	}
	if r.Pattern != "" {
		e = e.Str("route", r.Pattern)
	}
	if info.tenant != "" {
		e = e.Str("tenant", info.tenant)
	}
	if info.authenticated {
		p := &info.principal
		e = e.RawJSON("user", appendJSONUUID(buf[:0], p.UserID)).Str("role", string(p.Role)).Str("credential", p.Kind)
		if p.KeyID != uuid.Nil {
			e = e.RawJSON("key_id", appendJSONUUID(buf[:0], p.KeyID))
		}
	}
	if info.authErr != "" {
		e = e.Str("auth_error", info.authErr)
	}
	e.Send()
}

// annotateSpan names the request's server span after its route and adds
// the route (http.route, OpenTelemetry semantic conventions) and the
// tenant; never a credential (otelhttp records no request headers but the
// user agent).
func (s *server) annotateSpan(span trace.Span, r *http.Request, info *requestInfo) {
	if r.Pattern != "" {
		span.SetName(r.Pattern)
		span.SetAttributes(attribute.String("http.route", r.Pattern))
	}
	if info.tenant != "" {
		span.SetAttributes(attrTenant.String(info.tenant))
	}
	if info.authenticated {
		p := &info.principal
		span.SetAttributes(db.AttrTenantID.String(p.TenantID.String()))
	}
}

// attrTenant is the tenant as the request named it (slug), on server spans.
const attrTenant = attribute.Key("rowfence.tenant")

// recoverPanics turns a handler panic into a 500 problem and a logged stack;
// the server keeps serving.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "handler panicked", "request_id", infoFrom(r).id, "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeProblem(w, r, probInternal, "")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// problemsForMux answers the mux's own 404 and 405 with problem+json. The
// mux records the matched pattern on the request before calling a handler,
// so an empty r.Pattern at WriteHeader means the mux itself is answering:
// one route match per request, not a second one to find out in advance.
func problemsForMux(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&muxErrorWriter{ResponseWriter: w, r: r}, r)
	})
}

// muxErrorWriter replaces the mux's plain-text 404 and 405 bodies.
type muxErrorWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (m *muxErrorWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }

func (m *muxErrorWriter) WriteHeader(code int) {
	if m.r.Pattern != "" { // a route's handler answering: leave it alone
		m.ResponseWriter.WriteHeader(code)
		return
	}
	switch code {
	case http.StatusNotFound:
		m.replaced = true
		writeProblem(m.ResponseWriter, m.r, probNotFound, "no route for "+m.r.URL.Path)
	case http.StatusMethodNotAllowed:
		m.replaced = true
		writeProblem(m.ResponseWriter, m.r, probMethodNotAllowed,
			m.r.Method+" is not allowed here; allowed: "+m.ResponseWriter.Header().Get("Allow"))
	default:
		m.ResponseWriter.WriteHeader(code)
	}
}

func (m *muxErrorWriter) Write(b []byte) (int, error) {
	if m.replaced {
		return len(b), nil
	}
	return m.ResponseWriter.Write(b)
}
