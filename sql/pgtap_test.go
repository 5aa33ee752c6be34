package sql_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var planLine = regexp.MustCompile(`^1\.\.(\d+)$`)

// TestPgTAP runs every sql/pgtap file in its own migrated database, as
// pg_prove would, and fails on any "not ok" or a count that misses the plan.
func TestPgTAP(t *testing.T) {
	files, err := filepath.Glob("pgtap/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			body, err := fs.ReadFile(os.DirFS("."), file)
			require.NoError(t, err)
			tdb := pgtest.New(t)
			conn, err := pgx.Connect(ctx, tdb.AdminURL)
			require.NoError(t, err)
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, "create extension if not exists pgtap"); err != nil {
				if pgtest.Source() != "local" {
					t.Skipf("the pgtap extension is not installed on this server (%s): %v", pgtest.Source(), err)
				}
				t.Fatalf("create extension pgtap: %v (Debian: apt-get install -y postgresql-15-pgtap, which make test-deps does)", err)
			}
			lines, err := tapLines(ctx, conn, string(body))
			require.NoError(t, err)
			planned, passed := -1, 0
			var failures []string
			for i, line := range lines {
				switch {
				case planLine.MatchString(line):
					planned, _ = strconv.Atoi(planLine.FindStringSubmatch(line)[1])
				case strings.HasPrefix(line, "ok "):
					passed++
				case strings.HasPrefix(line, "not ok "):
					failures = append(failures, line+diagnostics(lines[i+1:]))
				}
			}
			require.Empty(t, failures, "pgTAP failures in %s", file)
			require.Positive(t, planned, "no plan in %s", file)
			require.Equal(t, planned, passed, "%s planned %d tests and passed %d:\n%s", file, planned, passed, strings.Join(lines, "\n"))
		})
	}
}

// tapLines runs a script (simple protocol, several statements) and returns
// the first column of every row it produced.
func tapLines(ctx context.Context, conn *pgx.Conn, script string) ([]string, error) {
	var lines []string
	mrr := conn.PgConn().Exec(ctx, script)
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		for rr.NextRow() {
			if vals := rr.Values(); len(vals) > 0 {
				lines = append(lines, strings.Split(string(vals[0]), "\n")...)
			}
		}
		if _, err := rr.Close(); err != nil {
			return lines, err
		}
	}
	if err := mrr.Close(); err != nil {
		return lines, fmt.Errorf("%w\n%s", err, strings.Join(lines, "\n"))
	}
	return lines, nil
}

func diagnostics(rest []string) string {
	var b strings.Builder
	for _, l := range rest {
		if !strings.HasPrefix(l, "#") {
			break
		}
		b.WriteString("\n" + l)
	}
	return b.String()
}
