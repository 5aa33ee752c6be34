package db_test

import (
	"context"
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/tools/go/packages"

	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/pgtest"
)

// quoted finds the string literals of a constraint's or policy's
// expression as PostgreSQL prints it ('admin'::text).
var quoted = regexp.MustCompile(`'([^']*)'::text`)

func sorted[S ~string](in []S) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, string(s))
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// The Go constants of db/dbtype/dbtype.go are the values PostgreSQL checks, read
// back from the catalog of a migrated database: each CHECK constraint lists
// exactly its type's constants, and the policies compare app.role with
// exactly the roles Role.Valid accepts. A migration that adds a status, or a
// constant added in Go alone, fails here.
func TestVocabularyMatchesTheCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := pgtest.New(t).AdminPool(t)
	check := func(constraint string) []string {
		var def string
		require.NoError(t, admin.QueryRow(ctx,
			`select pg_get_constraintdef(oid) from pg_constraint where conname = $1 and contype = 'c'`, constraint).Scan(&def), constraint)
		var values []string
		for _, m := range quoted.FindAllStringSubmatch(def, -1) {
			values = append(values, m[1])
		}
		sort.Strings(values)
		require.NotEmpty(t, values, "%s: %s", constraint, def)
		return values
	}
	require.Equal(t, sorted(dbtype.TenantStatuses()), check("tenants_status_valid"))
	require.Equal(t, sorted(dbtype.ExportStatuses()), check("exports_status_valid"))
	require.Equal(t, sorted(dbtype.ClientRoles()), check("users_role_valid"))
	require.Equal(t, sorted(dbtype.ClientRoles()), check("api_keys_role_valid"))

	// Every role a policy names, on every table, in either expression.
	rows, err := admin.Query(ctx, `select coalesce(qual, '') || ' ' || coalesce(with_check, '') from pg_policies where schemaname = 'public'`)
	require.NoError(t, err)
	var named []string
	for rows.Next() {
		var expr string
		require.NoError(t, rows.Scan(&expr))
		// The literals app.role is compared with (a policy may also compare
		// a column with literals: exports_expire's kind and status).
		for _, cmp := range roleComparison.FindAllString(expr, -1) {
			for _, m := range quoted.FindAllStringSubmatch(cmp, -1) {
				if v := m[1]; v != "app.role" && v != "" {
					named = append(named, v)
				}
			}
		}
	}
	require.NoError(t, rows.Err())
	all := append(dbtype.ClientRoles(), dbtype.RoleAuth)
	require.Equal(t, sorted(all), sorted(named), "the roles the policies name")
	for _, r := range all {
		require.True(t, r.Valid(), r)
	}
}

// The order of the client roles, and what a role that is no client role may
// do (nothing), as the HTTP role check and the key and token checks use them.
func TestRoleRanks(t *testing.T) {
	t.Parallel()
	require.Equal(t, []dbtype.Role{dbtype.RoleViewer, dbtype.RoleMember, dbtype.RoleAdmin}, dbtype.ClientRoles())
	for i, r := range dbtype.ClientRoles() {
		require.True(t, r.Client())
		for j, need := range dbtype.ClientRoles() {
			require.Equal(t, i >= j, r.AtLeast(need), "%s at least %s", r, need)
			require.Equal(t, dbtype.ClientRoles()[min(i, j)], r.Lesser(need), "the lesser of %s and %s", r, need)
		}
	}
	for _, r := range []dbtype.Role{dbtype.RoleAuth, "", "root", "Admin"} {
		require.False(t, r.Client(), r)
		require.False(t, r.AtLeast(dbtype.RoleViewer), r)
		require.Equal(t, r, dbtype.RoleAdmin.Lesser(r), "a non-client role is below every client role")
	}
	require.True(t, dbtype.RoleAuth.Valid())
	require.False(t, dbtype.Role("root").Valid())
	require.True(t, dbtype.TenantStatus("archived").Valid())
	require.False(t, dbtype.TenantStatus("frozen").Valid())
	require.False(t, dbtype.ExportStatus("cancelled").Valid())
}

// The vocabulary has one home: outside db/dbtype/dbtype.go no Go code of the
// module (tests aside) writes a role, a tenant status or an export status as
// a string literal, in a comparison, an assignment, a case or a conversion.
// The type checker says which literals are such values (it gives a literal
// the type it is compared with, assigned to or converted to; sqlc.yaml gives
// the columns these types), so words that merely look alike ("admin" in a
// path, a migration's "pending") are not caught.
func TestVocabularyLiteralsLiveInTheirHome(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the whole module")
	}
	t.Parallel()
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo,
		Dir: "..", BuildFlags: []string{"-tags=dev"}}
	pkgs, err := packages.Load(cfg, "./...")
	require.NoError(t, err)
	require.Greater(t, len(pkgs), 10)
	vocab := map[string]bool{}
	for _, name := range []string{"Role", "TenantStatus", "ExportStatus"} {
		vocab["github.com/rowfence/rowfence/db/dbtype."+name] = true
	}
	home, err := filepath.Abs("dbtype/dbtype.go")
	require.NoError(t, err)
	var found []string
	for _, p := range pkgs {
		require.Empty(t, p.Errors, p.PkgPath)
		for _, f := range p.Syntax {
			file := p.Fset.Position(f.Pos()).Filename
			if file == home {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || lit.Value == `""` {
					return true // "" is no value: the zero Role, say, or no role claim
				}
				if tv, ok := p.TypesInfo.Types[lit]; ok && isVocabulary(tv.Type, vocab) {
					found = append(found, p.Fset.Position(lit.Pos()).String()+": "+lit.Value)
				}
				return true
			})
		}
	}
	require.Empty(t, found, "use the constants of db/dbtype/dbtype.go")
}

func isVocabulary(t types.Type, vocab map[string]bool) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && vocab[n.Obj().Pkg().Path()+"."+n.Obj().Name()]
}

// roleComparison is a comparison of app.role with a literal or a list of
// them, as PostgreSQL prints a policy's expression.
var roleComparison = regexp.MustCompile(`current_setting\('app\.role'::text, true\)\)? (=|<>) (ANY \(ARRAY\[[^\]]*\]\)|'[^']*'::text)`)
