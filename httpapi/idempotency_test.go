package httpapi_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/httpapi"
)

func countProducts(t *testing.T, b *testBundle, name string) int {
	t.Helper()
	var n int
	require.NoError(t, b.admin.QueryRow(context.Background(), "select count(*) from products where name = $1", name).Scan(&n))
	return n
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	key := []string{httpapi.IdempotencyKeyHeader, "order-42"}
	first := b.call(t, "POST", "/v1/products", "acme", `{"name":"once","price":1}`, key...).requireStatus(t, 201)
	require.Empty(t, first.header.Get(httpapi.ReplayedHeader))
	again := b.call(t, "POST", "/v1/products", "acme", `{"name":"once","price":1}`, key...).requireStatus(t, 201)
	require.Equal(t, "true", again.header.Get(httpapi.ReplayedHeader))
	require.Equal(t, first.body, again.body, "the first answer, replayed")
	require.Equal(t, first.header.Get("Location"), again.header.Get("Location"))
	require.Equal(t, 1, countProducts(t, b, "once"), "no second write")

	// The same key for another request is refused, and writes nothing.
	other := b.call(t, "POST", "/v1/products", "acme", `{"name":"twice","price":1}`, key...).requireStatus(t, 422)
	require.Equal(t, "idempotency-key-reused", other.problemType(t))
	b.call(t, "POST", "/v1/users", "acme", `{"name":"x","email":"x@example.com"}`, key...).requireStatus(t, 422)
	require.Zero(t, countProducts(t, b, "twice"))

	// Keys are per tenant.
	g := b.call(t, "POST", "/v1/products", "globex", `{"name":"once","price":1}`, key...).requireStatus(t, 201)
	require.Empty(t, g.header.Get(httpapi.ReplayedHeader))
	require.NotEqual(t, first.body["id"], g.body["id"])

	// A failure is not stored: the corrected request goes through.
	k2 := []string{httpapi.IdempotencyKeyHeader, "order-43"}
	b.call(t, "POST", "/v1/products", "acme", `{"name":"","price":1}`, k2...).requireStatus(t, 422)
	b.call(t, "POST", "/v1/products", "acme", `{"name":"fixed","price":1}`, k2...).requireStatus(t, 201)

	// Keys expire after 24 hours.
	_, err := b.admin.Exec(ctx, "update idempotency_keys set expires_at = now() - interval '1 second' where key = 'order-42'")
	require.NoError(t, err)
	b.call(t, "POST", "/v1/products", "acme", `{"name":"after expiry","price":1}`, key...).requireStatus(t, 201)

	for _, bad := range []string{strings.Repeat("k", 256), "has space", "ünï"} {
		r := b.call(t, "POST", "/v1/products", "acme", `{"name":"x","price":1}`, httpapi.IdempotencyKeyHeader, bad).requireStatus(t, 400)
		require.Equal(t, "idempotency-key-malformed", r.problemType(t))
	}
	b.call(t, "POST", "/v1/products", "acme", `{"name":"x","price":1}`, httpapi.IdempotencyKeyHeader, "a", httpapi.IdempotencyKeyHeader, "b").requireStatus(t, 400)
	// Every POST takes one: keys and exports too.
	// An API key's secret is never stored: the replay says which key was
	// made, without the secret, and the database holds no secret either.
	k3 := []string{httpapi.IdempotencyKeyHeader, "key-1"}
	k := b.call(t, "POST", "/v1/api-keys", "acme", `{"role":"viewer"}`, k3...).requireStatus(t, 201)
	secret := k.body["key"].(string)
	kr := b.call(t, "POST", "/v1/api-keys", "acme", `{"role":"viewer"}`, k3...).requireStatus(t, 201)
	require.Equal(t, "true", kr.header.Get(httpapi.ReplayedHeader))
	require.Equal(t, k.body["id"], kr.body["id"])
	require.NotContains(t, kr.body, "key")
	var stored int
	require.NoError(t, b.admin.QueryRow(ctx, "select count(*) from idempotency_keys where position($1::bytea in response_body) > 0", []byte(secret[len(secret)-64:])).Scan(&stored))
	require.Zero(t, stored, "no secret in the stored answers")

	// Another user of the tenant reusing a key never gets this caller's answer.
	otherKey, _, _ := b.newKey(t, "acme", "member", "member")
	b.call(t, "POST", "/v1/products", "acme", `{"name":"fixed","price":1}`, append(bearer(otherKey), k2...)...).requireStatus(t, 422)
}

// Concurrent retries with one key: one write, one answer for all; also for
// a user, whose unique email would otherwise make the late retries a 409.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range []struct{ path, body string }{
		{"/v1/products", `{"name":"racing","price":1}`},
		{"/v1/users", `{"name":"racer","email":"racer@example.com"}`},
	} {
		var wg sync.WaitGroup
		ids := make(chan any, 8)
		for range 8 {
			wg.Go(func() {
				r := b.call(t, "POST", c.path, "acme", c.body, httpapi.IdempotencyKeyHeader, "race"+c.path)
				if r.status == 201 {
					ids <- r.body["id"]
				} else {
					ids <- fmt.Sprint(r.status, string(r.raw))
				}
			})
		}
		wg.Wait()
		close(ids)
		var first any
		for id := range ids {
			if first == nil {
				first = id
			}
			require.Equal(t, first, id, c.path)
		}
	}
	require.Equal(t, 1, countProducts(t, b, "racing"))
}

// The client's connection drops after it sent the request: it cannot know
// whether the product was created, so it retries with the same key, and
// there is exactly one product whatever happened.
func TestIdempotencyKeyAcrossADroppedConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, err := url.Parse(b.url)
	require.NoError(t, err)
	body := `{"name":"dropped","price":1}`
	for attempt := range 3 {
		conn, err := net.Dial("tcp", u.Host)
		require.NoError(t, err)
		_, err = fmt.Fprintf(conn, "POST /v1/products HTTP/1.1\r\nHost: %s\r\nX-Tenant-ID: acme\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nIdempotency-Key: dropped-1\r\nContent-Length: %d\r\n\r\n%s", u.Host, b.keys["acme"], len(body), body)
		require.NoError(t, err)
		if attempt > 0 {
			time.Sleep(50 * time.Millisecond) // give the server time to commit, on some attempts
		}
		conn.Close() // gone before the answer
	}
	r := b.call(t, "POST", "/v1/products", "acme", body, httpapi.IdempotencyKeyHeader, "dropped-1").requireStatus(t, 201)
	require.Eventually(t, func() bool { return countProducts(t, b, "dropped") == 1 }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 1, countProducts(t, b, "dropped"), "exactly one row")
	again := b.call(t, "POST", "/v1/products", "acme", body, httpapi.IdempotencyKeyHeader, "dropped-1").requireStatus(t, 201)
	require.Equal(t, r.body["id"], again.body["id"])
}
