package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/tenancy"
)

// setupTraced serves the API with tracing to an in-memory exporter (tp nil:
// tracing off), the access log as JSON into logs, and 127.0.0.1 as a
// trusted proxy.
func setupTraced(t *testing.T, tp trace.TracerProvider, logs *syncBuf) *testBundle {
	return setup(t, func(c *httpapi.Config) {
		cfg := c.Pool.Config().Copy()
		db.Trace(cfg, tp)
		pool, err := db.Open(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		c.Pool = pool
		c.Resolver = tenancy.NewResolver(pool, time.Minute)
		authn, err := auth.New(auth.Config{Pool: pool, Tenants: c.Resolver})
		require.NoError(t, err)
		c.Auth = authn
		c.TracerProvider = tp
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	})
}

// accessLines are the access log's lines, decoded.
func accessLines(t *testing.T, logs *syncBuf) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

// A traced request makes a server span named after its route, with the
// route and the tenant, and database spans as its children with the tenant
// id; no span carries the credential; the access log names the trace, the
// client address (through the trusted proxy) and the user agent.
func TestTracingSpansAndAccessLog(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	logs := &syncBuf{}
	b := setupTraced(t, tp, logs)

	b.call(t, "GET", "/v1/products", "acme", "", "User-Agent", "rowfence-test/1.0", "X-Forwarded-For", "203.0.113.7").requireStatus(t, 200)

	spans := exp.GetSpans()
	var server *tracetest.SpanStub
	for i := range spans {
		if spans[i].SpanKind == trace.SpanKindServer {
			require.Nil(t, server, "one server span per request")
			server = &spans[i]
		}
	}
	require.NotNil(t, server, "a server span")
	require.Equal(t, "GET /v1/products", server.Name)
	attrs := map[string]string{}
	for _, a := range server.Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	require.Equal(t, "GET /v1/products", attrs["http.route"])
	require.Equal(t, "acme", attrs["rowfence.tenant"])
	require.Equal(t, b.acme.String(), attrs["rowfence.tenant_id"])

	dbChild := false
	for _, s := range spans {
		if s.Parent.SpanID() != server.SpanContext.SpanID() {
			continue
		}
		for _, a := range s.Attributes {
			if a.Key == db.AttrTenantID && a.Value.AsString() == b.acme.String() {
				dbChild = true
			}
		}
	}
	require.True(t, dbChild, "a database span, child of the server span, with the tenant id: %v", spanNames(spans))

	key := b.keys["acme"]
	secretPart := key[len(key)-64:]
	for _, s := range spans {
		require.NotContains(t, s.Name, secretPart)
		for _, a := range append(append([]attributeKV{}, kvs(s.Attributes)...), eventKVs(s)...) {
			require.NotContains(t, a, secretPart, "span %q carries the API key", s.Name)
		}
	}

	lines := accessLines(t, logs)
	require.Len(t, lines, 1)
	l := lines[0]
	require.Equal(t, server.SpanContext.TraceID().String(), l["trace_id"])
	require.Equal(t, server.SpanContext.SpanID().String(), l["span_id"])
	require.Equal(t, "203.0.113.7", l["client"], "the client address behind the trusted proxy")
	require.Equal(t, "rowfence-test/1.0", l["user_agent"])
}

// Tracing off: no spans, no trace ids in the access log (the client address
// and user agent are there all the same), and a caller's traceparent is
// not taken up.
func TestTracingOff(t *testing.T) {
	t.Parallel()
	logs := &syncBuf{}
	b := setupTraced(t, nil, logs)
	b.call(t, "GET", "/v1/products", "acme", "", "User-Agent", "ua/2",
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").requireStatus(t, 200)
	l := accessLines(t, logs)[0]
	require.NotContains(t, l, "trace_id")
	require.NotContains(t, l, "span_id")
	require.Equal(t, "ua/2", l["user_agent"])
	require.Equal(t, "127.0.0.1", l["client"])
}

type attributeKV = string

func kvs(attrs []attribute.KeyValue) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, string(a.Key)+"="+a.Value.String())
	}
	return out
}

func eventKVs(s tracetest.SpanStub) []string {
	var out []string
	for _, e := range s.Events {
		out = append(out, e.Name)
		out = append(out, kvs(e.Attributes)...)
	}
	return out
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
