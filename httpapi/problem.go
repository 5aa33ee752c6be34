package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/tenancy"
)

// Problem is an RFC 9457 problem detail. Every error rowfence answers is one.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// FieldError is one invalid field of a request body (422 answers).
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// problemType names each kind of problem; the URN is stable and documented in
// the README, the title is its human-readable summary.
type problemType struct {
	status int
	slug   string
	title  string
}

var (
	probBadRequest              = problemType{http.StatusBadRequest, "bad-request", "Bad request"}
	probMalformedJSON           = problemType{http.StatusBadRequest, "malformed-json", "Malformed JSON body"}
	probTenantRequired          = problemType{http.StatusBadRequest, "tenant-required", "Tenant required"}
	probTenantMalformed         = problemType{http.StatusBadRequest, "tenant-malformed", "Malformed tenant identifier"}
	probInvalidCursor           = problemType{http.StatusBadRequest, "invalid-cursor", "Invalid cursor"}
	probInvalidID               = problemType{http.StatusBadRequest, "invalid-id", "Invalid id"}
	probIdempotencyKeyMalformed = problemType{http.StatusBadRequest, "idempotency-key-malformed", "Malformed Idempotency-Key"}
	probIdempotencyKeyReused    = problemType{http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused for another request"}
	probUnauthorized            = problemType{http.StatusUnauthorized, "unauthorized", "Unauthorized"}
	probTenantMismatch          = problemType{http.StatusForbidden, "tenant-mismatch", "Credential not valid for this tenant"}
	probTenantSuspended         = problemType{http.StatusForbidden, "tenant-suspended", "Tenant suspended"}
	probForbidden               = problemType{http.StatusForbidden, "forbidden", "Forbidden"}
	probNotFound                = problemType{http.StatusNotFound, "not-found", "Not found"}
	probMethodNotAllowed        = problemType{http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"}
	probPreconditionFailed      = problemType{http.StatusPreconditionFailed, "precondition-failed", "Precondition failed"}
	probConflict                = problemType{http.StatusConflict, "conflict", "Conflict"}
	probLastAdmin               = problemType{http.StatusConflict, "last-admin", "The tenant's last admin"}
	probTenantArchived          = problemType{http.StatusConflict, "tenant-archived", "Tenant archived"}
	probExportQuota             = problemType{http.StatusConflict, "export-quota", "The tenant's export quota is used up"}
	probRateLimited             = problemType{http.StatusTooManyRequests, "rate-limited", "Too many requests"}
	probConcurrencyLimited      = problemType{http.StatusTooManyRequests, "concurrency-limited", "Too many requests in progress"}
	probAuthThrottled           = problemType{http.StatusTooManyRequests, "auth-throttled", "Too many failed credentials"}
	probTooLarge                = problemType{http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large"}
	probUnsupportedMedia        = problemType{http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"}
	probValidation              = problemType{http.StatusUnprocessableEntity, "validation", "Validation failed"}
	probInternal                = problemType{http.StatusInternalServerError, "internal", "Internal server error"}
	probUnavailable             = problemType{http.StatusServiceUnavailable, "unavailable", "Service unavailable"}
)

const problemURNPrefix = "urn:rowfence:problem:"

// writeProblem answers with a problem of type pt.
func writeProblem(w http.ResponseWriter, r *http.Request, pt problemType, detail string) {
	writeProblemBody(w, r, Problem{Type: problemURNPrefix + pt.slug, Title: pt.title, Status: pt.status, Detail: detail})
}

func writeValidation(w http.ResponseWriter, r *http.Request, errs fieldErrors) {
	p := Problem{
		Type:   problemURNPrefix + probValidation.slug,
		Title:  probValidation.title,
		Status: probValidation.status,
		Detail: "the request body has invalid fields; see errors",
	}
	for field, detail := range errs {
		p.Errors = append(p.Errors, FieldError{Field: field, Detail: detail})
	}
	sort.Slice(p.Errors, func(i, j int) bool { return p.Errors[i].Field < p.Errors[j].Field })
	writeProblemBody(w, r, p)
}

func writeProblemBody(w http.ResponseWriter, r *http.Request, p Problem) {
	if r != nil {
		p.Instance = r.URL.Path
	}
	drainBody(w, r)
	body, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// codeProblem is how the API answers an error of one db.Code.
type codeProblem struct {
	problemType
	// detail is said when the error has no message of its own.
	detail string
	// retry: the client may retry shortly (Retry-After: 1).
	retry bool
}

// codeProblems is the one table from error codes to problems, as PostgREST's
// mapSQLtoHTTP is: every package's errors carry a db.Code (db/errors.go), the
// database's from the boundary that maps them, so no handler builds a
// problem for them by hand.
var codeProblems = map[db.Code]codeProblem{
	// The same answer for "absent" and "another tenant's" is not a choice
	// made here: RLS makes the two indistinguishable (leak vector 8).
	db.ErrNotFound:    {probNotFound, "no such resource", false},
	db.ErrConflict:    {probConflict, "the resource conflicts with an existing one", false},
	db.ErrInvalid:     {probValidation, "the database rejected a value", false},
	db.ErrForbidden:   {probForbidden, "the database refused the operation", false},
	db.ErrTimeout:     {probUnavailable, "the database did not answer within the statement timeout; retry shortly", true},
	db.ErrUnavailable: {probUnavailable, "the database is unavailable; retry shortly", true},
	db.ErrLastAdmin:   {probLastAdmin, "a tenant must keep an admin", false},
}

// writeError answers for err: 412 for an If-Match that does not hold, the
// problem of its code (codeProblems), with the field and message of a
// *db.Error when it has them, and otherwise a logged 500 that says nothing
// of the cause.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if pf, ok := errors.AsType[errPrecondition](err); ok {
		w.Header().Set("ETag", pf.current)
		writeProblem(w, r, probPreconditionFailed, "the resource changed since you read it (its ETag is now "+pf.current+"); read it again and retry")
		return
	}
	if pg, ok := errors.AsType[*pgconn.PgError](err); ok && pg.Code == db.FrozenSQLState {
		// The tenant is being moved, or moved already and this instance
		// still places it in the source (package cells): its next request
		// reads the placement again (TestStalePlacementLosesNoWrite).
		if t, ok := tenancy.FromContext(r.Context()); ok {
			s.resolver.Forget(t.ID, t.Slug)
		}
	}
	code, _ := errors.AsType[db.Code](err)
	cp, ok := codeProblems[code]
	switch {
	case !ok && errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		writeProblem(w, r, probUnavailable, "request canceled")
		return
	case !ok:
		s.log.ErrorContext(r.Context(), "request failed", "request_id", infoFrom(r).id, "method", r.Method, "path", r.URL.Path, "err", err)
		writeProblem(w, r, probInternal, "")
		return
	}
	p := Problem{Type: problemURNPrefix + cp.slug, Title: cp.title, Status: cp.status, Detail: cp.detail}
	e, _ := errors.AsType[*db.Error](err)
	switch {
	case e != nil && e.Message != "":
		p.Detail = e.Message
		if e.Field != "" {
			p.Errors = []FieldError{{Field: e.Field, Detail: e.Message}}
		}
	case code == db.ErrInvalid:
		p.Detail += ": " + err.Error() // which constraint, or which value
	}
	if cp.retry {
		w.Header().Set("Retry-After", "1")
	}
	writeProblemBody(w, r, p)
}

// fieldErrors collects per-field validation failures.
type fieldErrors map[string]string

func (fe fieldErrors) add(field, detail string) {
	if _, ok := fe[field]; !ok {
		fe[field] = detail
	}
}
