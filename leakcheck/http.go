package leakcheck

import (
	"fmt"
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
	c.timing()
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
		a, err := c.do("GET", p, tc.tenant, "", "", tc.headers...)
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
func (c *checker) timing() {
	median := func(id string) time.Duration {
		var ds []time.Duration
		for range 31 {
			t0 := time.Now()
			_, _ = c.do("GET", "/v1/products/"+id, c.cfg.TenantA, "", "")
			ds = append(ds, time.Since(t0))
		}
		for i := range ds { // insertion sort: 31 values
			for j := i; j > 0 && ds[j] < ds[j-1]; j-- {
				ds[j], ds[j-1] = ds[j-1], ds[j]
			}
		}
		return ds[len(ds)/2]
	}
	foreign, absent := median(c.productB), median(uuid.NewString())
	hi, lo := max(foreign, absent), min(foreign, absent)
	pass := hi <= 3*lo || hi-lo < time.Millisecond
	c.record("timing: B's id against an absent id", pass, "median %s against %s", foreign, absent)
}
