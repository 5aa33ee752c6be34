package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/httpapi"
	"github.com/rowfence/rowfence/pgtest"
)

// The CLI prints tenants and API keys in the API's shapes (httpapi's
// presenters), which the contract (httpapi/openapi.yaml) describes with
// every field required and no other allowed: each printed object is checked
// against its schema. Before one presenter, `tenant list` left purge_after
// out while null, `key list` had no tenant_id, and `tenant create` showed
// the admin without tenant_id, created_at and updated_at.
func TestCLIPrintsTheAPIShapes(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	conforms := func(schema, out string, list bool) {
		t.Helper()
		s := doc.Components.Schemas[schema]
		require.NotNil(t, s, schema)
		var items []any
		if list {
			require.NoError(t, json.Unmarshal([]byte(out), &items), out)
			require.NotEmpty(t, items, out)
		} else {
			var v any
			require.NoError(t, json.Unmarshal([]byte(out), &v), out)
			items = []any{v}
		}
		for _, v := range items {
			require.NoError(t, s.Value.VisitJSON(v), "%s: %s", schema, out)
		}
	}
	tdb := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": tdb.AdminURL}
	cli := func(args ...string) string {
		t.Helper()
		out, err := runCmd(t, env, args...)
		require.NoError(t, err, "%v", args)
		return out
	}
	conforms("TenantCreated", cli("tenant", "create", "--slug", "acme", "--name", "Acme", "--admin-email", "wile@acme.example"), false)
	conforms("Tenant", cli("tenant", "list"), true)
	conforms("Tenant", cli("tenant", "limits", "--slug", "acme", "--rate", "5"), false)
	conforms("Tenant", cli("tenant", "suspend", "--slug", "acme"), false)
	conforms("Tenant", cli("tenant", "delete", "--slug", "acme", "--grace", "1h"), false)
	conforms("Tenant", cli("tenant", "activate", "--slug", "acme"), false)
	made := cli("key", "create", "--tenant", "acme", "--role", "viewer", "--name", "ci", "--expires", "2100-01-02T03:04:05+02:00")
	conforms("APIKey", made, false)
	var key struct {
		ID        string
		ExpiresAt string `json:"expires_at"`
	}
	require.NoError(t, json.Unmarshal([]byte(made), &key))
	require.Equal(t, "2100-01-02T01:04:05Z", key.ExpiresAt, "times in UTC, as the API writes them")
	conforms("APIKey", cli("key", "list", "--tenant", "acme"), true)
	conforms("APIKey", cli("key", "revoke", "--tenant", "acme", "--id", key.ID), false)
}
