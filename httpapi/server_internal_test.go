package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/lifecycle"
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

// Issue #15 item 3: every package's errors carry a db.Code, and one table
// (codeProblems) turns a code into a problem: its status and type, the
// error's message and field when it has them, Retry-After when a retry may
// help. Nothing else becomes anything but a logged 500.
func TestDatabaseErrorsMapToStatuses(t *testing.T) {
	t.Parallel()
	s := &server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, c := range []struct {
		err    error
		status int
		typ    string
		field  string // the one field named in errors[]
		retry  bool
	}{
		{db.ErrNotFound, 404, "not-found", "", false},
		{lifecycle.ErrNotFound, 404, "not-found", "", false},
		{&db.Error{Code: db.ErrConflict, Constraint: "users_tenant_email_key", Field: "email", Message: "taken"}, 409, "conflict", "email", false},
		{lifecycle.ErrDeleting, 409, "conflict", "", false},
		{&db.Error{Code: db.ErrLastAdmin, Constraint: "users_last_admin"}, 409, "last-admin", "", false},
		{&db.Error{Code: db.ErrInvalid, Constraint: "products_price_range"}, 422, "validation", "", false},
		{auth.ErrUnknownUser, 422, "validation", "user_id", false},
		{auth.ErrRoleAboveUser, 422, "validation", "role", false},
		{&db.Error{Code: db.ErrForbidden}, 403, "forbidden", "", false},
		{errors.Join(db.ErrUnavailable, errors.New("dial")), 503, "unavailable", "", true},
		{&db.Error{Code: db.ErrTimeout}, 503, "unavailable", "", true},
		{fmt.Errorf("wrapped: %w", errPrecondition{current: `"x"`}), 412, "precondition-failed", "", false},
		{errors.New("something else"), 500, "internal", "", false},
	} {
		rec := httptest.NewRecorder()
		s.writeError(rec, httptest.NewRequest("GET", "/v1/products", nil), c.err)
		require.Equal(t, c.status, rec.Code, "%v", c.err)
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
		var p Problem
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
		require.Equal(t, "urn:rowfence:problem:"+c.typ, p.Type, "%v", c.err)
		require.NotContains(t, rec.Body.String(), "users_tenant_email_key", "a constraint's name is not the client's business")
		if c.field == "" {
			require.Empty(t, p.Errors, "%v", c.err)
		} else {
			require.Len(t, p.Errors, 1, "%v", c.err)
			require.Equal(t, c.field, p.Errors[0].Field)
			require.Equal(t, p.Detail, p.Errors[0].Detail, "the error's message")
		}
		require.Equal(t, c.retry, rec.Header().Get("Retry-After") == "1", "%v", c.err)
	}
}
