package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/buildinfo"
	"github.com/rowfence/rowfence/cells"
	"github.com/rowfence/rowfence/db"
)

// handleHealthz: the process is up. It touches nothing else.
func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz: the database answers and the serving roles (the app pool's
// and, when configured, the platform pool's) still cannot see across tenants
// nor start sessions with defaults they set themselves: the same check serve
// runs at start (db.CheckSafety), in every cell (package cells). The answer is anonymous, so it says only
// whether the database could not be reached or a role is unsafe; which role,
// database, socket and problem go to the log (issue 14, item 10). Ready, it
// also names the module version (buildinfo.Info.Version: a tag, or a
// pseudo-version), so a rollout can be watched instance by instance; the
// full revision and the Go version are only in `rowfence version` and the
// rowfence_build_info metric, which are not anonymous.
func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		pools := []struct {
			name string
			pool *pgxpool.Pool
		}{{"app", s.pool}, {"platform", s.platformPool}}
		if s.cells != nil { // every other cell is checked the same way (package cells)
			for _, name := range s.cells.Names() {
				if c, _ := s.cells.Get(name); name != cells.Default {
					pools = append(pools, struct {
						name string
						pool *pgxpool.Pool
					}{"app@" + name, c.App}, struct {
						name string
						pool *pgxpool.Pool
					}{"platform@" + name, c.Platform})
				}
			}
		}
		for _, p := range pools {
			if p.pool == nil {
				continue
			}
			if err := db.CheckSafety(ctx, db.Unscoped(p.pool)); err != nil {
				s.log.Warn("not ready", "pool", p.name, "db_user", p.pool.Config().ConnConfig.User, "err", err.Error())
				detail := "the database cannot be reached"
				if _, unsafe := errors.AsType[*db.SafetyError](err); unsafe {
					detail = "the database role is not safe to serve with; see the server's log"
				}
				w.Header().Set("Retry-After", "5")
				writeProblem(w, r, probUnavailable, detail)
				return
			}
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready", "version": buildinfo.Get().Version})
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
		cred, ok := bearer(w, r, "rowfence-metrics", "METRICS_TOKEN")
		if !ok {
			return
		}
		if subtle.ConstantTimeCompare([]byte(cred), []byte(s.metricsToken)) != 1 {
			challenge(w, r, "rowfence-metrics", "", "send Authorization: Bearer <METRICS_TOKEN>")
			return
		}
		inner.ServeHTTP(w, r)
	})
}
