package httpapi_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Issue #15 item 2: transactions are passed, not smuggled. A /v1 handler runs
// its statements through the db.Executor its route gives it (routes.go), so
// an idempotent POST's writes join the transaction that stores its answer;
// a handler that reached for the pool itself (db.One, db.Tx, s.pool) would
// commit outside it, and nothing would say so. Only the functions that
// choose the executor, and those that are no /v1 handler's, may.
func TestHandlersRunThroughTheirExecutor(t *testing.T) {
	t.Parallel()
	choosers := map[string]bool{
		"scoped":       true, // routes.go: the request's scope
		"idempotent":   true, // idempotency.go: its own statements, and the transaction it passes on
		"handleReadyz": true, // health.go: no tenant, no handler's work
		"tenantPool":   true, // tenant.go: the pool of the tenant's cell, for scoped and idempotent (package cells)
	}
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	var found []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil || choosers[fn.Name.Name] {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				x, _ := sel.X.(*ast.Ident)
				switch {
				case x != nil && x.Name == "db" && (sel.Sel.Name == "One" || sel.Sel.Name == "Tx" || sel.Sel.Name == "Snapshot" ||
					sel.Sel.Name == "Scoped" || sel.Sel.Name == "Joined"),
					sel.Sel.Name == "pool":
					found = append(found, fset.Position(sel.Pos()).String()+" in "+fn.Name.Name)
				}
				return true
			})
		}
	}
	require.Empty(t, found, "a handler runs its statements through the db.Executor its route passed it (db.OneIn, db.TxIn)")
}
