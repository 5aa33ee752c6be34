package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CORS for browser clients: off unless origins are configured. Credentials
// travel in the Authorization header (never cookies), so no
// Access-Control-Allow-Credentials is needed or sent.

var (
	corsMethods = "GET, POST, PATCH, DELETE"
	corsHeaders = "Authorization, Content-Type, X-Tenant-ID, X-Request-ID, Idempotency-Key, If-Match, If-None-Match"
	corsExposed = "ETag, Location, Retry-After, RateLimit, RateLimit-Policy, X-Request-ID, WWW-Authenticate, Idempotent-Replayed"
)

// ParseCORSOrigins reads CORS_ALLOWED_ORIGINS: a comma-separated list of
// origins (scheme://host[:port]), or "*" for any.
func ParseCORSOrigins(raw string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(raw, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
				return nil, errors.New("CORS origins are scheme://host[:port] (no path), or *; not " + o)
			}
			o = strings.ToLower(o)
		}
		out = append(out, o)
	}
	return out, nil
}

// cors answers preflights and marks allowed origins' answers.
func (s *server) cors(next http.Handler) http.Handler {
	if len(s.corsOrigins) == 0 {
		return next
	}
	anyOrigin := slices.Contains(s.corsOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := anyOrigin || slices.Contains(s.corsOrigins, strings.ToLower(origin))
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if !allowed {
				writeProblem(w, r, probForbidden, "origin "+origin+" is not allowed (CORS_ALLOWED_ORIGINS)")
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExposed)
		}
		next.ServeHTTP(w, r)
	})
}
