package httpapi_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestConditionalRequests(t *testing.T) {
	t.Parallel()
	b := setup(t)
	made := b.call(t, "POST", "/v1/products", "acme", `{"name":"anvil","price":1}`).requireStatus(t, 201)
	id := made.body["id"].(string)
	path := "/v1/products/" + id
	tag := made.header.Get("ETag")
	require.Regexp(t, `^"[A-Za-z0-9_-]+"$`, tag, "a strong ETag")

	got := b.call(t, "GET", path, "acme", "").requireStatus(t, 200)
	require.Equal(t, tag, got.header.Get("ETag"), "the same representation, the same tag")
	for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
		nm := b.call(t, "GET", path, "acme", "", "If-None-Match", inm).requireStatus(t, 304)
		require.Empty(t, nm.raw)
		require.Equal(t, tag, nm.header.Get("ETag"))
	}
	b.call(t, "GET", path, "acme", "", "If-None-Match", `"stale"`).requireStatus(t, 200)

	// Two clients read the same version; the second writer is refused.
	first := b.call(t, "PATCH", path, "acme", `{"price":2}`, "If-Match", tag).requireStatus(t, 200)
	newTag := first.header.Get("ETag")
	require.NotEqual(t, tag, newTag)
	lost := b.call(t, "PATCH", path, "acme", `{"price":3}`, "If-Match", tag).requireStatus(t, 412)
	require.Equal(t, "precondition-failed", lost.problemType(t))
	require.Equal(t, newTag, lost.header.Get("ETag"), "the 412 tells the current tag")
	require.EqualValues(t, 2, b.call(t, "GET", path, "acme", "").body["price"], "no lost update")
	b.call(t, "PATCH", path, "acme", `{"price":3}`, "If-Match", "W/"+newTag).requireStatus(t, 412) // weak never matches
	b.call(t, "PATCH", path, "acme", `{"price":3}`, "If-Match", `"x", `+newTag).requireStatus(t, 200)

	cur := b.call(t, "GET", path, "acme", "").header.Get("ETag")
	b.call(t, "DELETE", path, "acme", "", "If-Match", tag).requireStatus(t, 412)
	b.call(t, "GET", path, "acme", "").requireStatus(t, 200)
	b.call(t, "DELETE", path, "acme", "", "If-Match", cur).requireStatus(t, 204)
	b.call(t, "DELETE", path, "acme", "", "If-Match", "*").requireStatus(t, 404)
	b.call(t, "PATCH", "/v1/products/"+uuid.NewString(), "acme", `{"price":1}`, "If-Match", "*").requireStatus(t, 404)

	// Another tenant's row with its own valid tag: still just absent.
	g := b.call(t, "POST", "/v1/products", "globex", `{"name":"theirs","price":1}`).requireStatus(t, 201)
	b.call(t, "PATCH", "/v1/products/"+g.body["id"].(string), "acme", `{"price":9}`, "If-Match", g.header.Get("ETag")).requireStatus(t, 404)

	// Users and keys too.
	u := b.call(t, "POST", "/v1/users", "acme", `{"name":"U","email":"u@example.com"}`).requireStatus(t, 201)
	b.call(t, "DELETE", "/v1/users/"+u.body["id"].(string), "acme", "", "If-Match", `"nope"`).requireStatus(t, 412)
	b.call(t, "DELETE", "/v1/users/"+u.body["id"].(string), "acme", "", "If-Match", u.header.Get("ETag")).requireStatus(t, 204)
	k := b.call(t, "POST", "/v1/api-keys", "acme", `{"role":"viewer"}`).requireStatus(t, 201)
	kpath := "/v1/api-keys/" + k.body["id"].(string)
	ktag := b.call(t, "GET", kpath, "acme", "").requireStatus(t, 200).header.Get("ETag")
	b.call(t, "DELETE", kpath, "acme", "", "If-Match", `"nope"`).requireStatus(t, 412)
	b.call(t, "DELETE", kpath, "acme", "", "If-Match", ktag).requireStatus(t, 204)
}
