package httpapi_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"unicode/utf16"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/textrule"
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
		// null where the contract allows none: once taken as absent (201,
		// read back as "", a member, a key that never expires).
		{"POST", "/v1/products", `{"name":"ok","price":1,"description":null}`, 422, "validation", "description", nil},
		{"POST", "/v1/users", `{"name":"a","email":"n1@example.com","role":null}`, 422, "validation", "role", nil},
		{"POST", "/v1/api-keys", `{"role":"viewer","name":null}`, 422, "validation", "name", nil},
		{"POST", "/v1/api-keys", `{"role":"viewer","expires_at":null}`, 422, "validation", "expires_at", nil},
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

// genText makes a random JSON string literal (quotes included) from pieces
// that stress the rules: letters of several scripts, emoji and their
// joiners, controls, bidi and invisible characters, noncharacters, line
// separators, raw invalid UTF-8 and escaped lone surrogates. Each character
// is written raw or as a \u escape at random.
func genText(rng *rand.Rand) string {
	pieces := []string{"a", "Z", "0", " ", "-", ".", "'", `"`, `\`, "/", "<", "&", "é", "ß", "ж", "а", "ע", "م", "ی", "क्", "中",
		"🚀", "👩", "❤", "\u0301", "\u200c", "\u200d", "\ufe0f", "\ufe0e", "\u200b", "\u200e", "\u202e", "\u2066", "\u2069",
		"\u00ad", "\ufeff", "\u2060", "\u3164", "\U000E0041", "\ufe00", "\u2028", "\u2029", "\u3000", "\u00a0",
		"\x00", "\x01", "\t", "\n", "\r", "\x1f", "\x7f", "\u0080", "\u0085", "\u009f", "\ufdd0", "\ufffe", "\uffff", "\U0010FFFF", "\U0001FFFE"}
	benign := pieces[:22]
	var b strings.Builder
	b.WriteByte('"')
	for range rng.IntN(6) + 1 {
		p := benign[rng.IntN(len(benign))]
		switch rng.IntN(40) {
		case 0:
			b.WriteString([]string{"\xff", "\xed\xa0\x80", "\xc3", "\xf4\x90\x80\x80"}[rng.IntN(4)]) // invalid UTF-8
			continue
		case 1:
			b.WriteString([]string{`\ud800`, `\udfff`, `\udc00\ud800`, `\ud83d`}[rng.IntN(4)]) // lone surrogates
			continue
		case 2, 3, 4, 5, 6, 7, 8, 9, 10, 11:
			p = pieces[rng.IntN(len(pieces))]
		}
		for _, r := range p {
			switch {
			case r == '"' || r == '\\':
				b.WriteString(`\` + string(r))
			case r < 0x20 || rng.IntN(3) == 0:
				for _, u := range utf16.Encode([]rune{r}) {
					fmt.Fprintf(&b, `\u%04x`, u)
				}
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// The property of the input rules, through HTTP and PostgreSQL: for random
// texts in every text field, whatever is accepted (201) reads back byte for
// byte (GET), and whatever is refused is a 4xx problem naming the field:
// 400 when it is not even a JSON string (invalid UTF-8, a lone surrogate),
// else exactly when textrule refuses it, a 422. The list filters ?q= and
// ?email= answer 200 or a 400 naming the parameter, by the same rules.
func TestInputRulesProperty(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rng := rand.New(rand.NewPCG(14, 6))
	fields := []struct {
		path, field string
		rules       textrule.Field
		body        func(literal string, i int) string
	}{
		{"/v1/products", "name", textrule.ProductName, func(l string, _ int) string { return `{"name":` + l + `,"price":1}` }},
		{"/v1/products", "description", textrule.ProductDescription, func(l string, _ int) string { return `{"name":"p","description":` + l + `,"price":1}` }},
		{"/v1/users", "name", textrule.UserName, func(l string, i int) string { return fmt.Sprintf(`{"name":%s,"email":"p%d@example.com"}`, l, i) }},
		{"/v1/users", "email", textrule.UserEmail, func(l string, i int) string {
			return fmt.Sprintf(`{"name":"u","email":"u%d%s@example.com"}`, i, l[1:len(l)-1])
		}},
		{"/v1/api-keys", "name", textrule.APIKeyName, func(l string, _ int) string { return `{"role":"viewer","name":` + l + `}` }},
	}
	counts := map[string]int{}
	for i := range 400 {
		f := fields[i%len(fields)]
		literal := genText(rng)
		body := f.body(literal, i)
		// What the client meant, if the literal is a JSON string at all.
		var want string
		decodeErr := jsonv2.Unmarshal([]byte(literal), &want)
		if f.field == "email" {
			want = fmt.Sprintf("u%d%s@example.com", i, want)
		}
		r := b.call(t, "POST", f.path, "acme", body)
		switch {
		case decodeErr != nil:
			require.Equal(t, 400, r.status, "%s %s: %s", f.path, body, r.raw)
			require.Contains(t, r.fieldErrors(t), f.field, "%s: %s", body, r.raw)
			counts["400"]++
		case f.rules.Check(want) != nil:
			require.Equal(t, 422, r.status, "%s %s (%v): %s", f.path, body, f.rules.Check(want), r.raw)
			require.Contains(t, r.fieldErrors(t), f.field, "%s: %s", body, r.raw)
			counts["422"]++
		default:
			require.Equal(t, 201, r.status, "%s %s: %s", f.path, body, r.raw)
			got := b.call(t, "GET", r.header.Get("Location"), "acme", "").requireStatus(t, 200)
			var read map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(got.raw, &read))
			var back string
			require.NoError(t, jsonv2.Unmarshal(read[f.field], &back))
			require.Equal(t, []byte(want), []byte(back), "%s %s reads back byte for byte", f.path, f.field)
			counts["201"]++
		}
		if decodeErr == nil {
			for param, rules := range map[string]textrule.Field{"q": textrule.SearchPrefix, "email": textrule.UserEmail} {
				q := b.call(t, "GET", "/v1/users?"+param+"="+url.QueryEscape(want), "acme", "")
				if rules.Check(want) == nil {
					q.requireStatus(t, 200)
				} else {
					q.requireStatus(t, 400)
					require.True(t, strings.HasPrefix(q.body["detail"].(string), param+" "), "%s", q.raw)
				}
			}
		}
	}
	t.Logf("answers: %v", counts)
	for _, status := range []string{"201", "400", "422"} {
		require.Greater(t, counts[status], 20, "the generator reaches every outcome")
	}
}
