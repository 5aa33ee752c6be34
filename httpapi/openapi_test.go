package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"

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
