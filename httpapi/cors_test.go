package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/httpapi"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	t.Run("off by default", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.call(t, "OPTIONS", "/v1/products", "", "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "GET").requireStatus(t, 405)
		require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
		g := b.call(t, "GET", "/v1/products", "acme", "", "Origin", "https://app.example.com").requireStatus(t, 200)
		require.Empty(t, g.header.Get("Access-Control-Allow-Origin"))
	})
	t.Run("configured origins", func(t *testing.T) {
		t.Parallel()
		origins, err := httpapi.ParseCORSOrigins(" https://app.example.com , http://localhost:3000")
		require.NoError(t, err)
		b := setup(t, func(c *httpapi.Config) { c.CORSOrigins = origins })
		pre := b.call(t, "OPTIONS", "/v1/products", "", "", "Origin", "https://APP.example.com", "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization, idempotency-key").requireStatus(t, 204)
		require.Equal(t, "https://APP.example.com", pre.header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, pre.header.Get("Access-Control-Allow-Headers"), "Idempotency-Key")
		require.Contains(t, pre.header.Get("Access-Control-Allow-Methods"), "PATCH")
		require.Contains(t, pre.header.Values("Vary"), "Origin")
		bad := b.call(t, "OPTIONS", "/v1/products", "", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "GET").requireStatus(t, 403)
		require.Empty(t, bad.header.Get("Access-Control-Allow-Origin"))

		g := b.call(t, "GET", "/v1/products", "acme", "", "Origin", "http://localhost:3000").requireStatus(t, 200)
		require.Equal(t, "http://localhost:3000", g.header.Get("Access-Control-Allow-Origin"))
		require.Contains(t, g.header.Get("Access-Control-Expose-Headers"), "ETag")
		e := b.call(t, "GET", "/v1/products", "acme", "", "Origin", "https://evil.example").requireStatus(t, 200)
		require.Empty(t, e.header.Get("Access-Control-Allow-Origin"), "the browser will not hand it to the page")
		// CORS opens nothing: a credential is still required.
		b.call(t, "GET", "/v1/products", "acme", "", "Origin", "http://localhost:3000", "Authorization", "").requireStatus(t, 401)
	})
	for _, bad := range []string{"app.example.com", "https://app.example.com/path", "ftp://x", "https://user@x.example"} {
		_, err := httpapi.ParseCORSOrigins(bad)
		require.Error(t, err, bad)
	}
}
