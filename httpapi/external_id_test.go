package httpapi_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// external_id through the API: admins set and clear it; it is unique per
// tenant (409 naming the field), never across tenants; its text rules
// (textrule.ExternalID) give 400s naming it; members may not write it.
func TestUserExternalID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := b.call(t, "POST", "/v1/users", "acme", `{"name":"E","email":"e@acme.example","external_id":"idp|1"}`).requireStatus(t, 201)
	require.Equal(t, "idp|1", u.body["external_id"])
	id := u.body["id"].(string)
	require.Nil(t, b.call(t, "GET", "/v1/users/"+b.users["acme"].String(), "acme", "").requireStatus(t, 200).body["external_id"])
	require.Contains(t, b.call(t, "GET", "/v1/users/"+b.users["acme"].String(), "acme", "").requireStatus(t, 200).body, "external_id")

	dup := b.call(t, "POST", "/v1/users", "acme", `{"name":"F","email":"f@acme.example","external_id":"idp|1"}`).requireStatus(t, 409)
	require.Contains(t, string(dup.raw), "external_id")
	b.call(t, "POST", "/v1/users", "globex", `{"name":"G","email":"g@globex.example","external_id":"idp|1"}`).requireStatus(t, 201)

	for _, bad := range []string{`""`, `"a b"`, `"idp|\u0000"`, `"é"`, `"` + strings.Repeat("x", 256) + `"`, `1`} {
		r := b.call(t, "POST", "/v1/users", "acme", `{"name":"H","email":"h@acme.example","external_id":`+bad+`}`)
		require.Contains(t, []int{400, 422}, r.status, "%s: %s", bad, r.raw)
		require.Contains(t, string(r.raw), "external_id", bad)
	}

	p := b.call(t, "PATCH", "/v1/users/"+id, "acme", `{"external_id":"idp|2"}`).requireStatus(t, 200)
	require.Equal(t, "idp|2", p.body["external_id"])
	require.Equal(t, "E", p.body["name"])
	p = b.call(t, "PATCH", "/v1/users/"+id, "acme", `{"external_id":null}`).requireStatus(t, 200)
	require.Nil(t, p.body["external_id"])

	member, _, _ := b.newKey(t, "acme", "member", "member")
	b.call(t, "PATCH", "/v1/users/"+id, "acme", `{"external_id":"idp|3"}`, bearer(member)...).requireStatus(t, 403)
	b.call(t, "POST", "/v1/users", "acme", `{"name":"M","email":"m@acme.example","external_id":"idp|4"}`, bearer(member)...).requireStatus(t, 403)
}
