package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/buildinfo"
)

// /readyz names the build it serves (issue 17, item 1): the module version
// from the binary's build information, or "unknown"; never empty.
func TestReadyzNamesTheVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.call(t, "GET", "/readyz", "", "").requireStatus(t, 200)
	require.Equal(t, "ready", r.body["status"])
	require.Equal(t, buildinfo.Get().Version, r.body["version"])
	require.NotEmpty(t, r.body["version"])
}
