package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/textrule"
)

type apiKeyJSON struct {
	ID         uuid.UUID  `json:"id"`
	TenantID   uuid.UUID  `json:"tenant_id"`
	UserID     uuid.UUID  `json:"user_id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	// Key is the credential itself, present only in the answer to POST.
	Key string `json:"key,omitempty"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// apiKeys lists and shows keys (never their secret) and revokes them on
// DELETE: a revoked key stays listed, with revoked_at, for the record.
var apiKeys = collection[db.APIKey, apiKeyJSON]{
	name: "api-keys",
	list: func(ctx context.Context, q *db.Queries, after position, limit int32) ([]db.APIKey, error) {
		return q.APIKeyList(ctx, db.APIKeyListParams{AfterCreatedAt: after.CreatedAt, AfterID: after.ID, RowLimit: limit})
	},
	get:  (*db.Queries).APIKeyGet,
	lock: (*db.Queries).APIKeyLock,
	remove: func(q *db.Queries, ctx context.Context, id uuid.UUID) (uuid.UUID, error) {
		k, err := q.APIKeyRevoke(ctx, id)
		return k.ID, err
	},
	removed: func(s *server, r *http.Request, id uuid.UUID) {
		// This instance stops accepting the key at once; others within the
		// authentication cache's TTL.
		s.auth.Forget(s.scope(r).TenantID, id)
	},
	pos: func(k db.APIKey) position { return position{CreatedAt: k.CreatedAt, ID: k.ID} },
	render: func(k db.APIKey) apiKeyJSON {
		return apiKeyJSON{ID: k.ID, TenantID: k.TenantID, UserID: k.UserID, Name: k.Name, Role: k.Role,
			CreatedAt: k.CreatedAt.UTC(), ExpiresAt: utcPtr(k.ExpiresAt), LastUsedAt: utcPtr(k.LastUsedAt), RevokedAt: utcPtr(k.RevokedAt)}
	},
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

func (s *server) handleAPIKeyCreate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		var row db.APIKey
		var key string
		err := s.tx(r, func(q *db.Queries) (err error) {
			row, key, err = auth.IssueKey(r.Context(), q, p.TenantID, userID, db.Role(*in.Role), name, expires)
			return err
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		out := apiKeys.view(s, r, row)
		out.Key = key
		w.Header().Set("Location", s.apiPath(r, apiKeys.name, row.ID.String()))
		encode(w, http.StatusCreated, out)
	})
}

type meJSON struct {
	TenantID   uuid.UUID  `json:"tenant_id"`
	TenantSlug string     `json:"tenant_slug"`
	UserID     uuid.UUID  `json:"user_id"`
	Role       string     `json:"role"`
	Credential string     `json:"credential"`
	KeyID      *uuid.UUID `json:"key_id,omitempty"`
}

// handleMe tells a client who its credential makes it; no database work.
func (s *server) handleMe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		me := meJSON{TenantID: p.TenantID, TenantSlug: infoFrom(r).tenant, UserID: p.UserID, Role: string(p.Role), Credential: p.Kind}
		if p.KeyID != uuid.Nil {
			me.KeyID = &p.KeyID
		}
		encode(w, http.StatusOK, me)
	})
}
