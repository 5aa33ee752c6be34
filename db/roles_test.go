package db_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
)

// The role a request runs as is enforced by PostgreSQL itself, not only by
// the HTTP layer's check: here every statement goes straight to db.One with
// a role that may not run it, as a handler that forgot its check would, and
// the policies refuse. Writes the role may not make fail or touch no row,
// and the rows are unchanged afterwards.
func TestRolesAreEnforcedByTheDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	admin := bundle.a
	as := func(r dbtype.Role) db.Scope { return db.Scope{TenantID: admin.TenantID, Role: r} }
	product := createProduct(t, bundle.app, admin, "anvil")
	user, err := db.One(ctx, bundle.app, admin, func(q *dbsqlc.Queries) (dbsqlc.User, error) {
		return q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "U", Email: "u@example.com", Role: "viewer"})
	})
	require.NoError(t, err)
	hash := sha256.Sum256([]byte("secret"))
	key, err := db.One(ctx, bundle.app, admin, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) {
		return q.APIKeyCreate(ctx, dbsqlc.APIKeyCreateParams{ID: uuid.New(), UserID: user.ID, Role: "viewer", SecretHash: hash[:]})
	})
	require.NoError(t, err)

	type op struct {
		name string
		run  func(q *dbsqlc.Queries) error
	}
	price := int64(1)
	createProductOp := op{"create product", func(q *dbsqlc.Queries) error {
		_, err := q.ProductCreate(ctx, dbsqlc.ProductCreateParams{Name: "new", Price: 1})
		return err
	}}
	updateProductOp := op{"update product", func(q *dbsqlc.Queries) error {
		_, err := q.ProductUpdate(ctx, dbsqlc.ProductUpdateParams{ID: product.ID, Price: &price})
		return err
	}}
	deleteProductOp := op{"delete product", func(q *dbsqlc.Queries) error {
		_, err := q.ProductDelete(ctx, uuid.New()) // a missing row: allowed roles get ErrNotFound too
		return err
	}}
	createUserOp := op{"create user", func(q *dbsqlc.Queries) error {
		_, err := q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "X", Email: "x@example.com", Role: "admin"})
		return err
	}}
	updateUserOp := op{"promote user", func(q *dbsqlc.Queries) error {
		role := "admin"
		_, err := q.UserUpdate(ctx, dbsqlc.UserUpdateParams{ID: user.ID, Role: &role})
		return err
	}}
	deleteUserOp := op{"delete user", func(q *dbsqlc.Queries) error {
		_, err := q.UserDelete(ctx, user.ID)
		return err
	}}
	createKeyOp := op{"create key", func(q *dbsqlc.Queries) error {
		_, err := q.APIKeyCreate(ctx, dbsqlc.APIKeyCreateParams{ID: uuid.New(), UserID: user.ID, Role: "viewer", SecretHash: hash[:]})
		return err
	}}
	revokeKeyOp := op{"revoke key", func(q *dbsqlc.Queries) error {
		_, err := q.APIKeyRevoke(ctx, key.ID)
		return err
	}}
	refused := []struct {
		role dbtype.Role
		ops  []op
	}{
		{dbtype.RoleViewer, []op{createProductOp, updateProductOp, createUserOp, updateUserOp, deleteUserOp, createKeyOp, revokeKeyOp}},
		{dbtype.RoleMember, []op{createUserOp, updateUserOp, deleteUserOp, createKeyOp, revokeKeyOp}},
		{dbtype.RoleAuth, []op{createProductOp, updateProductOp, createUserOp, updateUserOp, deleteUserOp, createKeyOp, revokeKeyOp}},
	}
	for _, c := range refused {
		for _, o := range c.ops {
			_, err := db.One(ctx, bundle.app, as(c.role), func(q *dbsqlc.Queries) (struct{}, error) { return struct{}{}, o.run(q) })
			require.Error(t, err, "%s: %s must be refused", c.role, o.name)
			// An INSERT or an UPDATE that would produce a row the role may
			// not have fails its WITH CHECK; an UPDATE or DELETE of rows the
			// role may not touch finds none.
			require.True(t, errors.Is(err, db.ErrForbidden) || errors.Is(err, db.ErrNotFound), "%s: %s: %v", c.role, o.name, err)
		}
		_, err := db.One(ctx, bundle.app, as(c.role), func(q *dbsqlc.Queries) (struct{}, error) { return struct{}{}, deleteProductOp.run(q) })
		require.ErrorIs(t, err, db.ErrNotFound)
	}

	// Nothing changed: one product at its old price, the user still a
	// viewer, one key, not revoked.
	got := listProducts(t, bundle.app, admin)
	require.Len(t, got, 1)
	require.Equal(t, product.Price, got[0].Price)
	u, err := db.One(ctx, bundle.app, admin, func(q *dbsqlc.Queries) (dbsqlc.User, error) { return q.UserGet(ctx, user.ID) })
	require.NoError(t, err)
	require.Equal(t, dbtype.RoleViewer, u.Role)
	keys, err := db.One(ctx, bundle.app, admin, func(q *dbsqlc.Queries) ([]dbsqlc.APIKey, error) {
		return q.APIKeyList(ctx, dbsqlc.APIKeyListParams{RowLimit: 10})
	})
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Nil(t, keys[0].RevokedAt)

	// What each role may read.
	reads := []struct {
		role                     dbtype.Role
		products, users, apiKeys int
	}{
		{dbtype.RoleAdmin, 1, 1, 1},
		{dbtype.RoleMember, 1, 1, 0},
		{dbtype.RoleViewer, 1, 1, 0},
		{dbtype.RoleAuth, 0, 1, 1},
	}
	for _, c := range reads {
		p, err := db.One(ctx, bundle.app, as(c.role), func(q *dbsqlc.Queries) ([]dbsqlc.Product, error) {
			return q.ProductList(ctx, dbsqlc.ProductListParams{RowLimit: 10})
		})
		require.NoError(t, err)
		us, err := db.One(ctx, bundle.app, as(c.role), func(q *dbsqlc.Queries) ([]dbsqlc.User, error) {
			return q.UserList(ctx, dbsqlc.UserListParams{RowLimit: 10})
		})
		require.NoError(t, err)
		ks, err := db.One(ctx, bundle.app, as(c.role), func(q *dbsqlc.Queries) ([]dbsqlc.APIKey, error) {
			return q.APIKeyList(ctx, dbsqlc.APIKeyListParams{RowLimit: 10})
		})
		require.NoError(t, err)
		require.Equal(t, []int{c.products, c.users, c.apiKeys}, []int{len(p), len(us), len(ks)}, "role %s reads", c.role)
	}

	// What each role may write.
	for _, r := range []dbtype.Role{dbtype.RoleAdmin, dbtype.RoleMember} {
		_, err := db.One(ctx, bundle.app, as(r), func(q *dbsqlc.Queries) (struct{}, error) { return struct{}{}, createProductOp.run(q) })
		require.NoError(t, err, "%s creates products", r)
	}
	_, err = db.One(ctx, bundle.app, as(dbtype.RoleAdmin), func(q *dbsqlc.Queries) (struct{}, error) { return struct{}{}, createUserOp.run(q) })
	require.NoError(t, err, "admin creates users")
	// The credential check stamps last_used_at, and that is all it may write.
	_, err = db.One(ctx, bundle.app, as(dbtype.RoleAuth), func(q *dbsqlc.Queries) (struct{}, error) { return struct{}{}, q.APIKeyTouch(ctx, key.ID) })
	require.NoError(t, err)
	k, err := db.One(ctx, bundle.app, admin, func(q *dbsqlc.Queries) (dbsqlc.APIKey, error) { return q.APIKeyGet(ctx, key.ID) })
	require.NoError(t, err)
	require.NotNil(t, k.LastUsedAt)
	// Nobody may change a key's role or secret: no column grant allows it.
	_, err = bundle.app.Exec(ctx, "update api_keys set role = 'admin'")
	require.ErrorIs(t, db.MapError(err), db.ErrForbidden)
}
