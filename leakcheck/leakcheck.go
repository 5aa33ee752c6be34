// Package leakcheck attacks a running rowfence deployment from outside, as a
// security reviewer would: as tenant A it tries every known way to read,
// change or learn about tenant B's rows over HTTP and, given the app role's
// connection, in SQL. Every vector is a check that passes or fails; a failure
// is a leak.
package leakcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Config names the deployment and the two tenants to play.
type Config struct {
	URL     string // base URL, e.g. http://localhost:8080
	TenantA string // X-Tenant-ID of the attacker
	TenantB string // X-Tenant-ID of the victim
	DB      string // optional: the app role's connection string, for the SQL vectors
	Client  *http.Client
}

// Result is one vector's outcome.
type Result struct {
	Vector string `json:"vector"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// Report is every vector tried.
type Report struct {
	Results []Result `json:"results"`
}

// Leaks counts the failed vectors.
func (r Report) Leaks() int {
	n := 0
	for _, res := range r.Results {
		if !res.Pass {
			n++
		}
	}
	return n
}

type checker struct {
	cfg    Config
	ctx    context.Context
	rep    *Report
	client *http.Client
	// learned while seeding
	tenantA, tenantB uuid.UUID
	productA         string
	productB         string
	userB            string
	emailOnlyInB     string
}

func (c *checker) record(vector string, pass bool, format string, args ...any) {
	c.rep.Results = append(c.rep.Results, Result{Vector: vector, Pass: pass, Detail: fmt.Sprintf(format, args...)})
}

type answer struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

// problemShape is an answer with the per-request parts removed, to compare
// two answers for a difference that would tell them apart.
func (a answer) problemShape() string {
	m := map[string]any{}
	for k, v := range a.json {
		if k != "instance" {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return fmt.Sprintf("%d %s", a.status, b)
}

func (c *checker) do(method, path, tenant, contentType, body string, extra ...string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, strings.TrimSuffix(c.cfg.URL, "/")+path, rd)
	if err != nil {
		return answer{}, err
	}
	if tenant != "" {
		req.Header.Set("X-Tenant-ID", tenant)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Add(extra[i], extra[i+1])
	}
	res, err := c.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return answer{}, err
	}
	a := answer{status: res.StatusCode, header: res.Header, body: raw}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		_ = json.Unmarshal(raw, &a.json)
	}
	return a, nil
}

// mustDo is do for seeding: any error or unexpected status stops the run.
func (c *checker) mustDo(want int, method, path, tenant, body string) answer {
	a, err := c.do(method, path, tenant, "application/json", body)
	if err != nil {
		panic(fmt.Errorf("seeding: %s %s: %w", method, path, err))
	}
	if a.status != want {
		panic(fmt.Errorf("seeding: %s %s as %s: status %d, want %d: %s", method, path, tenant, a.status, want, a.body))
	}
	return a
}

// Run tries every vector. It returns an error only when the deployment could
// not be seeded (wrong URL, unknown tenants); leaks are in the report.
func Run(ctx context.Context, cfg Config) (rep Report, err error) {
	if cfg.TenantA == "" || cfg.TenantB == "" || cfg.TenantA == cfg.TenantB {
		return rep, fmt.Errorf("leakcheck needs two different tenants")
	}
	c := &checker{cfg: cfg, ctx: ctx, rep: &rep, client: cfg.Client}
	if c.client == nil {
		c.client = &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	defer func() {
		if p := recover(); p != nil {
			e, ok := p.(error)
			if !ok {
				panic(p)
			}
			err = e
		}
	}()
	c.seed()
	c.httpVectors()
	if cfg.DB != "" {
		if err := c.sqlVectors(); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (c *checker) seed() {
	tag := uuid.NewString()[:8]
	pa := c.mustDo(201, "POST", "/v1/products", c.cfg.TenantA, `{"name":"leakcheck A `+tag+`","price":1}`)
	pb := c.mustDo(201, "POST", "/v1/products", c.cfg.TenantB, `{"name":"leakcheck B `+tag+`","price":2}`)
	for range 2 { // B has more than one product, so its lists have cursors
		c.mustDo(201, "POST", "/v1/products", c.cfg.TenantB, `{"name":"leakcheck B more","price":3}`)
	}
	c.emailOnlyInB = "leakcheck-" + tag + "@example.com"
	ub := c.mustDo(201, "POST", "/v1/users", c.cfg.TenantB, `{"name":"leakcheck B","email":"`+c.emailOnlyInB+`"}`)
	c.productA, c.productB = pa.json["id"].(string), pb.json["id"].(string)
	c.userB = ub.json["id"].(string)
	c.tenantA, _ = uuid.Parse(fmt.Sprint(pa.json["tenant_id"]))
	c.tenantB, _ = uuid.Parse(fmt.Sprint(pb.json["tenant_id"]))
	if c.tenantA == c.tenantB || c.tenantA == uuid.Nil {
		panic(fmt.Errorf("seeding: tenants %q and %q resolved to the same tenant", c.cfg.TenantA, c.cfg.TenantB))
	}
}
