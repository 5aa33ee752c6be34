package leakcheck

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

func (c *checker) httpVectors() {
	c.foreignIDs()
	c.bodyNamingTenant()
	c.cursors()
	c.listsHoldOnlyOwnRows()
	c.uniqueSideChannel()
	c.headerTricks()
	c.methodAndContentTypeTricks()
	c.credentials()
	c.roles()
	c.timing()
}

// roles: a viewer key of A may read A's products but write nothing.
func (c *checker) roles() {
	u, err := c.do("POST", "/v1/users", c.cfg.TenantA, "application/json",
		`{"name":"leakcheck viewer","email":"viewer-`+uuid.NewString()[:8]+`@example.com","role":"viewer"}`)
	uid, _ := u.json["id"].(string)
	k, err2 := c.do("POST", "/v1/api-keys", c.cfg.TenantA, "application/json", `{"role":"viewer","user_id":"`+uid+`"}`)
	key, _ := k.json["key"].(string)
	if err != nil || err2 != nil || key == "" {
		c.record("role: viewer key", false, "could not make a viewer key as A's admin: statuses %d, %d", u.status, k.status)
		return
	}
	viewer := []string{"Authorization", "Bearer " + key}
	r, _ := c.do("GET", "/v1/products/"+c.productA, c.cfg.TenantA, "", "", viewer...)
	c.record("role: viewer reads", r.status == 200, "status %d", r.status)
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/v1/products", `{"name":"by a viewer","price":1}`},
		{"PATCH", "/v1/products/" + c.productA, `{"name":"by a viewer"}`},
		{"DELETE", "/v1/products/" + c.productA, ""},
		{"POST", "/v1/api-keys", `{"role":"admin"}`},
	} {
		a, err := c.do(w.method, w.path, c.cfg.TenantA, "application/json", w.body, viewer...)
		c.record("role: viewer "+w.method+" "+strings.Replace(w.path, c.productA, "{id}", 1), err == nil && a.status == 403, "status %d", a.status)
	}
	after, _ := c.do("GET", "/v1/products/"+c.productA, c.cfg.TenantA, "", "")
	name, _ := after.json["name"].(string)
	c.record("role: viewer changed nothing", after.status == 200 && name != "by a viewer", "status %d, name %q", after.status, name)
	_, _ = c.do("DELETE", "/v1/users/"+uid, c.cfg.TenantA, "", "")
}

// credentials: a request reaches tenant data only with a valid credential of
// the tenant it names. A's own key naming B gets the same 403 as naming a
// tenant that does not exist (nothing about B is revealed); missing, forged
// or re-targeted credentials are 401s that cannot be told apart.
func (c *checker) credentials() {
	path := "/v1/products/" + c.productB
	nobody := "leakcheck-none-" + uuid.NewString()[:8]
	if c.cfg.Mode != "token" {
		// The tenant is named by header, host or path; A's key names B.
		toB, err1 := c.do("GET", "/v1/products", c.cfg.TenantB, "", "", "Authorization", "Bearer "+c.cfg.KeyA)
		toNobody, err2 := c.do("GET", "/v1/products", nobody, "", "", "Authorization", "Bearer "+c.cfg.KeyA)
		c.record("credential: A's key naming B ("+c.modeName()+")", err1 == nil && err2 == nil && toB.status == 403 &&
			toB.problemShape() == toNobody.problemShape(),
			"status %d; naming an absent tenant: %d (must be the same 403)", toB.status, toNobody.status)
		byID, err := c.do("GET", "/v1/products", c.tenantB.String(), "", "", "Authorization", "Bearer "+c.cfg.KeyA)
		c.record("credential: A's key naming B by id ("+c.modeName()+")", err == nil && byID.status == 403, "status %d", byID.status)
	}
	hdr, err := c.do("GET", path, c.cfg.TenantA, "", "", "X-Tenant-ID", c.cfg.TenantB)
	c.record("credential: extra X-Tenant-ID naming B", err == nil && hdr.status >= 400 && hdr.status < 500 && hdr.status != 200,
		"status %d", hdr.status)

	unauth := []struct {
		name  string
		value []string // Authorization values; none: no header
	}{
		{"no credential", nil},
		{"Basic scheme", []string{"Basic " + c.cfg.KeyA}},
		{"credential without scheme", []string{c.cfg.KeyA}},
		{"two credentials (A's, B's)", []string{"Bearer " + c.cfg.KeyA, "Bearer " + c.cfg.KeyB}},
		{"forged secret", []string{"Bearer " + forgeSecret(c.cfg.KeyA)}},
		{"A's key re-targeted at B", []string{"Bearer " + retarget(c.cfg.KeyA, c.tenantA, c.tenantB)}},
		{"unknown key id", []string{"Bearer " + newKeyID(c.cfg.KeyA)}},
		{"made-up JWT", []string{"Bearer eyJhbGciOiJub25lIn0.eyJ0ZW5hbnRfaWQiOiJ4In0."}},
	}
	var shape string
	for _, u := range unauth {
		extra := []string{"Authorization", ""}
		for _, v := range u.value {
			extra = append(extra, "Authorization", v)
		}
		a, err := c.do("GET", path, c.cfg.TenantB, "", "", extra...)
		ok := err == nil && a.status == 401 && strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer")
		detail := fmt.Sprintf("status %d, WWW-Authenticate %q", a.status, a.header.Get("WWW-Authenticate"))
		if ok && len(u.value) == 1 && strings.HasPrefix(u.value[0], "Bearer rfk_") {
			// Invalid keys of every kind answer alike: no oracle for which
			// part was wrong.
			if shape == "" {
				shape = a.problemShape()
			}
			if a.problemShape() != shape {
				ok, detail = false, "answers differently from another invalid key: "+a.problemShape()+" vs "+shape
			}
		}
		c.record("credential: "+u.name, ok, "%s", detail)
	}
	q, err := c.do("GET", path+"?api_key="+c.cfg.KeyB+"&access_token="+c.cfg.KeyB, c.cfg.TenantB, "", "", "Authorization", "")
	c.record("credential: B's key in the query string", err == nil && q.status >= 400 && q.status < 500 && q.status != 404,
		"status %d (query strings carry no credentials)", q.status)
}

func (c *checker) modeName() string {
	if c.cfg.Mode == "" {
		return "header"
	}
	return c.cfg.Mode
}

// The key vectors below know rowfence's key format,
// rfk_<tenant hex>_<key id hex>_<secret hex>; other values pass unchanged
// (and are then refused as they are).

func forgeSecret(key string) string {
	if len(key) < 2 {
		return key + "0"
	}
	last := key[len(key)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return key[:len(key)-1] + string(repl)
}

func retarget(key string, from, to uuid.UUID) string {
	hex := func(u uuid.UUID) string { return strings.ReplaceAll(u.String(), "-", "") }
	return strings.Replace(key, hex(from), hex(to), 1)
}

func newKeyID(key string) string {
	parts := strings.Split(key, "_")
	if len(parts) != 4 {
		return key + "x"
	}
	parts[2] = strings.ReplaceAll(uuid.NewString(), "-", "")
	return strings.Join(parts, "_")
}

// foreignIDs: B's ids in A's paths must answer exactly like ids that do not
// exist (status, problem and size), and must change nothing.
func (c *checker) foreignIDs() {
	for _, res := range []struct{ kind, id, patch string }{
		{"products", c.productB, `{"name":"hijacked"}`},
		{"users", c.userB, `{"name":"hijacked"}`},
	} {
		absent := uuid.NewString()
		for _, method := range []string{"GET", "PATCH", "DELETE"} {
			body := ""
			if method == "PATCH" {
				body = res.patch
			}
			foreign, err1 := c.do(method, "/v1/"+res.kind+"/"+res.id, c.cfg.TenantA, "application/json", body)
			missing, err2 := c.do(method, "/v1/"+res.kind+"/"+absent, c.cfg.TenantA, "application/json", body)
			vector := fmt.Sprintf("foreign id: %s /v1/%s/{B's id}", method, res.kind)
			switch {
			case err1 != nil || err2 != nil:
				c.record(vector, false, "request failed: %v %v", err1, err2)
			case foreign.status < 400:
				c.record(vector, false, "LEAK: status %d, body %.200s", foreign.status, foreign.body)
			case foreign.problemShape() != missing.problemShape() || len(foreign.body)-len(res.id) != len(missing.body)-len(absent):
				c.record(vector, false, "B's id answers differently from an absent id: %q vs %q", foreign.problemShape(), missing.problemShape())
			default:
				c.record(vector, true, "%d, identical to an absent id", foreign.status)
			}
		}
		still, err := c.do("GET", "/v1/"+res.kind+"/"+res.id, c.cfg.TenantB, "", "")
		name, _ := still.json["name"].(string)
		c.record("foreign id: B's "+res.kind[:len(res.kind)-1]+" untouched", err == nil && still.status == 200 && name != "hijacked",
			"B reads it back: status %d, name %q", still.status, name)
	}
}

// bodyNamingTenant: a body that carries tenant_id (B's) is refused and
// writes nothing anywhere.
func (c *checker) bodyNamingTenant() {
	before := c.count(c.cfg.TenantB)
	a, err := c.do("POST", "/v1/products", c.cfg.TenantA, "application/json",
		fmt.Sprintf(`{"name":"smuggled","price":1,"tenant_id":%q}`, c.tenantB))
	after := c.count(c.cfg.TenantB)
	c.record("body carrying tenant_id", err == nil && a.status >= 400 && a.status < 500 && before == after,
		"status %d; B's products %d before, %d after", a.status, before, after)
	p, err := c.do("PATCH", "/v1/products/"+c.productA, c.cfg.TenantA, "application/json",
		fmt.Sprintf(`{"tenant_id":%q}`, c.tenantB))
	c.record("patch carrying tenant_id", err == nil && p.status >= 400 && p.status < 500, "status %d", p.status)
}

// count walks a tenant's product list.
func (c *checker) count(tenant string) int {
	n, cursor := 0, ""
	for range 1000 {
		path := "/v1/products?limit=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		a, err := c.do("GET", path, tenant, "", "")
		if err != nil || a.status != 200 {
			return -1
		}
		items, _ := a.json["items"].([]any)
		n += len(items)
		next, _ := a.json["next_cursor"].(string)
		if next == "" {
			return n
		}
		cursor = next
	}
	return -1
}

// cursors: B's cursor, an altered one and junk are refused, never followed.
func (c *checker) cursors() {
	b, err := c.do("GET", "/v1/products?limit=1", c.cfg.TenantB, "", "")
	cursor, _ := b.json["next_cursor"].(string)
	if err != nil || cursor == "" {
		c.record("cursor from B", false, "could not get a cursor as B: status %d", b.status)
		return
	}
	a, err := c.do("GET", "/v1/products?limit=1&cursor="+cursor, c.cfg.TenantA, "", "")
	c.record("cursor from B", err == nil && a.status == 400, "status %d", a.status)
	altered := []byte(cursor)
	altered[len(altered)/2] ^= 0x01
	if altered[len(altered)/2] == '+' || altered[len(altered)/2] == '/' {
		altered[len(altered)/2] = 'A'
	}
	t, err := c.do("GET", "/v1/products?limit=1&cursor="+string(altered), c.cfg.TenantB, "", "")
	c.record("altered cursor", err == nil && t.status == 400, "status %d", t.status)
	u, err := c.do("GET", "/v1/users?limit=1&cursor="+cursor, c.cfg.TenantB, "", "")
	c.record("cursor of another list", err == nil && u.status == 400, "status %d", u.status)
}

// listsHoldOnlyOwnRows: every row A lists is A's.
func (c *checker) listsHoldOnlyOwnRows() {
	for _, kind := range []string{"products", "users"} {
		a, err := c.do("GET", "/v1/"+kind+"?limit=100", c.cfg.TenantA, "", "")
		items, _ := a.json["items"].([]any)
		foreign := 0
		for _, it := range items {
			if m, ok := it.(map[string]any); ok && m["tenant_id"] != c.tenantA.String() {
				foreign++
			}
		}
		c.record("list "+kind+" holds only A's rows", err == nil && a.status == 200 && foreign == 0,
			"status %d, %d rows, %d not A's", a.status, len(items), foreign)
	}
}

// uniqueSideChannel: an email that exists only in B is free in A; a 409 would
// tell A that B has it.
func (c *checker) uniqueSideChannel() {
	a, err := c.do("POST", "/v1/users", c.cfg.TenantA, "application/json",
		`{"name":"probe","email":"`+strings.ToUpper(c.emailOnlyInB)+`"}`)
	c.record("unique values: 409 side channel", err == nil && a.status == 201, "A creating B's email: status %d", a.status)
	if id, ok := a.json["id"].(string); ok {
		_, _ = c.do("DELETE", "/v1/users/"+id, c.cfg.TenantA, "", "")
	}
}

// headerTricks: ambiguous or malformed tenant identification never reaches
// B's data and never breaks the server.
func (c *checker) headerTricks() {
	path := "/v1/products/" + c.productB
	cases := []struct {
		name    string
		tenant  string
		headers []string
	}{
		{"no tenant header", "", nil},
		{"two tenant headers (A, B)", c.cfg.TenantA, []string{"X-Tenant-ID", c.cfg.TenantB}},
		{"tenant list in one header", c.cfg.TenantA + "," + c.cfg.TenantB, nil},
		{"upper-cased tenant", strings.ToUpper(c.cfg.TenantB), nil},
		{"tenant with a tab inside", c.cfg.TenantB + "\tx", nil},
		{"non-UTF-8 tenant", c.cfg.TenantB + "\xff\xfe", nil},
		{"oversized tenant header", strings.Repeat("a", 16<<10), nil},
		{"tenant in a query parameter", c.cfg.TenantA, nil},
	}
	for _, tc := range cases {
		p := path
		if tc.name == "tenant in a query parameter" {
			p = path + "?tenant=" + c.cfg.TenantB + "&X-Tenant-ID=" + c.cfg.TenantB
		}
		tenant, headers := tc.tenant, tc.headers
		if c.modeName() != "header" {
			// The header is not how this deployment names tenants: name A
			// its way and send the trick as an X-Tenant-ID header anyway.
			tenant = c.cfg.TenantA
			if tc.tenant != "" && tc.tenant != c.cfg.TenantA {
				headers = append([]string{"X-Tenant-ID", tc.tenant}, headers...)
			}
		}
		a, err := c.do("GET", p, tenant, "", "", headers...)
		c.record("header: "+tc.name, err == nil && a.status >= 400 && a.status < 500,
			"status %d (must be a 4xx, never B's row or a 5xx)", a.status)
	}
}

// methodAndContentTypeTricks: overrides and odd media types neither act
// nor break.
func (c *checker) methodAndContentTypeTricks() {
	o, err := c.do("GET", "/v1/products/"+c.productB, c.cfg.TenantA, "", "", "X-HTTP-Method-Override", "DELETE")
	stillB, _ := c.do("GET", "/v1/products/"+c.productB, c.cfg.TenantB, "", "")
	c.record("method override header", err == nil && o.status == 404 && stillB.status == 200,
		"status %d; B's product afterwards %d", o.status, stillB.status)
	for _, m := range []string{"PUT", "TRACE", "CONNECT"} {
		a, err := c.do(m, "/v1/products/"+c.productB, c.cfg.TenantA, "", "")
		c.record("method "+m, err == nil && a.status >= 400 && a.status < 500, "status %d", a.status)
	}
	for _, ct := range []string{"text/plain", "application/json; charset=utf-16", "application/x-www-form-urlencoded", ""} {
		a, err := c.do("POST", "/v1/products", c.cfg.TenantA, ct, `{"name":"ct","price":1}`)
		c.record(fmt.Sprintf("content type %q", ct), err == nil && a.status == 415, "status %d", a.status)
	}
}

// timing: B's ids must not answer measurably slower or faster than absent
// ids. Informational threshold: a median ratio beyond 3x (and 1 ms) fails.
// The two requests alternate, each going first in turn, so a burst of load
// on the machine slows both sides alike; a difference past the threshold must
// show in a second measurement too (a real timing channel persists, noise on
// a shared machine does not), unless it is past 10x, which fails at once.
func (c *checker) timing() {
	get := func(id string, tenant ...string) func() {
		return func() {
			if len(tenant) == 1 { // A's key naming that tenant
				_, _ = c.do("GET", "/v1/products/"+id, tenant[0], "", "", "Authorization", "Bearer "+c.cfg.KeyA)
			} else {
				_, _ = c.do("GET", "/v1/products/"+id, c.cfg.TenantA, "", "")
			}
		}
	}
	c.compareTimes("timing: B's id against an absent id", get(c.productB), get(uuid.NewString()))
	if c.cfg.Mode != "token" {
		c.compareTimes("timing: naming B against naming no tenant",
			get(c.productB, c.cfg.TenantB), get(c.productB, "leakcheck-none-"+uuid.NewString()[:8]))
	}
}

// compareTimes records whether a and b take about as long.
func (c *checker) compareTimes(vector string, a, b func()) {
	var details []string
	for range 2 {
		ma, mb := pairedMedians(a, b)
		hi, lo := max(ma, mb), min(ma, mb)
		details = append(details, fmt.Sprintf("median %s against %s", ma, mb))
		if hi <= 3*lo || hi-lo < time.Millisecond {
			c.record(vector, true, "%s", strings.Join(details, "; then "))
			return
		}
		if hi > 10*lo {
			break
		}
	}
	c.record(vector, false, "%s", strings.Join(details, "; then "))
}

// pairedMedians runs a and b alternately, 31 times each, each going first
// in turn, and returns the median duration of each.
func pairedMedians(a, b func()) (time.Duration, time.Duration) {
	const n = 31
	da, db := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	timed := func(f func()) time.Duration {
		t0 := time.Now()
		f()
		return time.Since(t0)
	}
	for i := range n {
		if i%2 == 0 {
			da = append(da, timed(a))
			db = append(db, timed(b))
		} else {
			db = append(db, timed(b))
			da = append(da, timed(a))
		}
	}
	slices.Sort(da)
	slices.Sort(db)
	return da[n/2], db[n/2]
}
