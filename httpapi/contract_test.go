package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/httpapi"
)

// Every request the tests make and every answer they get is checked against
// openapi.yaml (contract, in call): an answer of a documented route must be
// documented, its status by itself (no default), every header the server
// sent (but those of unlisted) declared for that status, every required one
// present, and its body (closed: a field the contract does not name fails
// here, though clients are told to expect new ones); and a request the
// server accepted (2xx) must be one the contract allows. A 405 on a
// documented path is checked against components.responses.MethodNotAllowed.
// So the code and the contract cannot drift apart unnoticed.

func init() {
	openapi3filter.RegisterBodyDecoder("application/problem+json", openapi3filter.JSONBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/merge-patch+json", openapi3filter.JSONBodyDecoder)
	raw := func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	}
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", raw)
	openapi3filter.RegisterBodyDecoder("application/yaml", raw)
}

// unlisted are the response headers the contract does not declare: they
// frame the message or govern caches and browsers (RFC 9110, 9111; CORS),
// which no client reads as part of the API's answer.
func unlisted(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Content-Type", "Content-Length", "Date", "Connection", "Transfer-Encoding",
		"Cache-Control", "Vary", "X-Content-Type-Options":
		return true
	}
	return strings.HasPrefix(http.CanonicalHeaderKey(name), "Access-Control-")
}

// contract is the checker's view of the document.
type contract struct {
	router routers.Router
	doc    *openapi3.T
}

// contractRouter finds documented routes on the test server's address.
func contractRouter(t *testing.T, base string) *contract {
	t.Helper()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	doc.Servers = openapi3.Servers{{URL: base}}
	closeResponseSchemas(doc)
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return &contract{router: router, doc: doc}
}

// closeResponseSchemas makes every object of every response body refuse
// names it does not list (additionalProperties: false), in this copy of the
// document only: the served contract leaves them open so that clients
// survive an added field, and the tests still see a field the contract
// forgot.
func closeResponseSchemas(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			no := false
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, r := range list {
				walk(r)
			}
		}
	}
	responses := func(rs map[string]*openapi3.ResponseRef) {
		for _, r := range rs {
			if r.Value == nil {
				continue
			}
			for _, mt := range r.Value.Content {
				walk(mt.Schema)
			}
		}
	}
	responses(doc.Components.Responses)
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			responses(op.Responses.Map())
		}
	}
}

// contract checks one exchange; body is the request body that was sent.
func (b *testBundle) contract(t *testing.T, req *http.Request, body string, res *http.Response, raw []byte) {
	t.Helper()
	if b.router == nil {
		return
	}
	check, err := http.NewRequest(req.Method, req.URL.String(), strings.NewReader(body))
	require.NoError(t, err)
	check.Header = req.Header.Clone()
	check.Host = req.Host
	route, params, err := b.router.router.FindRoute(check)
	if errors.Is(err, routers.ErrMethodNotAllowed) {
		if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" && res.StatusCode != http.StatusMethodNotAllowed {
			return // a CORS preflight that cors.go answered: the browser's protocol, not the API
		}
		require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, "%s %s: a method the path does not list", req.Method, req.URL)
		b.router.methodNotAllowed(t, req, res, raw)
		return
	}
	if err != nil {
		return // not a documented route (an unknown path, path mode's /t/…, /metrics)
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		require.NoError(t, openapi3filter.ValidateRequest(ctx, in), "the server accepted a request the contract does not allow: %s %s %s", req.Method, req.URL, body)
	}
	declared := route.Operation.Responses.Status(res.StatusCode)
	require.NotNil(t, declared, "%s %s answered %d, a status the contract does not declare for %s: %s", req.Method, req.URL, res.StatusCode, route.Operation.OperationID, raw)
	headersDeclared(t, req, res, declared.Value)
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Body: io.NopCloser(bytes.NewReader(raw)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	require.NoError(t, openapi3filter.ValidateResponse(ctx, out), "an answer the contract does not describe: %s %s -> %d %s", req.Method, req.URL, res.StatusCode, raw)
}

// headersDeclared: every header of res but the unlisted ones is declared
// for its status, and every header declared required is there. (The values
// are the schemas' to check: openapi3filter.ValidateResponse.)
func headersDeclared(t *testing.T, req *http.Request, res *http.Response, declared *openapi3.Response) {
	t.Helper()
	names := map[string]*openapi3.HeaderRef{}
	for name, h := range declared.Headers {
		names[http.CanonicalHeaderKey(name)] = h
	}
	for name := range res.Header {
		if !unlisted(name) {
			require.Contains(t, names, http.CanonicalHeaderKey(name), "%s %s -> %d sent %s, a header the contract does not declare for this answer", req.Method, req.URL, res.StatusCode, name)
		}
	}
	for name, h := range names {
		if h.Value != nil && h.Value.Required {
			require.NotEmpty(t, res.Header.Values(name), "%s %s -> %d: the contract's required header %s is missing", req.Method, req.URL, res.StatusCode, name)
		}
	}
}

// methodNotAllowed checks a 405 against components.responses.MethodNotAllowed.
func (c *contract) methodNotAllowed(t *testing.T, req *http.Request, res *http.Response, raw []byte) {
	t.Helper()
	ref := c.doc.Components.Responses["MethodNotAllowed"]
	require.NotNil(t, ref, "the contract declares no MethodNotAllowed response")
	headersDeclared(t, req, res, ref.Value)
	mt := ref.Value.Content.Get(res.Header.Get("Content-Type"))
	require.NotNil(t, mt, "405 of type %s", res.Header.Get("Content-Type"))
	var v any
	require.NoError(t, json.Unmarshal(raw, &v))
	require.NoError(t, mt.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()), "405: %s", raw)
}
