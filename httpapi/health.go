package httpapi

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"time"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
)

// handleHealthz: the process is up. It touches nothing else.
func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz: the database answers and neither serving role (the app
// pool's, and the platform pool's when /v1/admin is on) can see across
// tenants, nor become a role that can (the same check serve runs at start).
func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		err := db.CheckSafety(ctx, db.New(s.pool))
		if err == nil && s.platformPool != nil {
			if err = db.CheckSafety(ctx, db.New(s.platformPool)); err != nil {
				err = fmt.Errorf("platform pool: %w", err)
			}
		}
		if err != nil {
			w.Header().Set("Retry-After", "5")
			writeProblem(w, r, probUnavailable, "not ready: "+err.Error())
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// handleMetrics serves Prometheus metrics on the API's listener to requests
// bearing MetricsToken. Without a token configured it is a 404 here (scrape
// METRICS_ADDR, a private listener, instead): per-tenant metrics name
// tenants, which the API never tells a stranger.
func (s *server) handleMetrics() http.Handler {
	var inner http.Handler
	if s.metrics != nil {
		inner = s.metrics.Handler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inner == nil || s.metricsToken == "" {
			writeProblem(w, r, probNotFound, "metrics are not served on this listener")
			return
		}
		cred, ok := auth.BearerCredential(r.Header.Get("Authorization"))
		if !ok || subtle.ConstantTimeCompare([]byte(cred), []byte(s.metricsToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rowfence-metrics"`)
			writeProblem(w, r, probUnauthorized, "send Authorization: Bearer <METRICS_TOKEN>")
			return
		}
		inner.ServeHTTP(w, r)
	})
}
