package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/pgtest"
)

// With OTEL_EXPORTER_OTLP_ENDPOINT set, serve exports its spans over
// OTLP/HTTP (flushed at shutdown at the latest): the request's span named
// after its route, with the tenant; never the API key. The access log
// names the trace.
func TestServeExportsTraces(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var exported [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			mu.Lock()
			exported = append(exported, body)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()

	tdb := pgtest.New(t)
	out, err := runCmd(t, map[string]string{"DATABASE_URL": tdb.AdminURL}, "tenant", "create", "--slug", "acme", "--name", "Acme", "--admin-email", "a@acme.example")
	require.NoError(t, err)
	var created struct {
		APIKey struct{ Key string } `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created))
	key := created.APIKey.Key
	base, logs, stop := startServer(t, map[string]string{"APP_DATABASE_URL": tdb.AppURL,
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL, "OTEL_SERVICE_NAME": "rowfence-under-test"}, "serve")
	status, _ := httpDo(t, "GET", base+"/v1/products", "acme", key, "")
	require.Equal(t, 200, status)
	require.NoError(t, stop())

	mu.Lock()
	all := bytes.Join(exported, nil)
	mu.Unlock()
	require.NotEmpty(t, all, "spans reached the collector")
	require.Contains(t, string(all), "GET /v1/products")
	require.Contains(t, string(all), "rowfence.tenant_id")
	require.Contains(t, string(all), "rowfence-under-test")
	require.NotContains(t, string(all), key[len(key)-64:], "the key is never in a span")
	require.Contains(t, logs.String(), "trace_id=")
	require.Contains(t, logs.String(), "tracing=true")
}
