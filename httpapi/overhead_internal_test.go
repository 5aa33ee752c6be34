package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db/dbtype"
)

// nextQuery writes a plain list's next-page query without parsing the
// request's again; it must be exactly what url.Values.Encode writes for the
// request's query with cursor and limit replaced, for every query a list
// accepts.
func TestNextQueryIsTheEncodedQuery(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "limit=5", "cursor=abc&limit=7", "limit=100&cursor=x%2By", "cursor=z",
		"sort=name", "q=ab&sort=-price", "limit=3&q=a%20b", "updated_since=2026-01-02T03:04:05Z&limit=9"} {
		lq, detail := parseListQuery(raw, productSorts, false, true)
		require.Empty(t, detail, raw)
		l := listRequest{listQuery: lq, custom: lq.sort != "" || lq.q != "" || lq.email != ""}
		for _, next := range []string{"AQAAAAAAAAAA_-", "a+b/c=&d"} {
			want, err := url.ParseQuery(raw)
			require.NoError(t, err)
			want.Set("cursor", next)
			want.Set("limit", strconv.Itoa(l.limit))
			require.Equal(t, want.Encode(), nextQuery(raw, l, next), "%q, next %q", raw, next)
		}
	}
}

// A pooled HMAC (newCursorCodec) signs exactly as a new one does, however
// often it is reused, and each verifies the other's cursors.
func TestPooledCursorMACIsTheNewOne(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	pooled, fresh := newCursorCodec(key), cursorCodec{key: key}
	tenant := uuid.New()
	for i := range 50 {
		p := position{CreatedAt: time.UnixMicro(int64(i) * 1e9).UTC(), ID: uuid.New(), Key: strings.Repeat("k", i%3)}
		c := pooled.encode(tenant, "products", p)
		require.Equal(t, fresh.encode(tenant, "products", p), c)
		got, err := fresh.decode(tenant, "products", c)
		require.NoError(t, err)
		require.Equal(t, p, got)
		_, err = pooled.decode(tenant, "users", c)
		require.ErrorIs(t, err, errBadCursor)
	}
}

// The access log's own cost per request, around a handler that only names
// its tenant and principal: through slog's JSON handler (Config.Logger) and
// through zerolog (Config.AccessLog, what serve uses with LOG_FORMAT=json).
func BenchmarkAccessLog(b *testing.B) {
	p := &auth.Principal{TenantID: uuid.New(), UserID: uuid.New(), KeyID: uuid.New(), Kind: auth.KindAPIKey, Role: dbtype.RoleAdmin}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := infoFrom(r)
		info.tenant, info.principal, info.authenticated = "bench-1", *p, true
		w.WriteHeader(http.StatusOK)
	})
	zl := zerolog.New(io.Discard)
	for _, side := range []struct {
		name string
		s    *server
	}{
		{"slog", &server{log: slog.New(slog.NewJSONHandler(io.Discard, nil))}},
		{"zerolog", &server{log: slog.New(slog.NewJSONHandler(io.Discard, nil)), accessLine: &zl}},
	} {
		b.Run(side.name, func(b *testing.B) {
			h := side.s.accessLog(inner)
			r := httptest.NewRequest("GET", "/v1/products/0b7c7d4e-6c39-4a47-9d0c-5a4a0d1e8f00", nil)
			r.Header.Set("User-Agent", "wrk")
			r.Pattern = "GET /v1/products/{id}"
			w := &discard{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.header)
				h.ServeHTTP(w, r)
			}
		})
	}
}

type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }

// etagOf writes the tag on the stack; it must be the quoted unpadded
// base64url of the first 18 bytes of the body's SHA-256, as ever (clients
// hold ETags across deploys).
func TestETagIsTheQuotedHashPrefix(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "{}", `{"id":"x","name":"ü"}`, strings.Repeat("a", 5000)} {
		sum := sha256.Sum256([]byte(body))
		require.Equal(t, `"`+base64.RawURLEncoding.EncodeToString(sum[:18])+`"`, etagOf([]byte(body)), body)
	}
}
