package httpapi_test

import (
	"bytes"
	"context"
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
// documented, body and status included, and a request the server accepted
// (2xx) must be one the contract allows. So the code and the contract cannot
// drift apart unnoticed.

func init() {
	openapi3filter.RegisterBodyDecoder("application/problem+json", openapi3filter.JSONBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/merge-patch+json", openapi3filter.JSONBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
}

// contractRouter finds documented routes on the test server's address.
func contractRouter(t *testing.T, base string) routers.Router {
	t.Helper()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return router
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
	route, params, err := b.router.FindRoute(check)
	if err != nil {
		return // not a documented route (an unknown path, path mode's /t/…, /metrics)
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		require.NoError(t, openapi3filter.ValidateRequest(ctx, in), "the server accepted a request the contract does not allow: %s %s %s", req.Method, req.URL, body)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Body: io.NopCloser(bytes.NewReader(raw)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	require.NoError(t, openapi3filter.ValidateResponse(ctx, out), "an answer the contract does not describe: %s %s -> %d %s", req.Method, req.URL, res.StatusCode, raw)
}
