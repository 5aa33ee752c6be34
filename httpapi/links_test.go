package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/auth"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/jobs"
)

// Every link the API builds (Location on 201 and 202, an export's download,
// the same in lists and in an Idempotency-Key replay) is a path the client
// can follow as it is, in the request's tenant mode: in path mode it carries
// /t/{tenant}. Each link is followed to prove it.
func TestLinksFollowTheTenantMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []httpapi.TenantMode{httpapi.ModePath, httpapi.ModeHeader} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			b := setupWith(t, func(b *testBundle, c *httpapi.Config) {
				c.TenantMode = mode
				p := b.tdb.PlatformPool(t)
				c.PlatformPool, c.Platform = p, auth.NewPlatform(p, 0)
				_, _, err := auth.IssuePlatformKey(context.Background(), dbsqlc.New(p), "test")
				require.NoError(t, err)
			})
			r, err := jobs.Start(context.Background(), jobs.Config{Pool: jobsPool(t, b), PollEvery: 50 * time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { _ = r.Stop(context.Background()) })

			prefix, tenant := "", "acme"
			if mode == httpapi.ModePath {
				prefix, tenant = "/t/acme", ""
			}
			acme := bearer(b.keys["acme"])
			call := func(method, path, body string, headers ...string) response {
				return b.call(t, method, prefix+path, tenant, body, append(append([]string{}, acme...), headers...)...)
			}
			// follow GETs a link exactly as the API gave it.
			follow := func(name, link string) {
				t.Helper()
				if !strings.HasSuffix(link, "/download") {
					b.call(t, "GET", link, tenant, "", acme...).requireStatus(t, 200)
					return
				}
				req, err := http.NewRequest("GET", b.url+link, nil)
				require.NoError(t, err)
				req.Header.Set("Authorization", acme[1])
				if tenant != "" {
					req.Header.Set(httpapi.TenantHeader, tenant)
				}
				res, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				require.Equal(t, 200, res.StatusCode, "%s %s: %s", name, link, body)
				require.Contains(t, string(body), `"rowfence-tenant-export"`)
			}

			links := map[string]string{}
			p := call("POST", "/v1/products", `{"name":"p","price":1}`).requireStatus(t, 201)
			links["product Location"] = p.header.Get("Location")
			u := call("POST", "/v1/users", `{"name":"u","email":"u@example.com"}`).requireStatus(t, 201)
			links["user Location"] = u.header.Get("Location")
			k := call("POST", "/v1/api-keys", `{"role":"viewer"}`).requireStatus(t, 201)
			links["api key Location"] = k.header.Get("Location")
			replayed := call("POST", "/v1/products", `{"name":"q","price":2}`, "Idempotency-Key", "links-1").requireStatus(t, 201)
			again := call("POST", "/v1/products", `{"name":"q","price":2}`, "Idempotency-Key", "links-1").requireStatus(t, 201)
			require.Equal(t, "true", again.header.Get(httpapi.ReplayedHeader))
			require.Equal(t, replayed.header.Get("Location"), again.header.Get("Location"))
			links["replayed Location"] = again.header.Get("Location")

			e := call("POST", "/v1/exports", "").requireStatus(t, 202)
			links["export Location"] = e.header.Get("Location")
			id := e.body["id"].(string)
			var done response
			require.Eventually(t, func() bool {
				done = call("GET", "/v1/exports/"+id, "")
				return done.status == 200 && done.body["status"] == "done"
			}, 20*time.Second, 50*time.Millisecond)
			links["export download"], _ = done.body["download"].(string)
			list := call("GET", "/v1/exports", "").requireStatus(t, 200)
			links["listed export download"], _ = list.body["items"].([]any)[0].(map[string]any)["download"].(string)

			for name, link := range links {
				require.Regexp(t, "^"+prefix+"/v1/", link, name)
				follow(name, link)
			}
			require.Equal(t, prefix+"/v1/exports/"+id+"/download", links["export download"])
		})
	}
}
