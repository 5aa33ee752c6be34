package leakcheck

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
)

// Resource is a tenant collection found in the deployment's OpenAPI document:
// a path with POST and GET whose item path (the collection plus one path
// parameter) has GET, PATCH and DELETE, all under the tenant security scheme.
type Resource struct {
	Name       string // the collection's last path segment, e.g. "products"
	Collection string // e.g. "/v1/products"
	Item       string // e.g. "/v1/products/{id}"
	IDParam    string // the item path's parameter, e.g. "id"

	create     *openapi3.Schema // the POST body's schema
	idSchema   *openapi3.Schema // the item path parameter's schema
	patchField string           // a string field of the PATCH body to overwrite
	patchValue string           // a valid value for it that no seeded row holds
	emails     []string         // create fields of format email (unique-value probes)
	// refs are the create fields that name a row of another discovered
	// resource (<singular>_id, a UUID: product_id names /v1/products),
	// field -> that resource's collection.
	refs map[string]string
	// How the list pages (empty when the document does not say).
	itemsField, nextCursorField, cursorParam, limitParam string
}

// Discovery is what leakcheck learned from the document.
type Discovery struct {
	Resources []Resource
	// TenantHeader is the header of the apiKey security scheme that names
	// the tenant (the scheme's or the header's name mentions "tenant").
	TenantHeader string
	// Skipped lists tenant paths that are not attacked, with the reason.
	Skipped []string
	paths   map[string]bool // every path the document lists
}

// fetchDocument reads the OpenAPI document from a URL (http or https) or,
// for any other value, a file.
func fetchDocument(ctx context.Context, client *http.Client, where string) ([]byte, error) {
	if !strings.HasPrefix(where, "http://") && !strings.HasPrefix(where, "https://") {
		body, err := os.ReadFile(where)
		if err != nil {
			return nil, fmt.Errorf("reading the OpenAPI document: %w", err)
		}
		return body, nil
	}
	req, err := http.NewRequestWithContext(ctx, "GET", where, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document at %s: %w", where, err)
	}
	req.Header.Set("Accept", "application/json, application/yaml")
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document at %s: %w", where, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document at %s: %w", where, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading the OpenAPI document at %s: status %d (does the deployment publish one? --openapi names another place)", where, res.StatusCode)
	}
	return body, nil
}

// Discover finds the tenant resources in an OpenAPI 3 document (JSON or
// YAML). It fails when the document does not parse or validate, names no
// tenant security scheme, or lists no resource to attack.
func Discover(raw []byte) (*Discovery, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("the OpenAPI document does not parse: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not valid: %w", err)
	}
	if doc.Paths == nil || doc.Paths.Len() == 0 {
		return nil, fmt.Errorf("the OpenAPI document lists no paths")
	}
	d := &Discovery{paths: map[string]bool{}}
	tenantScheme := ""
	if doc.Components != nil {
		names := make([]string, 0, len(doc.Components.SecuritySchemes))
		for name := range doc.Components.SecuritySchemes {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			s := doc.Components.SecuritySchemes[name].Value
			if s != nil && s.Type == "apiKey" && s.In == "header" &&
				(strings.Contains(strings.ToLower(s.Name), "tenant") || strings.Contains(strings.ToLower(name), "tenant")) {
				tenantScheme, d.TenantHeader = name, s.Name
				break
			}
		}
	}
	if tenantScheme == "" {
		return nil, fmt.Errorf("the OpenAPI document names no tenant: no apiKey security scheme in a header whose name (or the header's) mentions the tenant")
	}
	tenantOp := func(op *openapi3.Operation) bool {
		if op == nil {
			return false
		}
		reqs := doc.Security
		if op.Security != nil {
			reqs = *op.Security
		}
		for _, r := range reqs {
			if _, ok := r[tenantScheme]; ok {
				return true
			}
		}
		return false
	}
	paths := doc.Paths.InMatchingOrder()
	slices.Sort(paths)
	for _, p := range paths {
		d.paths[p] = true
	}
	for _, coll := range paths {
		item := doc.Paths.Value(coll)
		if strings.Contains(coll, "{") || !tenantOp(item.Post) || !tenantOp(item.Get) {
			continue
		}
		var itemPath string
		for _, q := range paths {
			rest, ok := strings.CutPrefix(q, coll+"/{")
			if ok && strings.HasSuffix(rest, "}") && !strings.ContainsAny(strings.TrimSuffix(rest, "}"), "{}/") {
				itemPath = q
			}
		}
		if itemPath == "" {
			d.Skipped = append(d.Skipped, coll+": no item path "+coll+"/{id}")
			continue
		}
		one := doc.Paths.Value(itemPath)
		if !tenantOp(one.Get) || !tenantOp(one.Patch) || !tenantOp(one.Delete) {
			d.Skipped = append(d.Skipped, coll+": "+itemPath+" lacks GET, PATCH or DELETE")
			continue
		}
		r, err := resource(coll, itemPath, item, one)
		if err != nil {
			d.Skipped = append(d.Skipped, coll+": "+err.Error())
			continue
		}
		d.Resources = append(d.Resources, r)
	}
	byName := map[string]string{}
	for _, r := range d.Resources {
		byName[strings.ReplaceAll(r.Name, "-", "_")] = r.Collection
	}
	for i := range d.Resources {
		r := &d.Resources[i]
		r.refs = map[string]string{}
		for _, name := range sortedProps(r.create) {
			base, ok := strings.CutSuffix(name, "_id")
			s := r.create.Properties[name].Value
			if !ok || name == "tenant_id" || s == nil || s.Format != "uuid" {
				continue
			}
			if coll, ok := byName[base+"s"]; ok && coll != r.Collection {
				r.refs[name] = coll
			}
		}
	}
	if len(d.Resources) == 0 {
		return nil, fmt.Errorf("the OpenAPI document lists no tenant collection with POST, GET and GET, PATCH, DELETE by id (skipped: %s)", strings.Join(d.Skipped, "; "))
	}
	return d, nil
}

func resource(coll, itemPath string, list, one *openapi3.PathItem) (Resource, error) {
	r := Resource{Name: coll[strings.LastIndex(coll, "/")+1:], Collection: coll, Item: itemPath}
	r.IDParam = strings.TrimSuffix(strings.TrimPrefix(itemPath, coll+"/{"), "}")
	r.idSchema = &openapi3.Schema{Type: &openapi3.Types{"string"}}
	for _, ps := range []openapi3.Parameters{one.Parameters, one.Get.Parameters} {
		for _, p := range ps {
			if p.Value != nil && p.Value.In == "path" && p.Value.Name == r.IDParam && p.Value.Schema != nil && p.Value.Schema.Value != nil {
				r.idSchema = p.Value.Schema.Value
			}
		}
	}
	r.create = jsonBody(list.Post)
	if r.create == nil {
		return r, fmt.Errorf("POST takes no application/json body")
	}
	if _, err := generate(r.create, "probe"); err != nil {
		return r, fmt.Errorf("no valid create body: %w", err)
	}
	for _, name := range sortedProps(r.create) {
		if s := r.create.Properties[name].Value; s != nil && s.Format == "email" {
			r.emails = append(r.emails, name)
		}
	}
	patch := jsonBody(one.Patch)
	if patch == nil {
		return r, fmt.Errorf("PATCH takes no application/json body")
	}
	// Overwrite a plain string field (its name, preferably): a foreign PATCH
	// that went through would show as that value in B's row.
	candidates := sortedProps(patch)
	slices.SortStableFunc(candidates, func(a, b string) int {
		return boolRank(a != "name") - boolRank(b != "name")
	})
	for _, name := range candidates {
		s := patch.Properties[name].Value
		if s == nil || s.Type == nil || !s.Type.Is("string") || s.Format != "" || len(s.Enum) > 0 {
			continue
		}
		if v, err := generate(s, "hijacked"); err == nil {
			r.patchField, r.patchValue = name, v.(string)
			break
		}
	}
	if r.patchField == "" {
		return r, fmt.Errorf("PATCH has no plain string field to overwrite")
	}
	if list.Get != nil {
		for _, p := range list.Get.Parameters {
			if p.Value == nil || p.Value.In != "query" {
				continue
			}
			switch n := p.Value.Name; {
			case strings.Contains(n, "cursor"):
				r.cursorParam = n
			case n == "limit" || n == "page_size" || n == "per_page":
				r.limitParam = n
			}
		}
		if ok := list.Get.Responses.Status(200); ok != nil && ok.Value != nil {
			if mt := ok.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil && mt.Schema.Value != nil {
				for _, name := range sortedProps(mt.Schema.Value) {
					s := mt.Schema.Value.Properties[name].Value
					switch {
					case s == nil || s.Type == nil:
					case s.Type.Includes("array") && r.itemsField == "":
						r.itemsField = name
					case s.Type.Includes("string") && strings.Contains(name, "cursor"):
						r.nextCursorField = name
					}
				}
			}
		}
	}
	if r.itemsField == "" {
		return r, fmt.Errorf("its list answers no array of items")
	}
	return r, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jsonBody(op *openapi3.Operation) *openapi3.Schema {
	if op == nil || op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil
	}
	mt := op.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return nil
	}
	return mt.Schema.Value
}

func sortedProps(s *openapi3.Schema) []string {
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// generate makes a value the schema accepts: an object of its required
// properties, strings within minLength/maxLength and pattern and of their
// format (email, uuid, date-time, date, uri), the first enum value or the
// const, numbers within minimum/maximum, arrays of minItems. tag makes
// strings distinct between calls (unique constraints).
func generate(s *openapi3.Schema, tag string) (any, error) {
	switch {
	case s.Const != nil:
		return s.Const, nil
	case len(s.Enum) > 0:
		return s.Enum[0], nil
	case len(s.AllOf) > 0:
		merged := map[string]any{}
		for _, sub := range s.AllOf {
			v, err := generate(sub.Value, tag)
			if err != nil {
				return nil, err
			}
			m, ok := v.(map[string]any)
			if !ok {
				return v, nil
			}
			for k, x := range m {
				merged[k] = x
			}
		}
		return merged, nil
	case len(s.OneOf) > 0 || len(s.AnyOf) > 0:
		alts := append(slices.Clone(s.OneOf), s.AnyOf...)
		var last error
		for _, alt := range alts {
			if alt.Value != nil && alt.Value.Type != nil && alt.Value.Type.Is("null") {
				continue
			}
			v, err := generate(alt.Value, tag)
			if err == nil {
				return v, nil
			}
			last = err
		}
		return nil, fmt.Errorf("no alternative can be made: %v", last)
	}
	typ := ""
	if s.Type != nil {
		for _, t := range s.Type.Slice() {
			if t != "null" {
				typ = t
				break
			}
		}
	}
	if typ == "" && len(s.Properties) > 0 {
		typ = "object"
	}
	switch typ {
	case "object":
		obj := map[string]any{}
		for _, name := range s.Required {
			p, ok := s.Properties[name]
			if !ok || p.Value == nil {
				return nil, fmt.Errorf("required field %q has no schema", name)
			}
			v, err := generate(p.Value, tag)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", name, err)
			}
			obj[name] = v
		}
		return obj, nil
	case "array":
		arr := []any{}
		for range s.MinItems {
			if s.Items == nil || s.Items.Value == nil {
				return nil, fmt.Errorf("an array of minItems %d without items", s.MinItems)
			}
			v, err := generate(s.Items.Value, fmt.Sprintf("%s-%d", tag, len(arr)))
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	case "integer", "number":
		v := 1.0
		if s.Min != nil && v < *s.Min {
			v = *s.Min
		}
		if s.Max != nil && v > *s.Max {
			v = *s.Max
		}
		if typ == "integer" {
			return int64(v), nil
		}
		return v, nil
	case "boolean":
		return false, nil
	case "string":
		return generateString(s, tag)
	}
	return nil, fmt.Errorf("cannot make a value of type %q", typ)
}

func generateString(s *openapi3.Schema, tag string) (string, error) {
	var cands []string
	switch s.Format {
	case "email":
		cands = []string{"leakcheck-" + tag + "@example.com"}
	case "uuid":
		cands = []string{uuid.NewString()}
	case "date-time":
		cands = []string{"2026-01-02T03:04:05Z"}
	case "date":
		cands = []string{"2026-01-02"}
	case "uri", "url":
		cands = []string{"https://example.com/" + tag}
	default:
		cands = []string{"leakcheck " + tag, "leakcheck-" + tag, "leakcheck" + strings.ReplaceAll(tag, "-", ""),
			strings.ReplaceAll(tag, "-", ""), "a", "A", "0"}
	}
	var re *regexp.Regexp
	if s.Pattern != "" {
		var err error
		if re, err = regexp.Compile(s.Pattern); err != nil {
			return "", fmt.Errorf("pattern %q: %w", s.Pattern, err)
		}
	}
	for _, c := range cands {
		for uint64(len([]rune(c))) < s.MinLength {
			c += "x"
		}
		if s.MaxLength != nil && uint64(len([]rune(c))) > *s.MaxLength {
			c = string([]rune(c)[:*s.MaxLength])
			if uint64(len(c)) < s.MinLength {
				continue
			}
		}
		if re == nil || re.MatchString(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("no string of format %q and pattern %q within length %d..%v", s.Format, s.Pattern, s.MinLength, s.MaxLength)
}
