package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/textrule"
)

// userSorts are the fields GET /v1/users sorts by (?sort=).
var userSorts = []string{"created_at", "name", "email"}

// userPosition is u's place in the user list sorted by sort.
func userPosition(u dbsqlc.User, sort string) position {
	pos := position{CreatedAt: u.CreatedAt, ID: u.ID}
	switch strings.TrimPrefix(sort, "-") {
	case sortUpdated:
		pos.CreatedAt = u.UpdatedAt
	case "name":
		pos.Key = u.Name
	case "email":
		pos.Key = u.Email
	}
	return pos
}

// lockUser locks user id for the rest of q's transaction and returns what
// its ETag is of (writeIfMatch).
func lockUser(ctx context.Context, q *dbsqlc.Queries, id uuid.UUID) (any, error) {
	u, err := q.UserLock(ctx, id)
	return RenderUser(u), err
}

// handleUserList: GET /v1/users, a page in creation order, in another order
// (?sort=), of the names with a prefix (?q=) or one email (?email=), or of
// the users updated at or after a time (?updated_since=, in update order).
func (s *server) handleUserList() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		l, ok := s.readList(w, r, s.scope(r).TenantID, "users", userSorts, true, true)
		if !ok {
			return
		}
		ctx := r.Context()
		rows, err := db.OneIn(ctx, exec, func(q *dbsqlc.Queries) ([]dbsqlc.User, error) {
			switch l.order() {
			case byCreation:
				return q.UserList(ctx, dbsqlc.UserListParams{AfterCreatedAt: l.after.CreatedAt, AfterID: l.after.ID, RowLimit: l.fetch()})
			case byUpdate:
				return q.UserListUpdated(ctx, dbsqlc.UserListUpdatedParams{AfterUpdatedAt: l.after.CreatedAt, AfterID: l.after.ID, RowLimit: l.fetch()})
			}
			if l.email != "" {
				return q.UserListByEmail(ctx, dbsqlc.UserListByEmailParams{Email: l.email, Prefix: l.q, First: l.first})
			}
			return q.UserListSorted(ctx, dbsqlc.UserListSortedParams{Prefix: l.q, First: l.first, Sort: l.sort,
				AfterText: l.after.Key, AfterTime: l.after.CreatedAt, AfterID: l.after.ID, RowLimit: l.fetch()})
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writePage(w, r, l, pageOf(l, rows, RenderUser, userPosition))
	}
}

// handleUserGet: GET /v1/users/{id}, with its ETag.
func (s *server) handleUserGet() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := resourceID(w, r)
		if !ok {
			return
		}
		u, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.User, error) { return q.UserGet(r.Context(), id) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 1, 0)
		encodeResource(w, r, http.StatusOK, RenderUser(u), true)
	}
}

// handleUserCreate: POST /v1/users.
func (s *server) handleUserCreate() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		in, ok := decodeValid[userCreateBody](w, r, "application/json")
		if !ok {
			return
		}
		u, err := db.OneIn(r.Context(), exec, func(q *dbsqlc.Queries) (dbsqlc.User, error) { return createUser(r.Context(), q, in) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.rows(r, 0, 1)
		w.Header().Set("Location", s.apiPath(r, "users", u.ID.String()))
		encodeResource(w, r, http.StatusCreated, RenderUser(u), true)
	}
}

// handleUserPatch: PATCH /v1/users/{id}; If-Match makes it conditional. A
// role change holds on this instance from the next request (forgetUser).
func (s *server) handleUserPatch() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := resourceID(w, r)
		if !ok {
			return
		}
		in, ok := decodeValid[userPatchBody](w, r, "application/json", "application/merge-patch+json")
		if !ok {
			return
		}
		ctx := r.Context()
		u, err := writeIfMatch(r, exec, func(q *dbsqlc.Queries) (any, error) { return lockUser(ctx, q, id) },
			func(q *dbsqlc.Queries) (dbsqlc.User, error) { return updateUser(ctx, q, id, in) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.forgetUser(r, id)
		s.rows(r, 0, 1)
		encodeResource(w, r, http.StatusOK, RenderUser(u), true)
	}
}

// handleUserDelete: DELETE /v1/users/{id}; If-Match makes it conditional.
// The user's credentials stop working on this instance at once (forgetUser).
func (s *server) handleUserDelete() scopedHandler {
	return func(w http.ResponseWriter, r *http.Request, exec db.Executor) {
		id, ok := resourceID(w, r)
		if !ok {
			return
		}
		ctx := r.Context()
		_, err := writeIfMatch(r, exec, func(q *dbsqlc.Queries) (any, error) { return lockUser(ctx, q, id) },
			func(q *dbsqlc.Queries) (uuid.UUID, error) { return q.UserDelete(ctx, id) })
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.forgetUser(r, id)
		s.rows(r, 0, 1)
		w.WriteHeader(http.StatusNoContent)
	}
}

// forgetUser drops the user's cached credentials after a change (a role, a
// deletion), so it holds on this instance from the next request; other
// instances follow within AUTH_CACHE_TTL.
func (s *server) forgetUser(r *http.Request, id uuid.UUID) {
	s.auth.ForgetUser(s.scope(r).TenantID, id)
}

// userCreateBody is POST /v1/users; role defaults to member.
type userCreateBody struct {
	Name       *string `json:"name"`
	Email      *string `json:"email"`
	Role       *string `json:"role"`
	ExternalID *string `json:"external_id"`
}

func (b userCreateBody) valid() fieldErrors {
	fe := fieldErrors{}
	if checkRequired(fe, "name", b.Name) {
		checkText(fe, "name", *b.Name, textrule.UserName)
	}
	if checkRequired(fe, "email", b.Email) {
		checkText(fe, "email", *b.Email, textrule.UserEmail)
	}
	if b.Role != nil {
		checkRole(fe, *b.Role)
	}
	if b.ExternalID != nil {
		checkText(fe, "external_id", *b.ExternalID, textrule.ExternalID)
	}
	return fe
}

func createUser(ctx context.Context, q *dbsqlc.Queries, b userCreateBody) (dbsqlc.User, error) {
	p := dbsqlc.UserCreateParams{Name: *b.Name, Email: *b.Email, Role: dbtype.RoleMember}
	if b.Role != nil {
		p.Role = dbtype.Role(*b.Role)
	}
	if b.ExternalID != nil {
		return q.UserCreateWithExternalID(ctx, dbsqlc.UserCreateWithExternalIDParams{Name: p.Name, Email: p.Email,
			Role: p.Role, ExternalID: b.ExternalID})
	}
	return q.UserCreate(ctx, p)
}

// userPatchBody is PATCH /v1/users/{id}.
type userPatchBody struct {
	Name  optional[string] `json:"name"`
	Email optional[string] `json:"email"`
	Role  optional[string] `json:"role"`
	// ExternalID: a string sets it, null clears it.
	ExternalID optional[string] `json:"external_id"`
}

func (b userPatchBody) valid() fieldErrors {
	fe := fieldErrors{}
	any := false
	if checkPatch(fe, "name", b.Name) {
		any = true
		checkText(fe, "name", b.Name.Value, textrule.UserName)
	}
	if checkPatch(fe, "email", b.Email) {
		any = true
		checkText(fe, "email", b.Email.Value, textrule.UserEmail)
	}
	if checkPatch(fe, "role", b.Role) {
		any = true
		checkRole(fe, b.Role.Value)
	}
	if b.ExternalID.Set {
		any = true
		if !b.ExternalID.Null {
			checkText(fe, "external_id", b.ExternalID.Value, textrule.ExternalID)
		}
	}
	if !any && len(fe) == 0 {
		fe.add("", "send at least one of name, email, role, external_id")
	}
	return fe
}

func updateUser(ctx context.Context, q *dbsqlc.Queries, id uuid.UUID, b userPatchBody) (dbsqlc.User, error) {
	return q.UserUpdate(ctx, dbsqlc.UserUpdateParams{ID: id, Name: b.Name.ptr(), Email: b.Email.ptr(), Role: b.Role.ptr(),
		SetExternalID: b.ExternalID.Set, ExternalID: b.ExternalID.ptr()})
}
