package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/httpapi"
)

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err, "the document is valid OpenAPI")
	require.True(t, doc.IsOpenAPI31OrLater())
	b := setup(t)
	r := b.call(t, "GET", "/openapi.json", "", "", "Authorization", "").requireStatus(t, 200)
	require.Equal(t, "3.1.0", r.body["openapi"])
	require.Contains(t, r.body["paths"], "/v1/products/{id}")
	b.call(t, "GET", "/openapi.yaml", "", "", "Authorization", "").requireStatus(t, 200)
}

// The contract's enums are the vocabulary of db/vocabulary.go, which
// db.TestVocabularyMatchesTheCatalog holds equal to the CHECK constraints.
func TestOpenAPIEnumsAreTheVocabulary(t *testing.T) {
	t.Parallel()
	doc, err := httpapi.OpenAPI()
	require.NoError(t, err)
	enum := func(schema, property string) []string {
		s := doc.Components.Schemas[schema]
		require.NotNil(t, s, schema)
		v := s.Value
		if property != "" {
			require.NotNil(t, v.Properties[property], "%s.%s", schema, property)
			v = v.Properties[property].Value
		}
		var out []string
		for _, e := range v.Enum {
			out = append(out, e.(string))
		}
		return out
	}
	strs := func(in ...string) []string { return in }
	var roles, tenant, export []string
	for _, r := range db.ClientRoles() {
		roles = append(roles, string(r))
	}
	for _, s := range db.TenantStatuses() {
		tenant = append(tenant, string(s))
	}
	for _, s := range db.ExportStatuses() {
		export = append(export, string(s))
	}
	require.ElementsMatch(t, roles, enum("Role", ""))
	require.ElementsMatch(t, tenant, enum("Tenant", "status"))
	require.ElementsMatch(t, export, enum("Export", "status"))
	// A PATCH sets active or suspended; deleting is DELETE's.
	require.ElementsMatch(t, strs(string(db.TenantStatusActive), string(db.TenantStatusSuspended)), enum("TenantPatch", "status"))
}
