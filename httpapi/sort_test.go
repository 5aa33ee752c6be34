package httpapi_test

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// walk pages through a list and returns every item, in order.
func (b *testBundle) walk(t *testing.T, tenant, path string, limit int) []map[string]any {
	t.Helper()
	var out []map[string]any
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	cursor := ""
	for range 100 {
		p := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if cursor != "" {
			p += "&cursor=" + cursor
		}
		page := b.call(t, "GET", p, tenant, "").requireStatus(t, 200)
		for _, it := range page.body["items"].([]any) {
			out = append(out, it.(map[string]any))
		}
		next, _ := page.body["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
	t.Fatal("too many pages")
	return nil
}

func TestListSortAndSearch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	names := []string{"beta", "Alpha", "gamma", "alpha two", "delta", "Beta 2", "50% off", "a_b", "zeta", "alpha"}
	for i, n := range names {
		b.call(t, "POST", "/v1/products", "acme", fmt.Sprintf(`{"name":%q,"price":%d}`, n, (i*37)%7)).requireStatus(t, 201)
	}
	b.call(t, "POST", "/v1/products", "globex", `{"name":"alpha from globex","price":1}`).requireStatus(t, 201)

	field := func(items []map[string]any, f string) []string {
		var out []string
		for _, it := range items {
			out = append(out, fmt.Sprint(it[f]))
			require.NotEqual(t, "alpha from globex", it["name"], "never another tenant's row")
		}
		return out
	}
	// Every sort, both ways, over small pages: complete, no duplicates, in order.
	for _, s := range []string{"name", "-name", "price", "-price", "created_at", "-created_at"} {
		items := b.walk(t, "acme", "/v1/products?sort="+s, 3)
		require.Len(t, items, len(names), s)
		ids := map[any]bool{}
		for _, it := range items {
			require.False(t, ids[it["id"]], "%s: an item twice", s)
			ids[it["id"]] = true
		}
		key := strings.TrimPrefix(s, "-")
		less := func(i, j int) bool {
			a, c := items[i][key], items[j][key]
			switch key {
			case "price":
				return a.(float64) < c.(float64)
			case "created_at": // RFC 3339 drops trailing zeros: "…44.19Z" is before "…44.19189Z"
				ta, err := time.Parse(time.RFC3339Nano, a.(string))
				require.NoError(t, err)
				tc, err := time.Parse(time.RFC3339Nano, c.(string))
				require.NoError(t, err)
				return ta.Before(tc)
			}
			return fmt.Sprint(a) < fmt.Sprint(c)
		}
		if key != "name" { // names compare in the database's collation
			if strings.HasPrefix(s, "-") {
				require.True(t, sort.SliceIsSorted(items, func(i, j int) bool { return less(j, i) }), "%s: %v", s, field(items, key))
			} else {
				require.True(t, sort.SliceIsSorted(items, less), "%s: %v", s, field(items, key))
			}
		}
	}
	asc := field(b.walk(t, "acme", "/v1/products?sort=name", 4), "name")
	desc := field(b.walk(t, "acme", "/v1/products?sort=-name", 4), "name")
	for i := range asc {
		require.Equal(t, asc[i], desc[len(desc)-1-i], "descending is ascending reversed")
	}

	// q: a name prefix, case-insensitive, with % and _ taken literally.
	got := field(b.walk(t, "acme", "/v1/products?sort=name&q=alpha", 2), "name")
	require.ElementsMatch(t, []string{"Alpha", "alpha two", "alpha"}, got)
	require.Equal(t, []string{"50% off"}, field(b.walk(t, "acme", "/v1/products?q="+url.QueryEscape("50%"), 5), "name"))
	require.Empty(t, b.walk(t, "acme", "/v1/products?q="+url.QueryEscape("5%off"), 5))
	require.Equal(t, []string{"a_b"}, field(b.walk(t, "acme", "/v1/products?q=a_", 5), "name"))
	require.Empty(t, b.walk(t, "acme", "/v1/products?q=nothing", 5))

	// A cursor belongs to its sort and filter.
	page := b.call(t, "GET", "/v1/products?sort=name&limit=2", "acme", "").requireStatus(t, 200)
	cur := page.body["next_cursor"].(string)
	b.call(t, "GET", "/v1/products?sort=-name&limit=2&cursor="+cur, "acme", "").requireStatus(t, 400)
	b.call(t, "GET", "/v1/products?limit=2&cursor="+cur, "acme", "").requireStatus(t, 400)
	b.call(t, "GET", "/v1/products?sort=name&limit=2&cursor="+cur, "globex", "").requireStatus(t, 400)
	b.call(t, "GET", "/v1/products?sort=name&limit=2&cursor="+cur, "acme", "").requireStatus(t, 200)

	// Users: sort by email, exact email lookup (case-insensitively).
	for _, e := range []string{"c@example.com", "A@example.com", "b@example.com"} {
		b.call(t, "POST", "/v1/users", "acme", fmt.Sprintf(`{"name":"n","email":%q}`, e)).requireStatus(t, 201)
	}
	b.call(t, "POST", "/v1/users", "globex", `{"name":"n","email":"b@example.com"}`).requireStatus(t, 201)
	one := b.walk(t, "acme", "/v1/users?email="+url.QueryEscape("B@EXAMPLE.COM"), 5)
	require.Len(t, one, 1)
	require.Equal(t, "b@example.com", one[0]["email"])
	require.Empty(t, b.walk(t, "acme", "/v1/users?email=nobody@example.com", 5))
	require.Len(t, b.walk(t, "acme", "/v1/users?sort=-email", 1), 4)
	b.call(t, "GET", "/v1/products?email=a@b.c", "acme", "").requireStatus(t, 400)
	b.call(t, "GET", "/v1/api-keys?sort=name", "acme", "").requireStatus(t, 400)
}
