package httpapi_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/tenancy"
)

// roundTrips counts what the pool sends: a batch (one Sync) or a lone query
// is one network round trip each.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// Authentication stays within the performance budget: once a credential and
// its tenant are cached, an authenticated single-statement request costs one
// database round trip, its own work, for API keys and tokens alike.
func TestAuthenticatedRequestIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	counter := &roundTrips{}
	keys := newJWTKeys(t)
	b := setup(t, func(c *httpapi.Config) {
		cfg := c.Pool.Config().Copy()
		cfg.ConnConfig.Tracer = counter
		cfg.MaxConns = 1 // one connection, so warming up prepares every statement on it
		pool, err := db.Open(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		c.Pool = pool
		c.Resolver = tenancy.NewResolver(pool, time.Minute)
		authn, err := auth.New(auth.Config{Pool: pool, Tenants: c.Resolver, CacheTTL: time.Minute,
			JWT: &auth.JWTConfig{HMACSecret: keys.hmac, Issuer: "i", Audience: "a"}})
		require.NoError(t, err)
		c.Auth = authn
	})
	product := b.call(t, "POST", "/v1/products", "acme", `{"name":"p","price":1}`).requireStatus(t, 201).body["id"].(string)
	token := sign(t, jwt.SigningMethodHS256, keys.hmac, jwt.MapClaims{"iss": "i", "aud": "a", "sub": b.users["acme"].String(),
		"tenant_id": "acme", "exp": time.Now().Add(time.Hour).Unix()})
	requests := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v1/products", "", 200},
		{"GET", "/v1/products/" + product, "", 200},
		{"POST", "/v1/products", `{"name":"q","price":2}`, 201},
		{"PATCH", "/v1/products/" + product, `{"price":3}`, 200},
	}
	for _, cred := range map[string]string{"api key": b.keys["acme"], "jwt": token} {
		for range 2 { // warm: caches filled, statements prepared
			for _, r := range requests {
				b.call(t, r.method, r.path, "acme", r.body, bearer(cred)...).requireStatus(t, r.status)
			}
		}
		for _, r := range requests {
			before := counter.n.Load()
			b.call(t, r.method, r.path, "acme", r.body, bearer(cred)...).requireStatus(t, r.status)
			require.Equal(t, int64(1), counter.n.Load()-before, "%s %s", r.method, r.path)
		}
	}
}
