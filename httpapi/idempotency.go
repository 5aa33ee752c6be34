package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/textrule"
)

// IdempotencyKeyHeader makes a POST safe to retry: the same key with the
// same request within 24 hours gets the first answer again (status, headers,
// body) without a second write; the same key with another request is
// refused. Keys are per tenant (sql/migrations/00008_idempotency.sql).
const IdempotencyKeyHeader = "Idempotency-Key"

// ReplayedHeader marks an answer replayed from an earlier request.
const ReplayedHeader = "Idempotent-Replayed"

// storedHeaders are the response headers a replay repeats; the others
// (request id, rate limits) belong to the request that carries them.
var storedHeaders = []string{"Content-Type", "Location", "ETag"}

var (
	errNotStored = errors.New("answer not stored: not a success")
	errKeyTaken  = errors.New("a concurrent request with the same key won")
)

// errReplay carries an answer found once the key's lock was held.
type errReplay struct{ stored dbsqlc.IdempotencyGetRow }

func (errReplay) Error() string { return "an earlier request with the same key answered" }

// idempotent runs the POST handler of an authenticated route. Without an
// Idempotency-Key it runs next as scoped does. With one, next joins the
// transaction that also stores its answer (db.Joined): its writes and the
// stored answer commit together, or neither does, and its answer waits for
// the commit. redact names top-level JSON fields of the answer that must
// never be stored (an API key's secret): a replay answers without them.
func (s *server) idempotent(next scopedHandler, redact ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc, pool := s.scope(r), s.tenantPool(r)
		values := r.Header.Values(IdempotencyKeyHeader)
		if len(values) == 0 {
			next(w, r, db.Scoped(pool, sc))
			return
		}
		key := values[0]
		if len(values) > 1 || textrule.IdempotencyKey.Check(key) != nil {
			writeProblem(w, r, probIdempotencyKeyMalformed, "send one "+IdempotencyKeyHeader+" of 1 to 255 printable ASCII characters, such as a UUID")
			return
		}
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		// The same request from the same caller: another user of the tenant
		// reusing a key never gets this caller's answer.
		p, _ := auth.FromContext(r.Context())
		h := sha256.New()
		for _, part := range []string{p.UserID.String(), p.KeyID.String(), r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type")} {
			h.Write([]byte(part))
			h.Write([]byte{0})
		}
		h.Write(body)
		hash := h.Sum(nil)

		get := func(q *dbsqlc.Queries) (dbsqlc.IdempotencyGetRow, error) { return q.IdempotencyGet(r.Context(), key) }
		if stored, err := db.One(r.Context(), pool, sc, get); err == nil {
			s.replay(w, r, stored, hash)
			return
		} else if !errors.Is(err, db.ErrNotFound) {
			s.writeError(w, r, err)
			return
		}

		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		err := db.Tx(r.Context(), pool, sc, func(q *dbsqlc.Queries) error {
			// Requests with this key wait here for each other; the one
			// that waited finds the first one's answer.
			if err := q.IdempotencyLock(r.Context(), key); err != nil {
				return err
			}
			if stored, err := get(q); err == nil {
				return errReplay{stored}
			} else if !errors.Is(err, db.ErrNotFound) {
				return err
			}
			inner := r.Clone(r.Context())
			inner.Body = io.NopCloser(bytes.NewReader(body))
			next(rec, inner, db.Joined(q))
			if rec.status < 200 || rec.status > 299 {
				return errNotStored // and whatever it wrote is rolled back
			}
			headers := map[string]string{}
			for _, name := range storedHeaders {
				if v := rec.header.Get(name); v != "" {
					headers[name] = v
				}
			}
			hj, _ := json.Marshal(headers)
			body := rec.body.Bytes()
			if len(redact) > 0 {
				var fields map[string]json.RawMessage
				if err := json.Unmarshal(body, &fields); err != nil {
					return err
				}
				for _, f := range redact {
					delete(fields, f)
				}
				redacted, err := json.Marshal(fields)
				if err != nil {
					return err
				}
				body = redacted
				body = append(body, '\n')
			}
			if err := q.IdempotencyDeleteExpired(r.Context(), key); err != nil {
				return err
			}
			n, err := q.IdempotencyPut(r.Context(), dbsqlc.IdempotencyPutParams{Key: key, RequestHash: hash,
				Status: int32(rec.status), ResponseHeaders: hj, ResponseBody: body})
			if err != nil {
				return err
			}
			if n == 0 {
				return errKeyTaken
			}
			return nil
		})
		var replayed errReplay
		switch {
		case err == nil, errors.Is(err, errNotStored):
			rec.flush(w)
		case errors.As(err, &replayed):
			s.replay(w, r, replayed.stored, hash)
		case errors.Is(err, errKeyTaken):
			// Another request with this key committed first: its write
			// stands, ours was rolled back; answer as it did.
			stored, err := db.One(r.Context(), pool, sc, get)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			s.replay(w, r, stored, hash)
		default:
			s.writeError(w, r, err)
		}
	})
}

// replay answers with a stored answer, or refuses a key reused for another
// request.
func (s *server) replay(w http.ResponseWriter, r *http.Request, stored dbsqlc.IdempotencyGetRow, hash []byte) {
	if subtle.ConstantTimeCompare(stored.RequestHash, hash) != 1 {
		writeProblem(w, r, probIdempotencyKeyReused, "this "+IdempotencyKeyHeader+" was used for a different request in the last 24 hours; use a new key")
		return
	}
	var headers map[string]string
	_ = json.Unmarshal(stored.ResponseHeaders, &headers)
	for name, v := range headers {
		w.Header().Set(name, v)
	}
	w.Header().Set(ReplayedHeader, "true")
	w.WriteHeader(int(stored.Status))
	_, _ = w.Write(stored.ResponseBody)
}

// recorder holds a handler's answer until its transaction has committed.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (c *recorder) Header() http.Header { return c.header }

func (c *recorder) WriteHeader(code int) {
	if !c.wrote {
		c.status, c.wrote = code, true
	}
}

func (c *recorder) Write(b []byte) (int, error) {
	c.wrote = true
	return c.body.Write(b)
}

func (c *recorder) flush(w http.ResponseWriter) {
	for name, vs := range c.header {
		w.Header()[name] = vs
	}
	w.WriteHeader(c.status)
	_, _ = w.Write(c.body.Bytes())
}
