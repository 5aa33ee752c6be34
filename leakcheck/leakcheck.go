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
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/lifecycle"
)

// Config names the deployment and the two tenants to play.
type Config struct {
	URL     string // base URL, e.g. http://localhost:8080
	TenantA string // the attacker's slug (or id)
	TenantB string // the victim's slug (or id)
	// KeyA and KeyB are admin API keys of A and B (admin: seeding creates
	// users and keys). Without them, AdminDB must be given.
	KeyA, KeyB string
	// AdminDB, the migrating role's connection string, lets leakcheck
	// onboard two fresh tenants itself (TenantA/B and KeyA/B are then set).
	AdminDB string
	// Mode is how the deployment identifies tenants: header (default),
	// subdomain (BaseDomain needed), path or token; as its TENANT_MODE.
	Mode       string
	BaseDomain string
	DB         string // optional: the app role's connection string, for the SQL vectors
	Client     *http.Client
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

// do sends a request naming tenant the way the deployment's mode expects
// ("" names none), with B's key when it names B and A's key otherwise.
// extra headers are added; an "Authorization" among them replaces the key
// (an empty value sends no credential).
func (c *checker) do(method, path, tenant, contentType, body string, extra ...string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	if c.cfg.Mode == "path" && tenant != "" && strings.HasPrefix(path, "/v1/") {
		path = "/t/" + tenant + path
	}
	req, err := http.NewRequestWithContext(c.ctx, method, strings.TrimSuffix(c.cfg.URL, "/")+path, rd)
	if err != nil {
		return answer{}, err
	}
	switch {
	case tenant == "":
	case c.cfg.Mode == "subdomain":
		req.Host = tenant + "." + c.cfg.BaseDomain
	case c.cfg.Mode == "header" || c.cfg.Mode == "":
		req.Header.Set("X-Tenant-ID", tenant)
	}
	key := c.cfg.KeyA
	if tenant == c.cfg.TenantB {
		key = c.cfg.KeyB
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i] == "Authorization" {
			req.Header.Del("Authorization")
		}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] != "" || extra[i] != "Authorization" {
			req.Header.Add(extra[i], extra[i+1])
		}
	}
	// The deployment's rate limits are not a finding: on a 429, wait as told
	// and send the same request again (bodies are strings, so it can be).
	var res *http.Response
	for attempt := 0; ; attempt++ {
		if body != "" {
			req.Body = io.NopCloser(strings.NewReader(body))
		}
		res, err = c.client.Do(req)
		if err != nil {
			return answer{}, err
		}
		if res.StatusCode != http.StatusTooManyRequests || attempt == 10 {
			break
		}
		res.Body.Close()
		wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		select {
		case <-time.After(time.Duration(min(max(wait, 1), 10)) * time.Second):
		case <-c.ctx.Done():
			return answer{}, c.ctx.Err()
		}
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

// onboardPair creates two fresh tenants with admin keys.
func onboardPair(ctx context.Context, cfg *Config) error {
	pcfg, err := pgxpool.ParseConfig(cfg.AdminDB)
	if err != nil {
		return err
	}
	pcfg.MaxConns = 2
	db.AsOwner(pcfg)
	pool, err := db.Open(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	tag := uuid.NewString()[:8]
	for _, side := range []struct {
		suffix      string
		tenant, key *string
	}{{"a", &cfg.TenantA, &cfg.KeyA}, {"b", &cfg.TenantB, &cfg.KeyB}} {
		slug := "leakcheck-" + tag + "-" + side.suffix
		o, err := lifecycle.Onboard(ctx, pool, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "leakcheck@" + slug + ".example"})
		if err != nil {
			return err
		}
		*side.tenant, *side.key = slug, o.Key
	}
	return nil
}

// Run tries every vector. It returns an error only when the deployment could
// not be seeded (wrong URL, unknown tenants); leaks are in the report.
func Run(ctx context.Context, cfg Config) (rep Report, err error) {
	switch cfg.Mode {
	case "", "header", "path", "token":
	case "subdomain":
		if cfg.BaseDomain == "" {
			return rep, fmt.Errorf("subdomain mode needs the base domain")
		}
	default:
		return rep, fmt.Errorf("unknown tenant mode %q: header, subdomain, path or token", cfg.Mode)
	}
	if cfg.KeyA == "" && cfg.KeyB == "" && cfg.AdminDB != "" {
		if err := onboardPair(ctx, &cfg); err != nil {
			return rep, fmt.Errorf("creating two tenants: %w", err)
		}
	}
	if cfg.TenantA == "" || cfg.TenantB == "" || cfg.TenantA == cfg.TenantB {
		return rep, fmt.Errorf("leakcheck needs two different tenants")
	}
	if cfg.KeyA == "" || cfg.KeyB == "" {
		return rep, fmt.Errorf("leakcheck needs an admin API key of each tenant (or the admin database to create both)")
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
