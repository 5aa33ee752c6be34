// Package leakcheck attacks a running rowfence deployment from outside, as a
// security reviewer would: as tenant A it tries every known way to read,
// change or learn about tenant B's rows over HTTP and, given the app role's
// connection, in SQL. Every vector is a check that passes or fails; a failure
// is a leak.
//
// The resources to attack come from the deployment's OpenAPI document
// (Discover): every tenant collection with POST and GET whose item has GET,
// PATCH and DELETE, so a team's own tables are attacked as soon as the
// document lists them (docs/EXTENDING.md). What a document cannot say stays
// fixed knowledge: rowfence's API key format, its roles (a viewer key made
// through /v1/users and /v1/api-keys when the document lists both), and the
// tenant modes other than the header.
package leakcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rowfence/rowfence/lifecycle"
)

// Config names the deployment and the two tenants to play.
type Config struct {
	URL     string // base URL, e.g. http://localhost:8080
	TenantA string // the attacker's slug (or id)
	TenantB string // the victim's slug (or id)
	// KeyA and KeyB are admin API keys of A and B (admin: seeding creates
	// users and keys); OnboardPair makes two fresh tenants and sets them.
	KeyA, KeyB string
	// Mode is how the deployment identifies tenants: header (default),
	// subdomain (BaseDomain needed), path or token; as its TENANT_MODE.
	Mode       string
	BaseDomain string
	DB         string // optional: the app role's connection string, for the SQL vectors
	// OpenAPI is where the deployment's OpenAPI document is: an http(s)
	// URL or a file; default URL + "/openapi.json".
	OpenAPI string
	Client  *http.Client
}

// Result is one vector's outcome.
type Result struct {
	Vector string `json:"vector"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// Report is every vector tried, and the resources they were tried on.
type Report struct {
	Resources []string `json:"resources"` // collection paths discovered, e.g. /v1/products
	Skipped   []string `json:"skipped,omitempty"`
	Results   []Result `json:"results"`
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
	disc   *Discovery
	// learned while seeding
	tenantA, tenantB uuid.UUID
	rows             []*seededRow // one per discovered resource seeded, in order
	rowsBy           map[string]*seededRow
	primary          *seededRow // the first: the target of the generic vectors
}

// seededRow is a resource with one row of A's and (the first of three) of B's.
type seededRow struct {
	Resource
	a, b  string         // ids
	bBody map[string]any // the body that created b
}

// itemPath is the item path of id.
func (r *Resource) itemPath(id string) string {
	return strings.Replace(r.Item, "{"+r.IDParam+"}", id, 1)
}

// body is a valid create body whose strings carry tag.
func (r *Resource) body(tag string) map[string]any {
	v, err := generate(r.create, tag)
	if err != nil { // Discover made one already
		panic(fmt.Errorf("making a body for %s: %w", r.Collection, err))
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
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
		req.Header.Set(c.tenantHeader(), tenant)
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

// OnboardPair creates two fresh tenants with admin keys through pool (the
// owner's: db.AsOwner) and sets them in cfg as A and B. cleanup, never nil,
// deletes the tenants it created (lifecycle.Delete: their rows too) on a
// context of its own, since ctx may be the one an interrupt cancelled; it
// reports to w what it could not delete. Errors: those of lifecycle.Onboard.
func OnboardPair(ctx context.Context, pool *pgxpool.Pool, cfg *Config) (cleanup func(w io.Writer), err error) {
	var made []lifecycle.Onboarded
	cleanup = func(w io.Writer) {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, o := range made {
			if err := lifecycle.Delete(dctx, pool, o.Tenant.ID); err != nil {
				fmt.Fprintf(w, "leakcheck: could not delete its tenant %s (rowfence tenant delete --slug %s): %v\n", o.Tenant.Slug, o.Tenant.Slug, err)
			}
		}
	}
	tag := uuid.NewString()[:8]
	for _, side := range []struct {
		suffix      string
		tenant, key *string
	}{{"a", &cfg.TenantA, &cfg.KeyA}, {"b", &cfg.TenantB, &cfg.KeyB}} {
		slug := "leakcheck-" + tag + "-" + side.suffix
		o, err := lifecycle.Onboard(ctx, pool, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "leakcheck@" + slug + ".example"})
		if err != nil {
			return cleanup, err
		}
		made = append(made, o)
		*side.tenant, *side.key = slug, o.Key
	}
	return cleanup, nil
}

// Document reads the deployment's OpenAPI document (cfg.OpenAPI, else
// cfg.URL + "/openapi.json") and finds the resources Run would attack; an
// error says why leakcheck could not run. Run reads it again itself: call
// Document first to fail before creating anything.
func Document(ctx context.Context, cfg Config) (*Discovery, error) {
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	return document(ctx, client, cfg)
}

func document(ctx context.Context, client *http.Client, cfg Config) (*Discovery, error) {
	where := cfg.OpenAPI
	if where == "" {
		where = strings.TrimSuffix(cfg.URL, "/") + "/openapi.json"
	}
	raw, err := fetchDocument(ctx, client, where)
	if err != nil {
		return nil, err
	}
	disc, err := Discover(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return disc, nil
}

// tenantHeader is the header that names the tenant, as the document says.
func (c *checker) tenantHeader() string {
	if c.disc != nil && c.disc.TenantHeader != "" {
		return c.disc.TenantHeader
	}
	return "X-Tenant-ID"
}

// Run tries every vector. It returns an error only when leakcheck could not
// run: no usable OpenAPI document at the deployment (missing, malformed, no
// tenant resource), or the deployment could not be seeded (wrong URL,
// unknown tenants); leaks are in the report.
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
	client := cfg.Client
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	// The document first: a wrong URL fails before any tenant is created.
	disc, err := document(ctx, client, cfg)
	if err != nil {
		return rep, err
	}
	for _, r := range disc.Resources {
		rep.Resources = append(rep.Resources, r.Collection)
	}
	rep.Skipped = disc.Skipped
	if cfg.TenantA == "" || cfg.TenantB == "" || cfg.TenantA == cfg.TenantB {
		return rep, fmt.Errorf("leakcheck needs two different tenants")
	}
	if cfg.KeyA == "" || cfg.KeyB == "" {
		return rep, fmt.Errorf("leakcheck needs an admin API key of each tenant (or the admin database to create both)")
	}
	c := &checker{cfg: cfg, ctx: ctx, rep: &rep, client: client, disc: disc}
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

// seed creates, for every resource, one row as A and three as B (so that
// B's lists have cursors), and learns the tenants' ids from rows that carry
// tenant_id. A resource whose required references name other resources is
// seeded after them, naming its own tenant's rows. A resource that cannot
// be seeded is reported as not attacked; with none seeded, leakcheck cannot
// run.
func (c *checker) seed() {
	tag := uuid.NewString()[:8]
	c.rowsBy = map[string]*seededRow{}
	pending := slices.Clone(c.disc.Resources)
	for len(pending) > 0 {
		var next []Resource
		for _, r := range pending {
			ready := true
			for _, field := range r.create.Required {
				if coll, ok := r.refs[field]; ok && c.rowsBy[coll] == nil {
					ready = false
				}
			}
			if !ready {
				next = append(next, r)
				continue
			}
			if err := c.seedOne(r, tag); err != nil {
				c.rep.Skipped = append(c.rep.Skipped, r.Collection+": "+err.Error())
			}
		}
		if len(next) == len(pending) {
			for _, r := range next {
				c.rep.Skipped = append(c.rep.Skipped, r.Collection+": its required references name resources that could not be seeded")
			}
			break
		}
		pending = next
	}
	// Document order: the first resource is the primary one.
	for _, r := range c.disc.Resources {
		if row := c.rowsBy[r.Collection]; row != nil {
			c.rows = append(c.rows, row)
		}
	}
	if len(c.rows) == 0 {
		panic(fmt.Errorf("seeding: no resource could be created (%s)", strings.Join(c.rep.Skipped, "; ")))
	}
	c.primary = c.rows[0]
	if c.tenantA == c.tenantB && c.tenantA != uuid.Nil {
		panic(fmt.Errorf("seeding: tenants %q and %q resolved to the same tenant", c.cfg.TenantA, c.cfg.TenantB))
	}
}

// seedOne creates r's rows; an error says why it could not.
func (c *checker) seedOne(r Resource, tag string) error {
	row := &seededRow{Resource: r}
	create := func(tenant string, body map[string]any) (answer, error) {
		a, err := c.do("POST", r.Collection, tenant, "application/json", jsonString(body))
		switch {
		case err != nil:
			return a, err
		case a.status != 201:
			return a, fmt.Errorf("could not create a row as %s: status %d: %.200s", tenant, a.status, a.body)
		case idOf(a, r.IDParam) == "":
			return a, fmt.Errorf("POST answered no %q (nor id) field: %.200s", r.IDParam, a.body)
		}
		return a, nil
	}
	pa, err := create(c.cfg.TenantA, c.bodyFor(&r, false, "a-"+tag))
	if err != nil {
		if pa.status == 0 || pa.status >= 500 || pa.status == 401 || pa.status == 403 {
			panic(fmt.Errorf("seeding: POST %s: %w", r.Collection, err))
		}
		return err
	}
	row.bBody = c.bodyFor(&r, true, "b-"+tag)
	pb, err := create(c.cfg.TenantB, row.bBody)
	if err != nil {
		return err
	}
	for i := range 2 {
		if _, err := create(c.cfg.TenantB, c.bodyFor(&r, true, fmt.Sprintf("b%d-%s", i, tag))); err != nil {
			return err
		}
	}
	row.a, row.b = idOf(pa, r.IDParam), idOf(pb, r.IDParam)
	if c.tenantA == uuid.Nil {
		c.tenantA, _ = uuid.Parse(fmt.Sprint(pa.json["tenant_id"]))
		c.tenantB, _ = uuid.Parse(fmt.Sprint(pb.json["tenant_id"]))
	}
	c.rowsBy[r.Collection] = row
	return nil
}

// bodyFor is a valid create body of r for A (or B): its required
// references name that tenant's seeded rows.
func (c *checker) bodyFor(r *Resource, forB bool, tag string) map[string]any {
	m := r.body(tag)
	for _, field := range r.create.Required {
		if target := c.rowsBy[r.refs[field]]; target != nil {
			m[field] = target.a
			if forB {
				m[field] = target.b
			}
		}
	}
	return m
}

// idOf is the new row's id: the field named like the item path parameter,
// else "id".
func idOf(a answer, param string) string {
	if v, ok := a.json[param].(string); ok {
		return v
	}
	v, _ := a.json["id"].(string)
	return v
}

// tenantOrName is the tenant's id when the rows told it, else its name.
func (c *checker) tenantOrName(id uuid.UUID, name string) string {
	if id == uuid.Nil {
		return name
	}
	return id.String()
}
