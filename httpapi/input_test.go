package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The inputs issue #14 found accepted although the contract forbids them,
// and more of each kind: every one is refused with a 4xx problem that names
// the field (or the parameter or header), before any SQL, and nothing is
// written.
func TestInputRulesRefuseWhatTheContractForbids(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pid := b.call(t, "POST", "/v1/products", "acme", `{"name":"x","price":1}`).requireStatus(t, 201).body["id"].(string)
	uid := b.call(t, "POST", "/v1/users", "acme", `{"name":"x","email":"x@example.com"}`).requireStatus(t, 201).body["id"].(string)
	cases := []struct {
		method, path, body string
		status             int
		ptype, field       string
		headers            []string
	}{
		// Duplicate names: the last one used to win.
		{"POST", "/v1/products", `{"name":"a","price":1,"price":2}`, 400, "malformed-json", "price", nil},
		{"PATCH", "/v1/products/" + pid, `{"price":1,"price":2}`, 400, "malformed-json", "price", nil},
		{"PATCH", "/v1/users/" + uid, `{"role":"viewer","role":"admin"}`, 400, "malformed-json", "role", nil},
		// Names matched case-insensitively: unknown fields, as the contract says.
		{"POST", "/v1/products", `{"nAmE":"x","PRICE":7}`, 400, "malformed-json", "nAmE", nil},
		{"POST", "/v1/users", `{"name":"a","Email":"a@example.com"}`, 400, "malformed-json", "Email", nil},
		// An escaped lone surrogate, once stored as U+FFFD.
		{"POST", "/v1/products", `{"name":"ok\ud800","price":1}`, 400, "malformed-json", "name", nil},
		{"POST", "/v1/products", `{"name":"ok","description":"\udc00\ud800","price":1}`, 400, "malformed-json", "description", nil},
		{"PATCH", "/v1/users/" + uid, `{"name":"\udfff"}`, 400, "malformed-json", "name", nil},
		// Emails that look like an existing one: zero width, bidi, C1.
		{"POST", "/v1/users", `{"name":"a","email":"ad\u200bmin@acme.example"}`, 422, "validation", "email", nil},
		{"POST", "/v1/users", `{"name":"a","email":"admin\u202e@acme.example"}`, 422, "validation", "email", nil},
		{"POST", "/v1/users", `{"name":"a","email":"admin\u0085@acme.example"}`, 422, "validation", "email", nil},
		{"POST", "/v1/users", "{\"name\":\"a\",\"email\":\"admin\u0085@acme.example\"}", 422, "validation", "email", nil}, // raw UTF-8
		{"POST", "/v1/users", `{"name":"a","email":"\u0430dmin@acme.example"}`, 422, "validation", "email", nil},          // Cyrillic a
		{"PATCH", "/v1/users/" + uid, `{"email":"ad\u2060min@acme.example"}`, 422, "validation", "email", nil},
		// Names of the same kind.
		{"POST", "/v1/users", `{"name":"Admin\u200b","email":"a2@example.com"}`, 422, "validation", "name", nil},
		{"POST", "/v1/products", `{"name":"\u202egnp.exe","price":1}`, 422, "validation", "name", nil},
		{"PATCH", "/v1/products/" + pid, `{"name":"\u3164"}`, 422, "validation", "name", nil},
		{"POST", "/v1/api-keys", `{"role":"viewer","name":"ci\u0085"}`, 422, "validation", "name", nil},
		{"POST", "/v1/products", `{"name":"ok","description":"nul\u0000","price":1}`, 422, "validation", "description", nil},
		{"POST", "/v1/products", `{"name":"ok","description":"c1\u009b","price":1}`, 422, "validation", "description", nil},
		// Query strings: a 400 before any SQL, not the database's 422.
		{"GET", "/v1/users?email=a%00@x.example", "", 400, "bad-request", "email", nil},
		{"GET", "/v1/products?q=%FF", "", 400, "bad-request", "q", nil},
		{"GET", "/v1/users?q=%00", "", 400, "bad-request", "q", nil},
		{"GET", "/v1/users?q=%E2%80%AE", "", 400, "bad-request", "q", nil},
		{"GET", "/v1/users?email=ad%E2%80%8Bmin@acme.example", "", 400, "bad-request", "email", nil},
		{"GET", "/v1/users?email=%C2%85", "", 400, "bad-request", "email", nil},
		// Headers.
		{"GET", "/v1/products/" + pid, "", 400, "bad-request", "If-None-Match", []string{"If-None-Match", "\"caf\xe9\""}},
		{"PATCH", "/v1/products/" + pid, `{"price":2}`, 400, "bad-request", "If-Match", []string{"If-Match", "abc"}},
		{"DELETE", "/v1/products/" + pid, "", 400, "bad-request", "If-Match", []string{"If-Match", "\"\xc2\x85\""}},
		{"POST", "/v1/products", `{"name":"a","price":1}`, 400, "idempotency-key-malformed", "Idempotency-Key", []string{"Idempotency-Key", "caf\xc3\xa9"}},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%02d %s", i, c.field), func(t *testing.T) {
			r := b.call(t, c.method, c.path, "acme", c.body, c.headers...)
			require.Equal(t, c.status, r.status, "%s %s %s: %s", c.method, c.path, c.body, r.raw)
			require.Equal(t, c.ptype, r.problemType(t), "%s %s", c.path, c.body)
			if c.status == 422 || c.ptype == "malformed-json" {
				require.Contains(t, r.fieldErrors(t), c.field, "%s %s: %s", c.path, c.body, r.raw)
			} else {
				require.Contains(t, r.body["detail"], c.field, "%s: %s", c.path, r.raw)
			}
			require.NotContains(t, string(r.raw), "SQLSTATE", "the database never saw it")
		})
	}
	if t.Failed() {
		return
	}
	// Nothing was written.
	require.Len(t, b.call(t, "GET", "/v1/products", "acme", "").body["items"], 1)
	require.Len(t, b.call(t, "GET", "/v1/users", "acme", "").body["items"], 2)
	got := b.call(t, "GET", "/v1/products/"+pid, "acme", "").requireStatus(t, 200)
	require.Equal(t, "x", got.body["name"])
	require.EqualValues(t, 1, got.body["price"])

	// Well-formed conditional headers still work.
	tag := got.header.Get("ETag")
	b.call(t, "GET", "/v1/products/"+pid, "acme", "", "If-None-Match", `W/"x", `+tag).requireStatus(t, 304)
	b.call(t, "PATCH", "/v1/products/"+pid, "acme", `{"price":2}`, "If-Match", `"stale"`).requireStatus(t, 412)
	b.call(t, "PATCH", "/v1/products/"+pid, "acme", `{"price":2}`, "If-Match", "*").requireStatus(t, 200)
	// What real names need is kept, byte for byte.
	for _, name := range []string{"می\u200cخواهم", "👩\u200d💻 Dev", "I \u2764\ufe0f NY", "Grüße"} {
		made := b.call(t, "POST", "/v1/users", "acme", `{"name":"`+name+`","email":"u`+strings.Repeat("x", len(name))+`@example.com"}`).requireStatus(t, 201)
		require.Equal(t, name, made.body["name"])
	}
}

// Platform administration takes the same rules: onboarding, renaming, and a
// nested object's fields.
func TestInputRulesInPlatformAdministration(t *testing.T) {
	t.Parallel()
	b, pk := setupPlatform(t)
	admin := bearer(pk)
	cases := []struct {
		method, path, body string
		status             int
		field              string
	}{
		{"POST", "/v1/admin/tenants", `{"slug":"initech","name":"Initech","admin_email":"bill\u200b@initech.example"}`, 422, "admin_email"},
		{"POST", "/v1/admin/tenants", `{"slug":"initech","name":"Ini\u202etech","admin_email":"bill@initech.example"}`, 422, "name"},
		{"POST", "/v1/admin/tenants", `{"slug":"initech","name":"Initech","admin_email":"bill@initech.example","admin_name":"\u0085"}`, 422, "admin_name"},
		{"POST", "/v1/admin/tenants", `{"slug":"initech","name":"Initech","admin_email":"bill@initech.example","SLUG":"x"}`, 400, "SLUG"},
		{"PATCH", "/v1/admin/tenants/" + b.acme.String(), `{"limits":{"rate_limit":1,"rate_limit":2}}`, 400, "limits.rate_limit"},
		{"PATCH", "/v1/admin/tenants/" + b.acme.String(), `{"limits":{"Rate_Limit":1}}`, 400, "limits.Rate_Limit"},
		{"PATCH", "/v1/admin/tenants/" + b.acme.String(), `{"limits":{"rate_limit":"fast"}}`, 422, "limits.rate_limit"},
		{"PATCH", "/v1/admin/tenants/" + b.acme.String(), `{"name":"ok\udbff"}`, 400, "name"},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%02d %s", i, c.field), func(t *testing.T) {
			r := b.call(t, c.method, c.path, "", c.body, admin...)
			require.Equal(t, c.status, r.status, "%s: %s", c.body, r.raw)
			require.Contains(t, r.fieldErrors(t), c.field, "%s: %s", c.body, r.raw)
		})
	}
	require.Len(t, b.call(t, "GET", "/v1/admin/tenants", "", "", admin...).requireStatus(t, 200).body["items"], 2, "no tenant was made")
}
