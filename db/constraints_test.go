package db

import (
	"io/fs"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/sql"
)

// Every constraint that db/constraints.go gives a field and a message is
// one the migrations create (or raise, for a rule a trigger keeps): a
// renamed constraint would otherwise lose its field silently.
func TestConstraintsAreTheMigrations(t *testing.T) {
	t.Parallel()
	var all []byte
	files, err := fs.Glob(sql.Migrations, "migrations/*.sql")
	require.NoError(t, err)
	for _, f := range files {
		b, err := fs.ReadFile(sql.Migrations, f)
		require.NoError(t, err)
		all = append(all, b...)
	}
	require.NotEmpty(t, constraints)
	for name, c := range constraints {
		require.Regexp(t, regexp.MustCompile(`(?i)(CONSTRAINT|INDEX)\s*=?\s*'?`+regexp.QuoteMeta(name)+`\b`), string(all), name)
		require.NotEmpty(t, c.code, name)
		require.NotEmpty(t, c.message, name)
	}
}
