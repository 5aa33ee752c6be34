package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/rowfence/rowfence/db"
)

// handleHealthz: the process is up. It touches nothing else.
func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz: the database answers and the serving role still cannot see
// across tenants (the same check serve runs at start).
func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := db.CheckSafety(ctx, db.New(s.pool)); err != nil {
			w.Header().Set("Retry-After", "5")
			writeProblem(w, r, probUnavailable, "not ready: "+err.Error())
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
