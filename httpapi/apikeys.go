package httpapi

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/textrule"
)

// apiKeyPosition is k's place in the key list (creation order).
func apiKeyPosition(k dbsqlc.APIKey, _ string) position {
	return position{CreatedAt: k.CreatedAt, ID: k.ID}
}

// handleAPIKeyList: GET /v1/api-keys, keys without their secret; revoked
// keys stay listed, with revoked_at, for the record.
func (s *server) handleAPIKeyList() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		l, ok := s.readList(w, r, s.scope(r).TenantID, "api-keys", nil, false, false)
		if !ok {
			return
		}
		rows, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) ([]dbsqlc.APIKey, error) {
			return q.APIKeyList(r.Context(), dbsqlc.APIKeyListParams{AfterCreatedAt: l.after.CreatedAt, AfterID: l.after.ID, RowLimit: l.fetch()})
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writePage(w, r, l, pageOf(l, rows, RenderAPIKey, apiKeyPosition))
	}
}

// handleAPIKeyGet: GET /v1/api-keys/{id}, with its ETag.
func (s *server) handleAPIKeyGet() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := resourceID(w, r)
		if !ok {
			return
		}
		k, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) { return q.APIKeyGet(r.Context(), id) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 1, 0)
		encodeResource(w, r, http.StatusOK, RenderAPIKey(k), true)
	}
}

// handleAPIKeyDelete: DELETE /v1/api-keys/{id} revokes the key; If-Match
// makes it conditional. This instance stops accepting the key at once,
// others within the authentication cache's TTL.
func (s *server) handleAPIKeyDelete() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := resourceID(w, r)
		if !ok {
			return
		}
		ctx := r.Context()
		_, err := writeIfMatch(r, exec, func(q *dbsqlc.Queries) (any, error) {
			k, err := q.APIKeyLock(ctx, id)
			return RenderAPIKey(k), err
		}, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) { return q.APIKeyRevoke(ctx, id) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.auth.Forget(s.scope(r).TenantID, id)
		s.rows(r, 0, 1)
		w.WriteHeader(http.StatusNoContent)
	}
}

// apiKeyCreateBody is POST /v1/api-keys. user_id defaults to the caller.
type apiKeyCreateBody struct {
	Name      *string `json:"name"`
	Role      *string `json:"role"`
	UserID    *string `json:"user_id"`
	ExpiresAt *string `json:"expires_at"`
}

func (b apiKeyCreateBody) valid() fieldErrors {
	fe := fieldErrors{}
	if b.Name != nil {
		checkText(fe, "name", *b.Name, textrule.APIKeyName)
	}
	if checkRequired(fe, "role", b.Role) {
		checkRole(fe, *b.Role)
	}
	if b.UserID != nil {
		if _, err := uuid.Parse(*b.UserID); err != nil || len(*b.UserID) != 36 {
			fe.add("user_id", "must be a user id (a UUID)")
		}
	}
	if b.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *b.ExpiresAt)
		switch {
		case err != nil:
			fe.add("expires_at", "must be an RFC 3339 time such as 2030-01-02T15:04:05Z")
		case !t.After(time.Now()):
			fe.add("expires_at", "must be in the future")
		}
	}
	return fe
}

// handleAPIKeyCreate: POST /v1/api-keys. The answer holds the key itself,
// shown this once: it is never stored, and an idempotent replay of this
// answer comes without it (routes.go).
func (s *server) handleAPIKeyCreate() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		in, ok := decodeValid[apiKeyCreateBody](w, r, "application/json")
		if !ok {
			return
		}
		// valid() has checked the formats.
		p, _ := auth.FromContext(r.Context())
		userID := p.UserID
		if in.UserID != nil {
			userID = uuid.MustParse(*in.UserID)
		}
		var expires *time.Time
		if in.ExpiresAt != nil {
			t, _ := time.Parse(time.RFC3339, *in.ExpiresAt)
			expires = &t
		}
		name := ""
		if in.Name != nil {
			name = *in.Name
		}
		var row dbsqlc.APIKey
		var key string
		err := db.TxIn(r.Context(), exec, func(q *dbsqlc.Queries) (err error) {
			row, key, err = auth.IssueKey(r.Context(), q, p.TenantID, userID, dbtype.Role(*in.Role), name, expires)
			return err
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		out := RenderAPIKey(row)
		out.Key = key
		w.Header().Set("Location", s.apiPath(r, "api-keys", row.ID.String()))
		encode(w, http.StatusCreated, out)
	}
}

type meJSON struct {
	TenantID   uuid.UUID  `json:"tenant_id"`
	TenantSlug string     `json:"tenant_slug"`
	UserID     uuid.UUID  `json:"user_id"`
	Role       string     `json:"role"`
	Credential string     `json:"credential"`
	KeyID      *uuid.UUID `json:"key_id,omitempty"`
}

// handleMe: GET /v1/me tells a client who its credential makes it; it does
// no database work, so exec goes unused.
func (s *server) handleMe() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, _ db.Executor) {
		p, _ := auth.FromContext(r.Context())
		me := meJSON{TenantID: p.TenantID, TenantSlug: infoFrom(r).tenant, UserID: p.UserID, Role: string(p.Role), Credential: p.Kind}
		if p.KeyID != uuid.Nil {
			me.KeyID = &p.KeyID
		}
		encode(w, http.StatusOK, me)
	}
}
