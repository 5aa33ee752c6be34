package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
)

func TestPanicBecomesProblemAndIsLogged(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	s := &server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	h := s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			panic("kaboom-internal-detail")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	require.Equal(t, 500, rec.Code)
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	var p Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Equal(t, "urn:rowfence:problem:internal", p.Type)
	require.NotContains(t, rec.Body.String(), "kaboom", "no internals in the answer")
	require.Contains(t, logs.String(), "kaboom-internal-detail")
	require.Contains(t, logs.String(), "stack=")
	// Over a real connection too, and the server keeps serving afterwards.
	for _, path := range []string{"/boom", "/fine", "/boom", "/fine"} {
		res, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		res.Body.Close()
		want := map[string]int{"/boom": 500, "/fine": 204}[path]
		require.Equal(t, want, res.StatusCode, path)
	}
}

func TestDatabaseErrorsMapToStatuses(t *testing.T) {
	t.Parallel()
	s := &server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, c := range []struct {
		err    error
		status int
	}{
		{db.ErrNotFound, 404},
		{&db.ConstraintError{Kind: db.ErrConflict, Constraint: "users_tenant_email_key"}, 409},
		{&db.ConstraintError{Kind: db.ErrInvalid, Constraint: "products_price_range"}, 422},
		{&db.ConstraintError{Kind: db.ErrForbidden}, 403},
		{errors.Join(db.ErrUnavailable, errors.New("dial")), 503},
		{errors.New("something else"), 500},
	} {
		rec := httptest.NewRecorder()
		s.dbError(rec, httptest.NewRequest("GET", "/v1/products", nil), c.err)
		require.Equal(t, c.status, rec.Code, "%v", c.err)
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	}
}
