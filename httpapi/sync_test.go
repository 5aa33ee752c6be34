package httpapi_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/httpapi"
)

// linkNext is the target of the response's Link rel="next" (RFC 8288), or
// "" when it has none. The API sends at most one Link, of exactly that form.
func linkNext(t *testing.T, r response) string {
	t.Helper()
	values := r.header.Values("Link")
	if len(values) == 0 {
		return ""
	}
	require.Len(t, values, 1, "one Link header")
	m := regexp.MustCompile(`^<([^<>]+)>; rel="next"$`).FindStringSubmatch(values[0])
	require.NotNil(t, m, "Link %q", values[0])
	return m[1]
}

// Every list (products, users, api-keys, exports, /v1/admin/tenants) links
// its next page with an RFC 8288 Link header: the request's own query (sort,
// q, email, updated_since, limit) with the next cursor, in the request's
// tenant mode, and no Link on the last page. Following the links walks the
// whole list once.
func TestListsLinkTheirNextPage(t *testing.T) {
	t.Parallel()
	for _, mode := range []httpapi.TenantMode{httpapi.ModeHeader, httpapi.ModePath} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			var platformKey string
			b := setupWith(t, func(b *testBundle, c *httpapi.Config) {
				c.TenantMode = mode
				p := b.tdb.PlatformPool(t)
				c.PlatformPool, c.Platform = p, auth.NewPlatform(p, 0)
				var err error
				_, platformKey, err = auth.IssuePlatformKey(context.Background(), dbsqlc.New(p), "test")
				require.NoError(t, err)
			})
			prefix, tenant := "", "acme"
			if mode == httpapi.ModePath {
				prefix, tenant = "/t/acme", ""
			}
			acme := bearer(b.keys["acme"])
			get := func(path string) response {
				if strings.HasPrefix(path, "/v1/admin/") {
					return b.call(t, "GET", path, "", "", "Authorization", "Bearer "+platformKey)
				}
				return b.call(t, "GET", path, tenant, "", acme...)
			}
			for i := range 5 {
				b.call(t, "POST", prefix+"/v1/products", tenant, fmt.Sprintf(`{"name":"p%d","price":%d}`, i, i), acme...).requireStatus(t, 201)
			}
			if mode == httpapi.ModePath {
				b.call(t, "POST", "/t/globex/v1/products", "", `{"name":"theirs","price":1}`, bearer(b.keys["globex"])...).requireStatus(t, 201)
			} else {
				b.call(t, "POST", "/v1/products", "globex", `{"name":"theirs","price":1}`).requireStatus(t, 201)
			}
			for i := range 2 {
				b.call(t, "POST", prefix+"/v1/users", tenant, fmt.Sprintf(`{"name":"u%d","email":"u%d@example.com"}`, i, i), acme...).requireStatus(t, 201)
				b.call(t, "POST", prefix+"/v1/api-keys", tenant, `{"role":"viewer"}`, acme...).requireStatus(t, 201)
			}
			for range 3 {
				_, err := b.admin.Exec(context.Background(), "insert into exports (tenant_id, requested_by, status) values ($1, $2, 'failed')", b.acme, b.users["acme"])
				require.NoError(t, err)
			}

			for _, c := range []struct {
				path string // without the tenant prefix
				want int    // rows in the whole list
			}{
				{"/v1/products?limit=2", 5},
				{"/v1/products?sort=-name&q=P&limit=2", 5},
				{"/v1/products?updated_since=2000-01-01T00:00:00Z&limit=2", 5},
				{"/v1/products", 5},
				{"/v1/users?limit=2", 3},
				{"/v1/users?sort=email&limit=1", 3},
				{"/v1/users?email=u1@example.com&limit=1", 1},
				{"/v1/users?updated_since=2000-01-01T00:00:00%2B02:00&limit=2", 3},
				{"/v1/api-keys?limit=2", 3},
				{"/v1/exports?limit=2", 3},
				{"/v1/admin/tenants?limit=1", 2},
			} {
				base, rawQuery, _ := strings.Cut(c.path, "?")
				asked, err := url.ParseQuery(rawQuery)
				require.NoError(t, err)
				limit := 20
				if v := asked.Get("limit"); v != "" {
					_, _ = fmt.Sscan(v, &limit)
				}
				link := c.path
				if !strings.HasPrefix(base, "/v1/admin/") {
					base, link = prefix+base, prefix+c.path
				}
				seen, pages := map[string]bool{}, 0
				for link != "" {
					r := get(link).requireStatus(t, 200)
					pages++
					for _, it := range r.body["items"].([]any) {
						id := it.(map[string]any)["id"].(string)
						require.False(t, seen[id], "%s: %s twice", c.path, id)
						seen[id] = true
					}
					next := linkNext(t, r)
					if r.body["next_cursor"] == nil {
						require.Empty(t, next, "%s: the last page has no Link", c.path)
						break
					}
					require.NotEmpty(t, next, "%s: a page with a next_cursor links the next page", c.path)
					path, query, _ := strings.Cut(next, "?")
					require.Equal(t, base, path, "%s: the link stays in the tenant mode", c.path)
					got, err := url.ParseQuery(query)
					require.NoError(t, err)
					require.Equal(t, r.body["next_cursor"], got.Get("cursor"), c.path)
					require.Equal(t, fmt.Sprint(limit), got.Get("limit"), c.path)
					for name := range asked {
						require.Equal(t, asked[name], got[name], "%s: the link keeps %s", c.path, name)
					}
					require.Len(t, got, len(asked)+map[bool]int{true: 0, false: 1}[asked.Has("limit")]+1, "%s: nothing else in %s", c.path, next)
					link = next
				}
				require.Len(t, seen, c.want, c.path)
				require.Equal(t, (c.want+limit-1)/limit, pages, c.path)
			}
		})
	}
}

// ?updated_since= lists the products (or users) updated at or after an RFC
// 3339 time, in (updated_at, id) order, page after page; never another
// tenant's, never a deleted one. Its cursors are bound to the list and the
// time: one from another list, filter or tenant is a 400.
func TestUpdatedSinceSyncsIncrementally(t *testing.T) {
	t.Parallel()
	b := setup(t)
	create := func(tenant, name string) string {
		return b.call(t, "POST", "/v1/products", tenant, `{"name":"`+name+`","price":1}`).requireStatus(t, 201).body["id"].(string)
	}
	updatedAt := func(r response) time.Time {
		at, err := time.Parse(time.RFC3339Nano, r.body["updated_at"].(string))
		require.NoError(t, err)
		return at
	}
	a0, a1 := create("acme", "a0"), create("acme", "a1")
	last := b.call(t, "POST", "/v1/products", "acme", `{"name":"a2","price":1}`).requireStatus(t, 201)
	g0 := create("globex", "g0")
	since := updatedAt(last).Add(time.Microsecond)
	time.Sleep(2 * time.Millisecond)

	patched := b.call(t, "PATCH", "/v1/products/"+a0, "acme", `{"price":2}`).requireStatus(t, 200)
	a3 := create("acme", "a3")
	b.call(t, "PATCH", "/v1/products/"+a1, "acme", `{"price":3}`).requireStatus(t, 200)
	gone := create("acme", "gone")
	b.call(t, "DELETE", "/v1/products/"+gone, "acme", "").requireStatus(t, 204)
	b.call(t, "PATCH", "/v1/products/"+g0, "globex", `{"price":4}`).requireStatus(t, 200)
	create("globex", "g1")

	list := func(tenant, path string) (ids []string, r response) {
		r = b.call(t, "GET", path, tenant, "").requireStatus(t, 200)
		for _, it := range r.body["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		return ids, r
	}
	q := "/v1/products?updated_since=" + url.QueryEscape(since.Format(time.RFC3339Nano))
	want := []string{a0, a3, a1} // updated_at order
	ids, _ := list("acme", q)
	require.Equal(t, want, ids, "acme's rows updated since, in updated_at order; not globex's, not the deleted one")

	// Page by page, by next_cursor and by Link, the same sequence.
	var walked []string
	link, cursor := q+"&limit=1", ""
	for link != "" {
		page, r := list("acme", link)
		walked = append(walked, page...)
		if cursor == "" && r.body["next_cursor"] != nil {
			cursor = r.body["next_cursor"].(string)
		}
		link = linkNext(t, r)
	}
	require.Equal(t, want, walked)

	// At or after: the exact time of a0's update includes it, a microsecond
	// or a nanosecond later does not.
	at := updatedAt(patched)
	for _, c := range []struct {
		at   time.Time
		want []string
	}{{at, want}, {at.Add(time.Nanosecond), want[1:]}, {at.Add(time.Microsecond), want[1:]}} {
		ids, _ := list("acme", "/v1/products?updated_since="+url.QueryEscape(c.at.Format(time.RFC3339Nano)))
		require.Equal(t, c.want, ids, c.at.Format(time.RFC3339Nano))
	}
	// Any offset names the same instant.
	ids, _ = list("acme", "/v1/products?updated_since="+url.QueryEscape(since.In(time.FixedZone("", -5*3600)).Format(time.RFC3339Nano)))
	require.Equal(t, want, ids)

	// Users too: the admin was renamed after since.
	b.call(t, "PATCH", "/v1/users/"+b.users["acme"].String(), "acme", `{"name":"Renamed"}`).requireStatus(t, 200)
	b.call(t, "PATCH", "/v1/users/"+b.users["globex"].String(), "globex", `{"name":"Renamed"}`).requireStatus(t, 200)
	users, _ := list("acme", "/v1/users?updated_since="+url.QueryEscape(since.Format(time.RFC3339Nano)))
	require.Equal(t, []string{b.users["acme"].String()}, users)

	// A cursor replays only on its own tenant, list and time.
	require.NotEmpty(t, cursor)
	later := url.QueryEscape(since.Add(time.Second).Format(time.RFC3339Nano))
	plain := b.call(t, "GET", "/v1/products?limit=1", "acme", "").requireStatus(t, 200).body["next_cursor"].(string)
	sorted := b.call(t, "GET", "/v1/products?limit=1&sort=created_at", "acme", "").requireStatus(t, 200).body["next_cursor"].(string)
	for _, c := range []struct{ tenant, path string }{
		{"globex", q + "&cursor=" + cursor},
		{"acme", "/v1/products?cursor=" + cursor},
		{"acme", "/v1/products?sort=created_at&cursor=" + cursor},
		{"acme", "/v1/products?updated_since=" + later + "&cursor=" + cursor},
		{"acme", strings.Replace(q, "products", "users", 1) + "&cursor=" + cursor},
		{"acme", q + "&cursor=" + plain},
		{"acme", q + "&cursor=" + sorted},
	} {
		r := b.call(t, "GET", c.path, c.tenant, "").requireStatus(t, 400)
		require.Equal(t, "invalid-cursor", r.problemType(t), c.path)
	}
	b.call(t, "GET", q+"&cursor="+cursor, "acme", "").requireStatus(t, 200)

	// Bad values: a 400 naming the parameter.
	for _, bad := range []string{
		"updated_since=", "updated_since=yesterday", "updated_since=2026-01-01", "updated_since=2026-01-01T00:00:00",
		"updated_since=2026-01-01+00:00:00Z", "updated_since=2026-02-30T00:00:00Z", "updated_since=1700000000",
		"updated_since=0000-12-31T00:00:00Z", "updated_since=0001-01-01T00:00:00%2B01:00",
		"updated_since=2026-01-01T00:00:00Z&updated_since=2026-01-02T00:00:00Z",
		"updated_since=2026-01-01T00:00:00Z&sort=name", "updated_since=2026-01-01T00:00:00Z&sort=created_at",
		"updated_since=2026-01-01T00:00:00Z&q=a",
	} {
		for _, list := range []string{"products", "users"} {
			r := b.call(t, "GET", "/v1/"+list+"?"+bad, "acme", "").requireStatus(t, 400)
			require.Equal(t, "bad-request", r.problemType(t), bad)
			require.Contains(t, r.body["detail"], "updated_since", bad)
		}
	}
	r := b.call(t, "GET", "/v1/users?updated_since=2026-01-01T00:00:00Z&email=a@example.com", "acme", "").requireStatus(t, 400)
	require.Contains(t, r.body["detail"], "updated_since")
	for _, list := range []string{"api-keys"} {
		b.call(t, "GET", "/v1/"+list+"?updated_since=2026-01-01T00:00:00Z", "acme", "").requireStatus(t, 400)
	}
	// The earliest time allowed, and one far ahead: 200.
	ids, _ = list("acme", "/v1/products?updated_since=0001-01-01T00:00:00Z")
	require.Len(t, ids, 4, "a0 to a3: every live product of acme")
	ids, _ = list("acme", "/v1/products?updated_since=9999-12-31T23:59:59.999999999Z")
	require.Empty(t, ids)
}
