package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rowfence/rowfence/ratelimit"
)

// The fair-sharing queues of ratelimit: how long requests waited for a
// slot (by outcome), and at scrape time how many wait and how many slots
// are held.
var (
	queueDepth    = prometheus.NewDesc("rowfence_tenant_queue_depth", "Requests waiting for a slot in their tenant's queue, all tenants.", nil, nil)
	queueInFlight = prometheus.NewDesc("rowfence_tenant_slots_in_use", "Slots held by requests doing database work, all tenants.", nil, nil)
	queueCapacity = prometheus.NewDesc("rowfence_tenant_slots", "Slots in all (the app pool's size; 0: unbounded).", nil, nil)
)

func newQueueWait() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rowfence_tenant_queue_wait_seconds",
		Help:    "Time requests waited in their tenant's queue for a slot (outcome: admitted, or the refusal's reason: concurrency, overloaded, canceled). Requests that did not wait are not counted.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"outcome"})
}

// Queued records a request that waited in its tenant's queue; reason is
// the refusal's ("" when it was admitted).
func (m *Metrics) Queued(waited time.Duration, reason string) {
	if m == nil {
		return
	}
	if reason == "" {
		m.queueAdmitted.Observe(waited.Seconds())
		return
	}
	m.queueWait.WithLabelValues(reason).Observe(waited.Seconds())
}

// WatchLimiter reports l's queues and slots at every scrape.
func (m *Metrics) WatchLimiter(l *ratelimit.Limiter) {
	if m == nil || l == nil {
		return
	}
	m.reg.MustRegister(limiterCollector{l})
}

type limiterCollector struct{ l *ratelimit.Limiter }

func (c limiterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepth
	ch <- queueInFlight
	ch <- queueCapacity
}

func (c limiterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.l.Stats()
	ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(s.Waiting))
	ch <- prometheus.MustNewConstMetric(queueInFlight, prometheus.GaugeValue, float64(s.InFlight))
	ch <- prometheus.MustNewConstMetric(queueCapacity, prometheus.GaugeValue, float64(s.Capacity))
}
