package db_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
)

// Issue #15 item 3: errors are mapped once, at the boundary. Outside package
// db, code gets its *dbsqlc.Queries from One, Tx, Snapshot, UnscopedTx or
// Unscoped, whose DBTX maps every error; dbsqlc.New would hand it raw pgx errors
// (pgx.ErrNoRows, *pgconn.PgError), and then a not-found becomes a 500 and a
// constraint name is compared by hand. Tests may use dbsqlc.New for raw access.
func TestQueriesComeThroughTheBoundary(t *testing.T) {
	t.Parallel()
	const sqlcPath = "github.com/rowfence/rowfence/db/dbsqlc"
	var found []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != ".." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || filepath.Dir(path) == filepath.Join("..", "db") {
			return nil // package db itself is the boundary
		}
		file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		local := ""
		for _, imp := range file.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == sqlcPath {
				local = "dbsqlc"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" {
			return nil
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "New" {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == local {
					found = append(found, path)
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, found, "dbsqlc.New outside package db and its tests: use db.Unscoped (or One, Tx), whose errors are mapped")
}

// Inside a unit of work the errors are already the mapped ones: fn, and
// whatever it hands its errors to (a handler in the idempotency
// transaction), test them with errors.Is against a db.Code, as One's and
// Tx's callers do. The same holds for Unscoped's queries and UnscopedTx.
func TestErrorsAreMappedInsideTheUnitOfWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setup(t, 0)
	createProduct(t, bundle.app, bundle.a, "first")
	var inside []error
	err := db.Tx(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) error {
		_, err := q.ProductGet(ctx, uuid.New()) // a later statement: not the pipeline's first
		inside = append(inside, err)
		_, err = q.UserCreate(ctx, dbsqlc.UserCreateParams{Name: "n", Email: "x@example.com", Role: "root"})
		inside = append(inside, err)
		return nil
	})
	require.ErrorIs(t, err, db.ErrRolledBack)
	require.Len(t, inside, 2)
	require.ErrorIs(t, inside[0], db.ErrNotFound)
	require.ErrorIs(t, inside[0], pgx.ErrNoRows, "the cause stays in the chain")
	require.ErrorIs(t, inside[1], db.ErrInvalid)

	err = db.Tx(ctx, bundle.app, bundle.a, func(q *dbsqlc.Queries) error {
		_, err := q.ProductGet(ctx, uuid.New()) // the pipeline's first statement
		require.ErrorIs(t, err, db.ErrNotFound)
		return err
	})
	require.ErrorIs(t, err, db.ErrNotFound)

	_, err = db.Unscoped(bundle.admin).TenantGet(ctx, uuid.New())
	require.ErrorIs(t, err, db.ErrNotFound)
	_, err = db.Unscoped(bundle.admin).TenantCreate(ctx, dbsqlc.TenantCreateParams{ID: uuid.New(), Slug: "tenant-a", Name: "again"})
	e, ok := errors.AsType[*db.Error](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, db.Error{Code: db.ErrConflict, Field: "slug", Message: "a tenant with this slug already exists",
		Constraint: "tenants_slug_key"}, db.Error{Code: e.Code, Field: e.Field, Message: e.Message, Constraint: e.Constraint},
		"the constraint's field and message come from db/constraints.go")
	err = db.UnscopedTx(ctx, bundle.admin, func(q *dbsqlc.Queries) error {
		_, err := q.TenantGetForUpdate(ctx, uuid.New())
		require.ErrorIs(t, err, db.ErrNotFound)
		return err
	})
	require.ErrorIs(t, err, db.ErrNotFound)
}
