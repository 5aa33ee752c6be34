package httpapi_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/metrics"
)

// Every path that takes a credential reads the Authorization header the same
// way (auth.BearerCredential): one field, the Bearer scheme in any case. Two
// fields are refused everywhere with error="invalid_request" (RFC 6750 §3.1;
// Authorization is no list, RFC 9110 §5.3), even when both carry the right
// credential: /metrics used the first and the platform routes answered a
// plain 401 before.
func TestAuthorizationIsReadOneWayEverywhere(t *testing.T) {
	t.Parallel()
	token := strings.Repeat("m", 20)
	b, platformKey := setupPlatform(t)
	mb := setup(t, func(c *httpapi.Config) { c.MetricsToken, c.Metrics = token, metrics.New(0) })
	for _, c := range []struct {
		b                         *testBundle
		path, tenant, cred, realm string
	}{
		{b, "/v1/products", "acme", b.keys["acme"], `realm="rowfence"`},
		{b, "/v1/admin/tenants", "", platformKey, `realm="rowfence"`},
		{mb, "/metrics", "", token, `realm="rowfence-metrics"`},
	} {
		c.b.call(t, "GET", c.path, c.tenant, "", bearer(c.cred)...).requireStatus(t, 200)
		c.b.call(t, "GET", c.path, c.tenant, "", "Authorization", "bEaReR "+c.cred).requireStatus(t, 200)
		two := c.b.call(t, "GET", c.path, c.tenant, "", "Authorization", "Bearer "+c.cred, "Authorization", "Bearer "+c.cred).requireStatus(t, 401)
		require.Equal(t, "Bearer "+c.realm+`, error="invalid_request"`, two.header.Get("WWW-Authenticate"), c.path)
		require.Equal(t, "unauthorized", two.problemType(t), c.path)
		for _, h := range []string{"", "Basic " + c.cred, "Bearer", "Bearer ", c.cred} {
			r := c.b.call(t, "GET", c.path, c.tenant, "", "Authorization", h).requireStatus(t, 401)
			require.Equal(t, "Bearer "+c.realm, r.header.Get("WWW-Authenticate"), "%s %q", c.path, h)
		}
	}
}
