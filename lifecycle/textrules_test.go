package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgtest"
)

// An import file is text that enters like a request body: the same strict
// JSON and the same rules (textrule), checked for the whole file before
// anything is written. Each file below has a correct checksum (anyone can
// compute one), so only the rules can refuse it; before, each was imported
// (the surrogate as U+FFFD, the look-alike email as a new user) or failed
// in the database.
func TestImportAppliesTheInputRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	fill(t, admin, "acme", 2)
	lines := strings.Split(strings.TrimSpace(string(exportOf(t, admin, "acme"))), "\n")
	line := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Fatalf("no line starts with %s", prefix)
		return 0
	}
	user, product, key := line(`{"table":"users","row":{"id":"`), line(`{"table":"products"`), line(`{"table":"api_keys"`)
	edit := func(i int, old, new string) []byte {
		ls := append([]string(nil), lines...)
		require.Contains(t, ls[i], old)
		ls[i] = strings.Replace(ls[i], old, new, 1)
		return lifecycle.Resign([]byte(strings.Join(ls, "\n") + "\n"))
	}
	editTime := func(i int, field, value string) []byte {
		ls := append([]string(nil), lines...)
		re := regexp.MustCompile(`"` + field + `":"[^"]*"`)
		require.Regexp(t, re, ls[i])
		ls[i] = re.ReplaceAllLiteralString(ls[i], `"`+field+`":"`+value+`"`)
		return lifecycle.Resign([]byte(strings.Join(ls, "\n") + "\n"))
	}
	bad := map[string][]byte{
		"lone surrogate in a user's name":  edit(user, `"name":"`, `"name":"\ud800`),
		"NUL in a user's name":             edit(user, `"name":"`, `"name":"\u0000`),
		"C1 control in a user's name":      edit(user, `"name":"`, `"name":"\u0085`),
		"raw C1 in a product's name":       edit(product, `"name":"`, "\"name\":\"\u0085"),
		"bidi override in a product name":  edit(product, `"name":"`, `"name":"\u202e`),
		"NUL in a description":             edit(product, `"description":"`, `"description":"\u0000`),
		"zero width space in an email":     edit(user, `@acme.example"`, `\u200b@acme.example"`),
		"Cyrillic letter in an email":      edit(user, `"email":"`, `"email":"\u0430`),
		"C1 control in an API key's name":  edit(key, `"name":"`, `"name":"\u009b`),
		"NUL in the tenant's name":         edit(0, `"name":"`, `"name":"\u0000`),
		"a duplicate field":                edit(user, `"name":"`, `"name":"x","name":"`),
		"a field in another case":          edit(user, `"name":"`, `"NAME":"`),
		"invalid UTF-8 in a name":          edit(user, `"name":"`, "\"name\":\"\xff"),
		"a name over 200 characters":       edit(product, `"name":"`, `"name":"`+strings.Repeat("n", 200)),
		"a description with a lone escape": edit(product, `"description":"`, `"description":"\udfff`),
		// Lists walk (created_at, id) from 0001-01-01T00:00:00Z: a row dated
		// earlier would be stored but never listed.
		"a product created before year 1":     editTime(product, "created_at", "0000-12-31T23:59:59Z"),
		"a user created at the keyset origin": editTime(user, "created_at", "0001-01-01T00:00:00Z"),
		"a key that expires before year 1":    editTime(key, "created_at", "0000-06-01T00:00:00Z"),
	}
	before := counts(t, super)
	var accepted []string
	for i, name := range slices.Sorted(maps.Keys(bad)) {
		_, err := lifecycle.Import(ctx, admin, fmt.Sprintf("restored-%02d", i), "", bytes.NewReader(bad[name]))
		if !errors.Is(err, lifecycle.ErrBadExport) {
			accepted = append(accepted, fmt.Sprintf("%s: %v", name, err))
		}
	}
	require.Empty(t, accepted, "files the rules did not refuse")
	require.Equal(t, before, counts(t, super), "nothing was written, not even the tenant")

	// The same file without the edits still imports.
	_, err := lifecycle.Import(ctx, admin, "restored", "", bytes.NewReader(lifecycle.Resign([]byte(strings.Join(lines, "\n")+"\n"))))
	require.NoError(t, err)
}

// Onboarding (rowfence tenant create, POST /v1/admin/tenants) checks the
// tenant's name and its first admin by the same rules.
func TestOnboardAppliesTheInputRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	admin, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	before := counts(t, super)
	for _, in := range []lifecycle.Tenant{
		{Slug: "initech", Name: "Initech", AdminEmail: "ad\u200bmin@initech.example"},
		{Slug: "initech", Name: "Initech", AdminEmail: "admin\u202e@initech.example"},
		{Slug: "initech", Name: "Initech", AdminEmail: "admin\u0085@initech.example"},
		{Slug: "initech", Name: "Init\u0000ech", AdminEmail: "admin@initech.example"},
		{Slug: "initech", Name: "Initech", AdminEmail: "admin@initech.example", AdminName: "Bill\u200b"},
	} {
		_, err := lifecycle.Onboard(ctx, admin, in)
		assert.ErrorIs(t, err, db.ErrInvalid, "%+q", in)
		_, _ = super.Exec(ctx, "delete from tenants where slug = 'initech'") // so that each case is tried
	}
	require.Equal(t, before, counts(t, super))
	_, err := lifecycle.Onboard(ctx, admin, lifecycle.Tenant{Slug: "initech", Name: "Initech", AdminEmail: "admin@initech.example"})
	require.NoError(t, err)
}
