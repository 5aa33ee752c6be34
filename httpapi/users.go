package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/textrule"
)

var users = collection[db.User, UserJSON]{
	name: "users",
	list: func(ctx context.Context, q *db.Queries, after position, limit int32) ([]db.User, error) {
		return q.UserList(ctx, db.UserListParams{AfterCreatedAt: after.CreatedAt, AfterID: after.ID, RowLimit: limit})
	},
	get:         (*db.Queries).UserGet,
	lock:        (*db.Queries).UserLock,
	remove:      (*db.Queries).UserDelete,
	removed:     forgetUser,
	updated:     forgetUser,
	pos:         func(u db.User) position { return position{CreatedAt: u.CreatedAt, ID: u.ID} },
	sorts:       []string{"created_at", "name", "email"},
	emailFilter: true,
	sorted: func(ctx context.Context, q *db.Queries, lq listQuery, after position, first bool, limit int32) ([]db.User, error) {
		return q.UserListSorted(ctx, db.UserListSortedParams{Prefix: lq.q, Email: lq.email, First: first, Sort: lq.sort,
			AfterText: after.Key, AfterTime: after.CreatedAt, AfterID: after.ID, RowLimit: limit})
	},
	search: func(ctx context.Context, q *db.Queries, lq listQuery, after position, limit int32) ([]db.User, error) {
		return q.UserSearch(ctx, db.UserSearchParams{Prefix: lq.q, Email: lq.email,
			AfterCreatedAt: after.CreatedAt, AfterID: after.ID, RowLimit: limit})
	},
	sortKey: func(u db.User, sort string) string {
		switch strings.TrimPrefix(sort, "-") {
		case "name":
			return u.Name
		case "email":
			return u.Email
		}
		return ""
	},
	render: RenderUser,
}

// forgetUser drops the user's cached credentials after a change (a role, a
// deletion), so it holds on this instance from the next request; other
// instances follow within AUTH_CACHE_TTL.
func forgetUser(s *server, r *http.Request, id uuid.UUID) {
	s.auth.ForgetUser(s.scope(r).TenantID, id)
}

// userCreateBody is POST /v1/users; role defaults to member.
type userCreateBody struct {
	Name  *string `json:"name"`
	Email *string `json:"email"`
	Role  *string `json:"role"`
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
	return fe
}

func createUser(ctx context.Context, q *db.Queries, b userCreateBody) (db.User, error) {
	p := db.UserCreateParams{Name: *b.Name, Email: *b.Email, Role: db.RoleMember}
	if b.Role != nil {
		p.Role = db.Role(*b.Role)
	}
	return q.UserCreate(ctx, p)
}

// userPatchBody is PATCH /v1/users/{id}.
type userPatchBody struct {
	Name  optional[string] `json:"name"`
	Email optional[string] `json:"email"`
	Role  optional[string] `json:"role"`
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
	if !any && len(fe) == 0 {
		fe.add("", "send at least one of name, email, role")
	}
	return fe
}

func updateUser(ctx context.Context, q *db.Queries, id uuid.UUID, b userPatchBody) (db.User, error) {
	return q.UserUpdate(ctx, db.UserUpdateParams{ID: id, Name: b.Name.ptr(), Email: b.Email.ptr(), Role: b.Role.ptr()})
}
