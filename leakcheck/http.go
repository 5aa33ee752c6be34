package leakcheck

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

func (c *checker) httpVectors() {
	c.foreignIDs()
	c.foreignReferences()
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

// roles: a viewer key of A may read A's rows but write nothing. Making the
// key is rowfence knowledge (a user with role viewer, then its API key); it
// runs when the document lists /v1/users and /v1/api-keys.
func (c *checker) roles() {
	if !c.disc.paths["/v1/users"] || !c.disc.paths["/v1/api-keys"] {
		return
	}
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
	p := c.primary
	r, _ := c.do("GET", p.itemPath(p.a), c.cfg.TenantA, "", "", viewer...)
	c.record("role: viewer reads", r.status == 200, "status %d", r.status)
	type write struct{ method, path, body string }
	var writes []write
	for _, row := range c.rows {
		writes = append(writes,
			write{"POST", row.Collection, jsonString(c.bodyFor(&row.Resource, false, "viewer-"+uuid.NewString()[:8]))},
			write{"PATCH", row.itemPath(row.a), jsonString(map[string]any{row.patchField: row.patchValue})},
			write{"DELETE", row.itemPath(row.a), ""})
	}
	writes = append(writes, write{"POST", "/v1/api-keys", `{"role":"admin"}`})
	for _, w := range writes {
		a, err := c.do(w.method, w.path, c.cfg.TenantA, "application/json", w.body, viewer...)
		name := w.path
		for _, row := range c.rows {
			name = strings.Replace(name, row.a, "{"+row.IDParam+"}", 1)
		}
		c.record("role: viewer "+w.method+" "+name, err == nil && a.status == 403, "status %d", a.status)
	}
	for _, row := range c.rows {
		after, _ := c.do("GET", row.itemPath(row.a), c.cfg.TenantA, "", "")
		got, _ := after.json[row.patchField].(string)
		c.record("role: viewer changed nothing in "+row.Name, after.status == 200 && got != row.patchValue,
			"status %d, %s %q", after.status, row.patchField, got)
	}
	_, _ = c.do("DELETE", "/v1/users/"+uid, c.cfg.TenantA, "", "")
}

// credentials: a request reaches tenant data only with a valid credential of
// the tenant it names. A's own key naming B gets the same 403 as naming a
// tenant that does not exist (nothing about B is revealed); missing, forged
// or re-targeted credentials are 401s that cannot be told apart.
func (c *checker) credentials() {
	path := c.primary.itemPath(c.primary.b)
	list := c.primary.Collection
	nobody := "leakcheck-none-" + uuid.NewString()[:8]
	if c.cfg.Mode != "token" {
		// The tenant is named by header, host or path; A's key names B.
		toB, err1 := c.do("GET", list, c.cfg.TenantB, "", "", "Authorization", "Bearer "+c.cfg.KeyA)
		toNobody, err2 := c.do("GET", list, nobody, "", "", "Authorization", "Bearer "+c.cfg.KeyA)
		c.record("credential: A's key naming B ("+c.modeName()+")", err1 == nil && err2 == nil && toB.status == 403 &&
			toB.problemShape() == toNobody.problemShape(),
			"status %d; naming an absent tenant: %d (must be the same 403)", toB.status, toNobody.status)
		if c.tenantB != uuid.Nil {
			byID, err := c.do("GET", list, c.tenantB.String(), "", "", "Authorization", "Bearer "+c.cfg.KeyA)
			c.record("credential: A's key naming B by id ("+c.modeName()+")", err == nil && byID.status == 403, "status %d", byID.status)
		}
	}
	hdr, err := c.do("GET", path, c.cfg.TenantA, "", "", c.tenantHeader(), c.cfg.TenantB)
	c.record("credential: extra "+c.tenantHeader()+" naming B", err == nil && hdr.status >= 400 && hdr.status < 500 && hdr.status != 200,
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
	for _, res := range c.rows {
		patch := jsonString(map[string]any{res.patchField: res.patchValue})
		shown := res.itemPath("{B's id}")
		for _, method := range []string{"GET", "PATCH", "DELETE"} {
			absent := c.absentID(&res.Resource)
			body := ""
			if method == "PATCH" {
				body = patch
			}
			foreign, err1 := c.do(method, res.itemPath(res.b), c.cfg.TenantA, "application/json", body)
			missing, err2 := c.do(method, res.itemPath(absent), c.cfg.TenantA, "application/json", body)
			vector := fmt.Sprintf("foreign id: %s %s", method, shown)
			switch {
			case err1 != nil || err2 != nil:
				c.record(vector, false, "request failed: %v %v", err1, err2)
			case foreign.status < 400:
				c.record(vector, false, "LEAK: status %d, body %.200s", foreign.status, foreign.body)
			case foreign.problemShape() != missing.problemShape() || len(foreign.body)-len(res.b) != len(missing.body)-len(absent):
				c.record(vector, false, "B's id answers differently from an absent id: %q vs %q", foreign.problemShape(), missing.problemShape())
			default:
				c.record(vector, true, "%d, identical to an absent id", foreign.status)
			}
		}
		still, err := c.do("GET", res.itemPath(res.b), c.cfg.TenantB, "", "")
		got, _ := still.json[res.patchField].(string)
		c.record("foreign id: B's "+strings.TrimSuffix(res.Name, "s")+" untouched", err == nil && still.status == 200 && got != res.patchValue,
			"B reads it back: status %d, %s %q", still.status, res.patchField, got)
	}
}

// foreignReferences: a create body that names B's row in a reference field
// (product_id names /v1/products) is refused exactly as one naming an
// absent id. Foreign keys are checked without row-level security: one
// that is not composite with tenant_id would let A point its rows at B's,
// and tell B's ids from absent ones (leak vector 4). An API that checks no
// reference accepts both, which reveals nothing.
func (c *checker) foreignReferences() {
	for _, res := range c.rows {
		fields := make([]string, 0, len(res.refs))
		for f := range res.refs {
			fields = append(fields, f)
		}
		slices.Sort(fields)
		for _, field := range fields {
			target := c.rowsBy[res.refs[field]]
			if target == nil {
				continue
			}
			try := func(id string) (answer, error) {
				body := c.bodyFor(&res.Resource, false, "ref-"+uuid.NewString()[:8])
				body[field] = id
				a, err := c.do("POST", res.Collection, c.cfg.TenantA, "application/json", jsonString(body))
				if created := idOf(a, res.IDParam); err == nil && a.status < 300 && created != "" {
					_, _ = c.do("DELETE", res.itemPath(created), c.cfg.TenantA, "", "")
				}
				return a, err
			}
			absent := c.absentID(&target.Resource)
			foreign, err1 := try(target.b)
			missing, err2 := try(absent)
			vector := fmt.Sprintf("foreign reference: POST %s naming B's %s", res.Collection, field)
			switch {
			case err1 != nil || err2 != nil:
				c.record(vector, false, "request failed: %v %v", err1, err2)
			case foreign.status < 400 && missing.status < 400:
				c.record(vector, true, "%d for both: the API checks no reference, so none tells B's id apart", foreign.status)
			case foreign.status < 400:
				c.record(vector, false, "LEAK: A's row now names B's %s (status %d; an absent id: %d)", strings.TrimSuffix(field, "_id"), foreign.status, missing.status)
			case strings.ReplaceAll(foreign.problemShape(), target.b, "{id}") != strings.ReplaceAll(missing.problemShape(), absent, "{id}"):
				c.record(vector, false, "B's id answers differently from an absent id: %q vs %q", foreign.problemShape(), missing.problemShape())
			default:
				c.record(vector, true, "%d, identical to an absent id", foreign.status)
			}
		}
	}
}

// absentID is an id of the item parameter's schema that names no row.
func (c *checker) absentID(r *Resource) string {
	v, err := generate(r.idSchema, uuid.NewString()[:8])
	if s, ok := v.(string); ok && err == nil {
		return s
	}
	return uuid.NewString()
}

// bodyNamingTenant: a body that carries tenant_id (B's) is refused and
// writes nothing anywhere.
func (c *checker) bodyNamingTenant() {
	b := c.tenantOrName(c.tenantB, c.cfg.TenantB)
	for _, res := range c.rows {
		before := c.count(res, c.cfg.TenantB)
		body := c.bodyFor(&res.Resource, false, "smuggled-"+uuid.NewString()[:8])
		body["tenant_id"] = b
		a, err := c.do("POST", res.Collection, c.cfg.TenantA, "application/json", jsonString(body))
		after := c.count(res, c.cfg.TenantB)
		c.record(name("body carrying tenant_id", res, c.primary), err == nil && a.status >= 400 && a.status < 500 && before == after && before >= 0,
			"status %d; B's %s %d before, %d after", a.status, res.Name, before, after)
		p, err := c.do("PATCH", res.itemPath(res.a), c.cfg.TenantA, "application/json", jsonString(map[string]any{"tenant_id": b}))
		c.record(name("patch carrying tenant_id", res, c.primary), err == nil && p.status >= 400 && p.status < 500, "status %d", p.status)
	}
}

// name is the vector's name, with the resource named unless it is the
// primary one (whose names stay as they always were).
func name(vector string, res, primary *seededRow) string {
	if res == primary {
		return vector
	}
	return vector + " (" + res.Name + ")"
}

// count walks a tenant's list of a resource (-1: it could not).
func (c *checker) count(res *seededRow, tenant string) int {
	n, cursor := 0, ""
	for range 1000 {
		path := res.Collection
		if res.limitParam != "" {
			path += "?" + res.limitParam + "=100"
		}
		if cursor != "" && res.cursorParam != "" {
			path += sep(path) + res.cursorParam + "=" + url.QueryEscape(cursor)
		}
		a, err := c.do("GET", path, tenant, "", "")
		if err != nil || a.status != 200 {
			return -1
		}
		items, _ := a.json[res.itemsField].([]any)
		n += len(items)
		next, _ := a.json[res.nextCursorField].(string)
		if next == "" || res.cursorParam == "" {
			return n
		}
		cursor = next
	}
	return -1
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// paged are the resources whose lists page by cursor.
func (c *checker) paged() []*seededRow {
	var out []*seededRow
	for _, r := range c.rows {
		if r.cursorParam != "" && r.nextCursorField != "" && r.limitParam != "" {
			out = append(out, r)
		}
	}
	return out
}

// cursors: B's cursor, an altered one and junk are refused, never followed.
func (c *checker) cursors() {
	paged := c.paged()
	if len(paged) == 0 {
		return
	}
	p := paged[0]
	page := func(r *seededRow, cursor string) string {
		q := r.Collection + "?" + r.limitParam + "=1"
		if cursor != "" {
			q += "&" + r.cursorParam + "=" + url.QueryEscape(cursor)
		}
		return q
	}
	b, err := c.do("GET", page(p, ""), c.cfg.TenantB, "", "")
	cursor, _ := b.json[p.nextCursorField].(string)
	if err != nil || cursor == "" {
		c.record("cursor from B", false, "could not get a cursor as B: status %d", b.status)
		return
	}
	a, err := c.do("GET", page(p, cursor), c.cfg.TenantA, "", "")
	c.record("cursor from B", err == nil && a.status == 400, "status %d", a.status)
	altered := []byte(cursor)
	altered[len(altered)/2] ^= 0x01
	if altered[len(altered)/2] == '+' || altered[len(altered)/2] == '/' {
		altered[len(altered)/2] = 'A'
	}
	t, err := c.do("GET", page(p, string(altered)), c.cfg.TenantB, "", "")
	c.record("altered cursor", err == nil && t.status == 400, "status %d", t.status)
	if len(paged) > 1 {
		u, err := c.do("GET", page(paged[1], cursor), c.cfg.TenantB, "", "")
		c.record("cursor of another list", err == nil && u.status == 400, "status %d (%s's cursor on %s)", u.status, p.Name, paged[1].Name)
	}
}

// listsHoldOnlyOwnRows: every row A lists is A's: none of B's ids, and
// every tenant_id (where rows carry one) A's.
func (c *checker) listsHoldOnlyOwnRows() {
	for _, res := range c.rows {
		path := res.Collection
		if res.limitParam != "" {
			path += "?" + res.limitParam + "=100"
		}
		a, err := c.do("GET", path, c.cfg.TenantA, "", "")
		items, _ := a.json[res.itemsField].([]any)
		foreign := 0
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			if tid, has := m["tenant_id"]; (has && c.tenantA != uuid.Nil && tid != c.tenantA.String()) || idOf(answer{json: m}, res.IDParam) == res.b {
				foreign++
			}
		}
		c.record("list "+res.Name+" holds only A's rows", err == nil && a.status == 200 && foreign == 0 && len(items) > 0,
			"status %d, %d rows, %d not A's", a.status, len(items), foreign)
	}
}

// uniqueSideChannel: a value of B's (an email field of a create body:
// the kind of value kept unique per tenant) is free in A; a 409 would tell A
// that B has it. The probe upper-cases it, as unique emails are compared
// case-insensitively.
func (c *checker) uniqueSideChannel() {
	for _, res := range c.rows {
		for _, field := range res.emails {
			bValue, _ := res.bBody[field].(string)
			body := c.bodyFor(&res.Resource, false, "probe-"+uuid.NewString()[:8])
			body[field] = strings.ToUpper(bValue)
			a, err := c.do("POST", res.Collection, c.cfg.TenantA, "application/json", jsonString(body))
			vector := "unique values: 409 side channel"
			if res.Name != "users" || field != "email" {
				vector += " (" + res.Name + "." + field + ")"
			}
			c.record(vector, err == nil && a.status == 201, "A creating B's %s: status %d", field, a.status)
			if id := idOf(a, res.IDParam); id != "" && a.status == 201 {
				_, _ = c.do("DELETE", res.itemPath(id), c.cfg.TenantA, "", "")
			}
		}
	}
}

// headerTricks: ambiguous or malformed tenant identification never reaches
// B's data and never breaks the server.
func (c *checker) headerTricks() {
	path := c.primary.itemPath(c.primary.b)
	th := c.tenantHeader()
	cases := []struct {
		name    string
		tenant  string
		headers []string
	}{
		{"no tenant header", "", nil},
		{"two tenant headers (A, B)", c.cfg.TenantA, []string{th, c.cfg.TenantB}},
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
			p = path + "?tenant=" + c.cfg.TenantB + "&" + th + "=" + c.cfg.TenantB
		}
		tenant, headers := tc.tenant, tc.headers
		if c.modeName() != "header" {
			// The header is not how this deployment names tenants: name A
			// its way and send the trick as an X-Tenant-ID header anyway.
			tenant = c.cfg.TenantA
			if tc.tenant != "" && tc.tenant != c.cfg.TenantA {
				headers = append([]string{th, tc.tenant}, headers...)
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
	p := c.primary
	o, err := c.do("GET", p.itemPath(p.b), c.cfg.TenantA, "", "", "X-HTTP-Method-Override", "DELETE")
	stillB, _ := c.do("GET", p.itemPath(p.b), c.cfg.TenantB, "", "")
	c.record("method override header", err == nil && o.status == 404 && stillB.status == 200,
		"status %d; B's row afterwards %d", o.status, stillB.status)
	for _, m := range []string{"PUT", "TRACE", "CONNECT"} {
		a, err := c.do(m, p.itemPath(p.b), c.cfg.TenantA, "", "")
		c.record("method "+m, err == nil && a.status >= 400 && a.status < 500, "status %d", a.status)
	}
	for _, ct := range []string{"text/plain", "application/json; charset=utf-16", "application/x-www-form-urlencoded", ""} {
		a, err := c.do("POST", p.Collection, c.cfg.TenantA, ct, jsonString(c.bodyFor(&p.Resource, false, "ct-"+uuid.NewString()[:8])))
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
				_, _ = c.do("GET", c.primary.itemPath(id), tenant[0], "", "", "Authorization", "Bearer "+c.cfg.KeyA)
			} else {
				_, _ = c.do("GET", c.primary.itemPath(id), c.cfg.TenantA, "", "")
			}
		}
	}
	c.compareTimes("timing: B's id against an absent id", get(c.primary.b), get(c.absentID(&c.primary.Resource)))
	if c.cfg.Mode != "token" {
		c.compareTimes("timing: naming B against naming no tenant",
			get(c.primary.b, c.cfg.TenantB), get(c.primary.b, "leakcheck-none-"+uuid.NewString()[:8]))
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
