// Package metrics is what rowfence tells Prometheus: the build
// (rowfence_build_info), requests by route, method and status, latency,
// database time, pool statistics, rate-limit and concurrency-cap rejections,
// per-tenant request and row counters, the credential and tenant caches,
// failed credentials and throttled clients, and the per-tenant queues of
// fair sharing (queue.go).
//
// Cardinality is bounded: routes are the mux's patterns (never raw paths),
// and tenants get their own label value only for the first TenantLabels
// distinct tenants an instance sees; later ones are counted as "other".
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rowfence/rowfence/buildinfo"
	"github.com/rowfence/rowfence/cache"
)

// DefaultTenantLabels bounds the tenant label's values per instance.
const DefaultTenantLabels = 100

// OtherTenant is the label value for tenants past the budget.
const OtherTenant = "other"

// Metrics holds rowfence's collectors. A nil *Metrics records nothing.
type Metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	dbDuration     *prometheus.HistogramVec
	rejections     *prometheus.CounterVec
	tenantRequests *prometheus.CounterVec
	tenantRows     *prometheus.CounterVec
	authFailures   *prometheus.CounterVec
	authThrottled  prometheus.Counter
	queueWait      *prometheus.HistogramVec // queue.go
	// queueAdmitted is queueWait's series of the admitted, looked up once:
	// most requests wait for a slot under load (queue.go).
	queueAdmitted prometheus.Observer

	cachesMu sync.Mutex
	caches   []cache.Observable

	// The series a request touches, looked up once and kept: a label
	// lookup hashes every label value and takes the vector's lock, several
	// times per request otherwise. routes holds *routeSeries by
	// routeKey (bounded: the mux's patterns, their methods, the statuses
	// the API answers); tenants holds *tenantSeries by slug for the
	// tenants with a label of their own (at most maxLabel), other those
	// past the budget (made when first needed).
	routes   sync.Map
	tenants  sync.Map
	mu       sync.Mutex // guards labelled and other
	labelled int
	other    *tenantSeries
	maxLabel int

	dbStatement, dbPipeline prometheus.Observer
}

type routeKey struct {
	route, method string
	status        int
}

type routeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// tenantSeries are a tenant label's counters, each made on its first use
// (so /metrics shows the series that counted something, as before).
type tenantSeries struct {
	label                   string
	requests, read, written lazyCounter
}

type lazyCounter struct {
	c atomic.Pointer[prometheus.Counter]
}

// get returns the counter of vec with labels, made once (racing callers
// get the same child from vec).
func (l *lazyCounter) get(vec *prometheus.CounterVec, labels ...string) prometheus.Counter {
	if c := l.c.Load(); c != nil {
		return *c
	}
	c := vec.WithLabelValues(labels...)
	l.c.Store(&c)
	return c
}

// New makes the collectors; tenantLabels <= 0 means DefaultTenantLabels.
func New(tenantLabels int) *Metrics {
	if tenantLabels <= 0 {
		tenantLabels = DefaultTenantLabels
	}
	m := &Metrics{reg: prometheus.NewRegistry(), maxLabel: tenantLabels}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rowfence_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
	}, []string{"route", "method", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rowfence_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method"})
	m.dbDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rowfence_db_duration_seconds", Help: "Database time: one pipeline (batch) or lone statement, network included.",
		Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
	}, []string{"kind"})
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rowfence_rejections_total", Help: "Requests refused by a per-tenant limit (reason: rate or concurrency).",
	}, []string{"reason", "tenant"})
	m.tenantRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rowfence_tenant_requests_total", Help: "Authenticated requests per tenant (bounded label: see the README).",
	}, []string{"tenant"})
	m.tenantRows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rowfence_tenant_rows_total", Help: "Rows read and written through the API per tenant (op: read or written).",
	}, []string{"tenant", "op"})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rowfence_auth_failures_total", Help: "Credentials refused as unknown, forged, revoked, expired or malformed (credential: api_key, token or platform_key).",
	}, []string{"credential"})
	m.authThrottled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rowfence_auth_throttled_total", Help: "Requests answered 429 auth-throttled: their client address sent too many failed credentials.",
	})
	// The build, as an info metric (value 1, the facts in the labels): join
	// it to other series by instance to see which build answered.
	build := buildinfo.Get()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rowfence_build_info", Help: "Always 1; the labels name the build: module version, VCS revision, Go version (`rowfence version`).",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": build.GoVersion},
	})
	buildInfo.Set(1)
	m.dbStatement, m.dbPipeline = m.dbDuration.WithLabelValues("statement"), m.dbDuration.WithLabelValues("pipeline")
	m.queueWait = newQueueWait()
	m.queueAdmitted = m.queueWait.WithLabelValues("admitted")
	m.reg.MustRegister(m.queueWait)
	m.reg.MustRegister(buildInfo, m.requests, m.duration, m.dbDuration, m.rejections, m.tenantRequests, m.tenantRows,
		m.authFailures, m.authThrottled, cacheCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// tenant returns the series of a tenant: its own for the first maxLabel
// tenants seen, the "other" tenant's past the budget.
func (m *Metrics) tenant(slug string) *tenantSeries {
	if t, ok := m.tenants.Load(slug); ok {
		return t.(*tenantSeries)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tenants.Load(slug); ok {
		return t.(*tenantSeries)
	}
	if m.labelled >= m.maxLabel {
		if m.other == nil {
			m.other = &tenantSeries{label: OtherTenant}
		}
		return m.other
	}
	t := &tenantSeries{label: slug}
	m.tenants.Store(slug, t)
	m.labelled++
	return t
}

// Request records one HTTP request; route is the mux pattern ("" when none
// matched), tenant "" when the request was not authenticated.
func (m *Metrics) Request(route, method string, status int, d time.Duration, tenant string) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
		method = "other" // unmatched requests can carry any method string
	}
	key := routeKey{route, method, status}
	rs, ok := m.routes.Load(key)
	if !ok {
		// A matched route's method is one its pattern admits, so the keys
		// are bounded; LoadOrStore keeps one series per key.
		rs, _ = m.routes.LoadOrStore(key, &routeSeries{requests: m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(route, method)})
	}
	rs.(*routeSeries).requests.Inc()
	rs.(*routeSeries).duration.Observe(d.Seconds())
	if tenant != "" {
		t := m.tenant(tenant)
		t.requests.get(m.tenantRequests, t.label).Inc()
	}
}

// Rejected records a request refused by a tenant's limit.
func (m *Metrics) Rejected(reason, tenant string) {
	if m == nil {
		return
	}
	m.rejections.WithLabelValues(reason, m.tenant(tenant).label).Inc()
}

// Rows records rows a tenant's request read and wrote.
func (m *Metrics) Rows(tenant string, read, written int) {
	if m == nil {
		return
	}
	t := m.tenant(tenant)
	if read > 0 {
		t.read.get(m.tenantRows, t.label, "read").Add(float64(read))
	}
	if written > 0 {
		t.written.get(m.tenantRows, t.label, "written").Add(float64(written))
	}
}

// CredentialFailed records a refused credential of kind (api_key, token or
// platform_key).
func (m *Metrics) CredentialFailed(kind string) {
	if m == nil {
		return
	}
	m.authFailures.WithLabelValues(kind).Inc()
}

// AuthThrottled records a request refused because its client address sent
// too many failed credentials.
func (m *Metrics) AuthThrottled() {
	if m == nil {
		return
	}
	m.authThrottled.Inc()
}

// WatchCaches exports the caches' lookups, evictions and sizes, labelled
// by each cache's Name.
func (m *Metrics) WatchCaches(caches ...cache.Observable) {
	if m == nil {
		return
	}
	m.cachesMu.Lock()
	m.caches = append(m.caches, caches...)
	m.cachesMu.Unlock()
}

var (
	cacheLookups = prometheus.NewDesc("rowfence_cache_lookups_total",
		"Cache lookups by result: hit (a cached entry), absent (a cached 'not found'), miss (asked the database).",
		[]string{"cache", "result"}, nil)
	cacheEvictions = prometheus.NewDesc("rowfence_cache_evictions_total",
		"Entries a cache dropped to stay within its size (side: positive, or negative for cached 'not found').",
		[]string{"cache", "side"}, nil)
	cacheEntries = prometheus.NewDesc("rowfence_cache_entries",
		"Entries in a cache (side: positive, or negative for cached 'not found').", []string{"cache", "side"}, nil)
)

type cacheCollector struct{ m *Metrics }

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheLookups
	ch <- cacheEvictions
	ch <- cacheEntries
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.cachesMu.Lock()
	caches := c.m.caches
	c.m.cachesMu.Unlock()
	for _, o := range caches {
		s, name := o.Stats(), o.Name()
		ch <- prometheus.MustNewConstMetric(cacheLookups, prometheus.CounterValue, float64(s.Hits), name, "hit")
		ch <- prometheus.MustNewConstMetric(cacheLookups, prometheus.CounterValue, float64(s.AbsentHits), name, "absent")
		ch <- prometheus.MustNewConstMetric(cacheLookups, prometheus.CounterValue, float64(s.Misses), name, "miss")
		ch <- prometheus.MustNewConstMetric(cacheEvictions, prometheus.CounterValue, float64(s.Evictions), name, "positive")
		ch <- prometheus.MustNewConstMetric(cacheEvictions, prometheus.CounterValue, float64(s.NegativeEvictions), name, "negative")
		ch <- prometheus.MustNewConstMetric(cacheEntries, prometheus.GaugeValue, float64(s.Entries), name, "positive")
		ch <- prometheus.MustNewConstMetric(cacheEntries, prometheus.GaugeValue, float64(s.NegativeEntries), name, "negative")
	}
}

// WatchPool exports pool's statistics.
func (m *Metrics) WatchPool(pool *pgxpool.Pool) {
	if m == nil {
		return
	}
	m.reg.MustRegister(poolCollector{pool})
}

// Tracer times the database work of a pgx connection; set it as the pool's
// ConnConfig.Tracer.
func (m *Metrics) Tracer() pgx.QueryTracer { return dbTracer{m} }

type startKey struct{}

// startContext carries when a statement or pipeline started from the
// tracer's Start to its End: context.WithValue(ctx, startKey{}, start) in
// one allocation instead of two (the node, and the time.Time boxed).
// Every other method is the parent's, Done included, so the context
// package still finds the parent's cancelCtx (pgx watches this context).
type startContext struct {
	context.Context
	start time.Time
}

func (c *startContext) Value(key any) any {
	if key == (startKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func withStart(ctx context.Context) context.Context {
	return &startContext{Context: ctx, start: time.Now()}
}

// since is the time since ctx's start (withStart); ok false without one.
func since(ctx context.Context) (d time.Duration, ok bool) {
	c, ok := ctx.Value(startKey{}).(*startContext)
	if !ok {
		return 0, false
	}
	return time.Since(c.start), true
}

type dbTracer struct{ m *Metrics }

func (t dbTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return withStart(ctx)
}

func (t dbTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if d, ok := since(ctx); ok {
		t.m.dbStatement.Observe(d.Seconds())
	}
}

func (t dbTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return withStart(ctx)
}

func (t dbTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t dbTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	if d, ok := since(ctx); ok {
		t.m.dbPipeline.Observe(d.Seconds())
	}
}

type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolAcquired = prometheus.NewDesc("rowfence_db_pool_acquired_conns", "Connections in use.", nil, nil)
	poolIdle     = prometheus.NewDesc("rowfence_db_pool_idle_conns", "Idle connections.", nil, nil)
	poolTotal    = prometheus.NewDesc("rowfence_db_pool_total_conns", "Open connections.", nil, nil)
	poolMax      = prometheus.NewDesc("rowfence_db_pool_max_conns", "The pool's maximum size.", nil, nil)
	poolAcquires = prometheus.NewDesc("rowfence_db_pool_acquires_total", "Successful acquires.", nil, nil)
	poolWait     = prometheus.NewDesc("rowfence_db_pool_acquire_wait_seconds_total", "Time spent acquiring.", nil, nil)
	poolEmpty    = prometheus.NewDesc("rowfence_db_pool_empty_acquires_total", "Acquires that had to wait for a connection.", nil, nil)
	poolCanceled = prometheus.NewDesc("rowfence_db_pool_canceled_acquires_total", "Acquires given up (deadline or cancel).", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolTotal, poolMax, poolAcquires, poolWait, poolEmpty, poolCanceled} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolAcquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(poolEmpty, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolCanceled, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
}
