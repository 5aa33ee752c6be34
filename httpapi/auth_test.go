package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/httpapi"
)

// shape is an answer without its per-request parts, to compare answers that
// must not be told apart.
func (r response) shape() string {
	m := map[string]any{}
	for k, v := range r.body {
		if k != "instance" {
			m[k] = v
		}
	}
	return fmt.Sprintf("%d %v %s %d", r.status, m, r.header.Get("WWW-Authenticate"), len(r.raw)-len(fmt.Sprint(r.body["instance"])))
}

// newKey makes a user with userRole and a key with keyRole for it, as acme's
// admin, and returns the key.
func (b *testBundle) newKey(t *testing.T, tenant, userRole, keyRole string) (key, userID, keyID string) {
	t.Helper()
	u := b.call(t, "POST", "/v1/users", tenant, fmt.Sprintf(`{"name":"U","email":"%s@example.com","role":%q}`, uuid.NewString()[:8], userRole)).requireStatus(t, 201)
	userID = u.body["id"].(string)
	k := b.call(t, "POST", "/v1/api-keys", tenant, fmt.Sprintf(`{"role":%q,"user_id":%q,"name":"test"}`, keyRole, userID)).requireStatus(t, 201)
	return k.body["key"].(string), userID, k.body["id"].(string)
}

func bearer(cred string) []string { return []string{"Authorization", "Bearer " + cred} }

func TestCredentialsAreRequiredAndChecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	good := b.keys["acme"]

	none := b.call(t, "GET", "/v1/products", "acme", "", "Authorization", "").requireStatus(t, 401)
	require.Equal(t, `Bearer realm="rowfence"`, none.header.Get("WWW-Authenticate"))
	require.Equal(t, "unauthorized", none.problemType(t))
	for _, h := range []string{"Basic " + good, "Bearer", "Bearer ", good, "Token " + good} {
		r := b.call(t, "GET", "/v1/products", "acme", "", "Authorization", h).requireStatus(t, 401)
		require.Equal(t, `Bearer realm="rowfence"`, r.header.Get("WWW-Authenticate"), "%q", h)
	}
	two := b.call(t, "GET", "/v1/products", "acme", "", "Authorization", "Bearer "+good, "Authorization", "Bearer "+good).requireStatus(t, 401)
	require.Contains(t, two.header.Get("WWW-Authenticate"), `error="invalid_request"`)
	// The scheme is case-insensitive (RFC 9110).
	b.call(t, "GET", "/v1/products", "acme", "", "Authorization", "bearer "+good).requireStatus(t, 200)

	// Every way a key can be wrong gets the same answer.
	revoked, _, revokedID := b.newKey(t, "acme", "member", "member")
	b.call(t, "DELETE", "/v1/api-keys/"+revokedID, "acme", "").requireStatus(t, 204)
	expired, _, expiredID := b.newKey(t, "acme", "member", "member")
	_, err := b.admin.Exec(ctx, "update api_keys set expires_at = now() - interval '1 second' where id = $1", expiredID)
	require.NoError(t, err)
	orphaned, orphanUser, _ := b.newKey(t, "acme", "viewer", "viewer")
	b.call(t, "GET", "/v1/me", "acme", "", bearer(orphaned)...).requireStatus(t, 200)
	b.call(t, "DELETE", "/v1/users/"+orphanUser, "acme", "").requireStatus(t, 204)
	acmeHex := strings.ReplaceAll(b.acme.String(), "-", "")
	globexHex := strings.ReplaceAll(b.globex.String(), "-", "")
	wrong := map[string]string{
		"malformed":              "rfk_not-a-key",
		"upper-case hex":         strings.ToUpper(good),
		"forged secret":          good[:len(good)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[len(good)-1])+1)%16]),
		"unknown key id":         "rfk_" + acmeHex + "_" + strings.ReplaceAll(uuid.NewString(), "-", "") + good[len(good)-65:],
		"another tenant's id":    strings.Replace(good, acmeHex, globexHex, 1),
		"revoked":                revoked,
		"expired":                expired,
		"user deleted":           orphaned,
		"a JWT, not configured":  "eyJhbGciOiJIUzI1NiJ9.e30.x",
		"globex's key truncated": b.keys["globex"][:100],
	}
	var first string
	for name, cred := range wrong {
		r := b.call(t, "GET", "/v1/products", "acme", "", bearer(cred)...)
		require.Equal(t, 401, r.status, "%s: %s", name, r.raw)
		require.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`, name)
		if first == "" {
			first = r.shape()
		}
		require.Equal(t, first, r.shape(), "%s answers like every other invalid credential", name)
	}
}

// A valid credential for tenant A naming any other tenant gets one answer,
// whether that tenant exists or not: nothing about it is even looked up.
func TestTenantMismatchRevealsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.keys["acme"]
	var first string
	for _, named := range []string{"globex", b.globex.String(), "initech", uuid.NewString()} {
		for _, path := range []string{"/v1/products", "/v1/users/" + b.users["globex"].String()} {
			r := b.call(t, "GET", path, named, "", bearer(acme)...).requireStatus(t, 403)
			require.Equal(t, "tenant-mismatch", r.problemType(t))
			if first == "" {
				first = r.shape()
			}
			require.Equal(t, first, r.shape(), "naming %s", named)
		}
	}
	// Its own tenant by slug or by id is fine.
	b.call(t, "GET", "/v1/products", "acme", "", bearer(acme)...).requireStatus(t, 200)
	b.call(t, "GET", "/v1/products", b.acme.String(), "", bearer(acme)...).requireStatus(t, 200)
}

// Every route, for every role: allowed answers are never 403, refused ones
// are a 403 "forbidden" and change nothing.
func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	creds := map[string]string{"admin": b.keys["acme"]}
	creds["member"], _, _ = b.newKey(t, "acme", "member", "member")
	creds["viewer"], _, _ = b.newKey(t, "acme", "viewer", "viewer")
	product := b.call(t, "POST", "/v1/products", "acme", `{"name":"p","price":1}`).requireStatus(t, 201).body["id"].(string)
	missing := uuid.NewString()
	type route struct {
		method, path, body, least string
	}
	rank := map[string]int{"viewer": 1, "member": 2, "admin": 3}
	routes := []route{
		{"GET", "/v1/me", "", "viewer"},
		{"GET", "/v1/products", "", "viewer"},
		{"GET", "/v1/products/" + product, "", "viewer"},
		{"POST", "/v1/products", `{"name":"n","price":2}`, "member"},
		{"PATCH", "/v1/products/" + product, `{"price":3}`, "member"},
		{"DELETE", "/v1/products/" + missing, "", "member"},
		{"GET", "/v1/users", "", "viewer"},
		{"GET", "/v1/users/" + b.users["acme"].String(), "", "viewer"},
		{"POST", "/v1/users", `{"name":"n","email":"EMAIL","role":"viewer"}`, "admin"},
		{"PATCH", "/v1/users/" + missing, `{"name":"x"}`, "admin"},
		{"DELETE", "/v1/users/" + missing, "", "admin"},
		{"GET", "/v1/api-keys", "", "admin"},
		{"POST", "/v1/api-keys", `{"role":"viewer"}`, "admin"},
		{"GET", "/v1/api-keys/" + missing, "", "admin"},
		{"DELETE", "/v1/api-keys/" + missing, "", "admin"},
	}
	for _, rt := range routes {
		for role, cred := range creds {
			body := strings.ReplaceAll(rt.body, "EMAIL", uuid.NewString()[:8]+"@example.com")
			r := b.call(t, rt.method, rt.path, "acme", body, bearer(cred)...)
			if rank[role] >= rank[rt.least] {
				require.NotEqual(t, 403, r.status, "%s %s as %s: %s", rt.method, rt.path, role, r.raw)
				require.Less(t, r.status, 500, "%s %s as %s: %s", rt.method, rt.path, role, r.raw)
			} else {
				require.Equal(t, 403, r.status, "%s %s as %s: %s", rt.method, rt.path, role, r.raw)
				require.Equal(t, "forbidden", r.problemType(t))
				require.Contains(t, r.body["detail"], "needs "+rt.least)
			}
		}
	}
	// The refused writes changed nothing: only the member's and admin's
	// products exist (the original plus one POST each).
	items := b.call(t, "GET", "/v1/products", "acme", "").requireStatus(t, 200).body["items"].([]any)
	require.Len(t, items, 3)
}

func TestAPIKeyManagement(t *testing.T) {
	t.Parallel()
	b := setup(t)
	made := b.call(t, "POST", "/v1/api-keys", "acme", `{"role":"member","name":"ci"}`).requireStatus(t, 201)
	key := made.body["key"].(string)
	id := made.body["id"].(string)
	require.True(t, strings.HasPrefix(key, "rfk_"), key)
	require.Len(t, key, 4+32+1+32+1+64, "256-bit secret")
	require.Equal(t, "/v1/api-keys/"+id, made.header.Get("Location"))
	require.Equal(t, b.users["acme"].String(), made.body["user_id"], "a key defaults to the caller's user")
	require.Nil(t, made.body["last_used_at"])

	me := b.call(t, "GET", "/v1/me", "acme", "", bearer(key)...).requireStatus(t, 200)
	require.Equal(t, "member", me.body["role"])
	require.Equal(t, id, me.body["key_id"])
	require.Equal(t, "api_key", me.body["credential"])
	require.Equal(t, "acme", me.body["tenant_slug"])

	got := b.call(t, "GET", "/v1/api-keys/"+id, "acme", "").requireStatus(t, 200)
	require.NotContains(t, got.body, "key", "the key itself is shown once only")
	require.NotContains(t, string(got.raw), key[len(key)-64:])
	require.NotContains(t, string(got.raw), "secret")
	require.NotNil(t, got.body["last_used_at"], "using a key stamps last_used_at")
	list := b.call(t, "GET", "/v1/api-keys", "acme", "").requireStatus(t, 200)
	require.Len(t, list.body["items"], 2, "the first admin key and this one")
	require.NotContains(t, string(list.raw), key[len(key)-64:])

	// Validation.
	_, viewerUser, _ := b.newKey(t, "acme", "viewer", "viewer")
	for body, field := range map[string]string{
		`{}`:               "role",
		`{"role":"owner"}`: "role",
		`{"role":"admin","user_id":"` + viewerUser + `"}`:                  "role",
		`{"role":"viewer","user_id":"` + uuid.NewString() + `"}`:           "user_id",
		`{"role":"viewer","user_id":"` + b.users["globex"].String() + `"}`: "user_id",
		`{"role":"viewer","user_id":"nope"}`:                               "user_id",
		`{"role":"viewer","expires_at":"2001-01-01T00:00:00Z"}`:            "expires_at",
		`{"role":"viewer","expires_at":"tomorrow"}`:                        "expires_at",
		`{"role":"viewer","name":"` + strings.Repeat("n", 201) + `"}`:      "name",
	} {
		r := b.call(t, "POST", "/v1/api-keys", "acme", body).requireStatus(t, 422)
		require.Contains(t, r.fieldErrors(t), field, body)
	}
	future := b.call(t, "POST", "/v1/api-keys", "acme", `{"role":"viewer","expires_at":"2100-01-01T00:00:00Z"}`).requireStatus(t, 201)
	require.Equal(t, "2100-01-01T00:00:00Z", future.body["expires_at"])

	// Lowering the user's role lowers the key's: a key never grants more.
	demoted, demotedUser, _ := b.newKey(t, "acme", "member", "member")
	b.call(t, "POST", "/v1/products", "acme", `{"name":"ok","price":1}`, bearer(demoted)...).requireStatus(t, 201)
	b.call(t, "PATCH", "/v1/users/"+demotedUser, "acme", `{"role":"viewer"}`).requireStatus(t, 200)
	b.call(t, "POST", "/v1/products", "acme", `{"name":"no","price":1}`, bearer(demoted)...).requireStatus(t, 403)

	// Revocation: immediate on this instance, kept on record, idempotent.
	b.call(t, "DELETE", "/v1/api-keys/"+id, "acme", "").requireStatus(t, 204)
	b.call(t, "GET", "/v1/me", "acme", "", bearer(key)...).requireStatus(t, 401)
	revoked := b.call(t, "GET", "/v1/api-keys/"+id, "acme", "").requireStatus(t, 200)
	require.NotNil(t, revoked.body["revoked_at"])
	b.call(t, "DELETE", "/v1/api-keys/"+id, "acme", "").requireStatus(t, 204)
	again := b.call(t, "GET", "/v1/api-keys/"+id, "acme", "").requireStatus(t, 200)
	require.Equal(t, revoked.body["revoked_at"], again.body["revoked_at"])

	// Another tenant's keys are as absent as any other row.
	gid, err := uuid.Parse(b.keys["globex"][37:69]) // rfk_<tenant>_<key id>_<secret>
	require.NoError(t, err)
	b.call(t, "GET", "/v1/api-keys/"+gid.String(), "acme", "").requireStatus(t, 404)
	b.call(t, "DELETE", "/v1/api-keys/"+gid.String(), "acme", "").requireStatus(t, 404)
	b.call(t, "GET", "/v1/me", "globex", "").requireStatus(t, 200)
}

func TestTenantModes(t *testing.T) {
	t.Parallel()
	t.Run("subdomain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *httpapi.Config) { c.TenantMode, c.BaseDomain = httpapi.ModeSubdomain, "api.example.test" })
		acme := b.keys["acme"]
		for _, host := range []string{"acme.api.example.test", "ACME.api.example.test:8443", "acme.api.example.test."} {
			b.call(t, "GET", "/v1/products", "", "", append(bearer(acme), "Host", host)...).requireStatus(t, 200)
		}
		b.call(t, "GET", "/v1/products", "", "", append(bearer(acme), "Host", b.acme.String()+".api.example.test")...).requireStatus(t, 200)
		mismatch := b.call(t, "GET", "/v1/products", "", "", append(bearer(acme), "Host", "globex.api.example.test")...).requireStatus(t, 403)
		require.Equal(t, "tenant-mismatch", mismatch.problemType(t))
		for _, host := range []string{"api.example.test", "example.test", "a.b.api.example.test", "acme.api.example.test.evil"} {
			r := b.call(t, "GET", "/v1/products", "", "", append(bearer(acme), "Host", host)...).requireStatus(t, 400)
			require.Equal(t, "tenant-required", r.problemType(t), host)
		}
		r := b.call(t, "GET", "/v1/products", "", "", append(bearer(acme), "Host", "ac_me.api.example.test")...).requireStatus(t, 400)
		require.Equal(t, "tenant-malformed", r.problemType(t))
		// The header means nothing in this mode.
		b.call(t, "GET", "/v1/products", "globex", "", append(bearer(acme), "Host", "acme.api.example.test")...).requireStatus(t, 200)
	})
	t.Run("path", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *httpapi.Config) { c.TenantMode = httpapi.ModePath })
		acme := b.keys["acme"]
		made := b.call(t, "POST", "/t/acme/v1/products", "", `{"name":"n","price":1}`, bearer(acme)...).requireStatus(t, 201)
		require.Equal(t, "/t/acme/v1/products/"+made.body["id"].(string), made.header.Get("Location"))
		b.call(t, "GET", "/t/"+b.acme.String()+"/v1/products", "", "", bearer(acme)...).requireStatus(t, 200)
		b.call(t, "GET", "/t/globex/v1/products", "", "", bearer(acme)...).requireStatus(t, 403)
		b.call(t, "GET", "/t/initech/v1/products", "", "", bearer(acme)...).requireStatus(t, 403)
		b.call(t, "GET", "/t/ACME/v1/products", "", "", bearer(acme)...).requireStatus(t, 400)
		b.call(t, "GET", "/v1/products", "acme", "", bearer(acme)...).requireStatus(t, 404)
	})
	t.Run("token", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *httpapi.Config) { c.TenantMode = httpapi.ModeToken })
		acme := b.keys["acme"]
		me := b.call(t, "GET", "/v1/me", "", "", bearer(acme)...).requireStatus(t, 200)
		require.Equal(t, "acme", me.body["tenant_slug"])
		b.call(t, "GET", "/v1/products", "acme", "", bearer(acme)...).requireStatus(t, 200)
		b.call(t, "GET", "/v1/products", "globex", "", bearer(acme)...).requireStatus(t, 403)
		b.call(t, "GET", "/v1/products", "", "", bearer(b.keys["globex"])...).requireStatus(t, 200)
	})
	t.Run("header is the default", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.call(t, "GET", "/v1/products", "", "").requireStatus(t, 400)
		require.Equal(t, "tenant-required", r.problemType(t))
		require.Contains(t, r.header.Values("Vary"), httpapi.TenantHeader)
		require.Contains(t, r.header.Values("Vary"), "Authorization")
	})
}
