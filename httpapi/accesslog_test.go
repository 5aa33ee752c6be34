package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/httpapi"
)

// The access log has two encoders: slog's JSON handler through
// Config.Logger, and zerolog into Config.AccessLog (what serve uses with
// LOG_FORMAT=json, for its CPU). For the same requests they write the same
// keys in the same order with the same values; only time and duration_ms
// differ, being measured by each.
func TestAccessLogEncodersAgree(t *testing.T) {
	t.Parallel()
	var cfg httpapi.Config
	b := setupWith(t, func(_ *testBundle, c *httpapi.Config) {
		authn, err := auth.New(auth.Config{Pool: c.Pool, Tenants: c.Resolver})
		require.NoError(t, err)
		c.Auth = authn
		cfg = *c
	})
	// Traced, so that the lines name the trace (each request continues the
	// caller's: the same trace_id on both sides).
	cfg.TracerProvider = sdktrace.NewTracerProvider()
	viaSlog, viaZerolog := &syncBuf{}, &syncBuf{}
	slogCfg := cfg
	slogCfg.Logger = slog.New(slog.NewJSONHandler(viaSlog, nil))
	zeroCfg := cfg
	zeroCfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	zeroCfg.AccessLog = viaZerolog
	handlers := map[*syncBuf]http.Handler{}
	for buf, c := range map[*syncBuf]httpapi.Config{viaSlog: slogCfg, viaZerolog: zeroCfg} {
		h, err := httpapi.NewServer(c)
		require.NoError(t, err)
		handlers[buf] = h
	}

	key := b.keys["acme"]
	forged := key[:len(key)-8] + "00000000"
	requests := []struct {
		method, path, body string
		headers            map[string]string
		status             int
	}{
		{"GET", "/v1/products", "", map[string]string{"X-Request-ID": "trace-42:abc", "User-Agent": "agent \"007\"\u2028"}, 200},
		{"POST", "/v1/products", `{"name":"secret-body-value","price":1}`, map[string]string{"Content-Type": "application/json"}, 201},
		{"GET", "/v1/products", "", map[string]string{"Authorization": "Bearer " + forged}, 401},
		{"GET", "/v1/nothing/%22%E2%80%A8%FF", "", map[string]string{"X-Request-ID": "r-404"}, 404},
		{"GET", "/v1/products/not-a-uuid", "", map[string]string{"X-Request-ID": "r-400", "X-Forwarded-For": "198.51.100.7"}, 400},
	}
	for _, rq := range requests {
		var ids []string
		for _, buf := range []*syncBuf{viaSlog, viaZerolog} {
			r := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
			r.RemoteAddr = "[2001:db8::1]:40000"
			r.Header.Set(httpapi.TenantHeader, "acme")
			r.Header.Set("Authorization", "Bearer "+key)
			r.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			for k, v := range rq.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			handlers[buf].ServeHTTP(w, r)
			require.Equal(t, rq.status, w.Code, "%s %s", rq.method, rq.path)
			ids = append(ids, w.Header().Get(httpapi.RequestIDHeader))
		}
		if rq.headers["X-Request-ID"] == "" { // made up: one each
			viaZerolog.replace(ids[1], ids[0])
		}
	}

	slogLines := strings.Split(strings.TrimSuffix(viaSlog.String(), "\n"), "\n")
	zeroLines := strings.Split(strings.TrimSuffix(viaZerolog.String(), "\n"), "\n")
	require.Len(t, slogLines, len(requests))
	require.Len(t, zeroLines, len(requests))
	for i := range slogLines {
		want, got := decodeLine(t, slogLines[i]), decodeLine(t, zeroLines[i])
		require.Equal(t, want.keys, got.keys, "line %d: the keys and their order\nslog:    %s\nzerolog: %s", i, slogLines[i], zeroLines[i])
		for _, k := range []string{"time", "duration_ms", "span_id"} {
			require.Equal(t, want.values[k] == nil, got.values[k] == nil, k)
			delete(want.values, k)
			delete(got.values, k)
		}
		require.Equal(t, want.values, got.values, "line %d\nslog:    %s\nzerolog: %s", i, slogLines[i], zeroLines[i])
		_, err := time.Parse(time.RFC3339Nano, decodeLine(t, zeroLines[i]).values["time"].(string))
		require.NoError(t, err)
	}
	out := viaZerolog.String()
	for _, want := range []string{`"request_id":"trace-42:abc"`, `"tenant":"acme"`, `"status":404`, `"role":"admin"`,
		`"credential":"api_key"`, `"route":"GET /v1/products"`, `"auth_error":"invalid credential: wrong secret for API key`, `"client":"2001:db8::1"`, `"trace_id":"0af7651916cd43dd8448eb211c80319c"`} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, "secret-body-value", "bodies are never logged")
	require.NotContains(t, out, key[len(key)-64:], "a credential is never logged")
}

type logLine struct {
	keys   []string
	values map[string]any
}

func decodeLine(t *testing.T, line string) logLine {
	t.Helper()
	var l logLine
	require.NoError(t, json.Unmarshal([]byte(line), &l.values), line)
	dec := json.NewDecoder(bytes.NewReader([]byte(line)))
	_, err := dec.Token() // {
	require.NoError(t, err)
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		l.keys = append(l.keys, k.(string))
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v))
	}
	return l
}

func (s *syncBuf) replace(old, new string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := strings.ReplaceAll(s.b.String(), old, new)
	s.b.Reset()
	s.b.WriteString(v)
}
