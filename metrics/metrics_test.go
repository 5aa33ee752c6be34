package metrics_test

import (
	"io"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/buildinfo"
	"github.com/rowfence/rowfence/metrics"
)

// rowfence_build_info names the build in its labels, valued 1 (issue 17,
// item 1), the same facts `rowfence version` prints.
func TestBuildInfoMetric(t *testing.T) {
	rec := httptest.NewRecorder()
	metrics.New(0).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, 200, rec.Code)
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	line := regexp.MustCompile(`(?m)^rowfence_build_info\{.*\} 1$`).FindString(string(body))
	require.NotEmpty(t, line, "rowfence_build_info{…} 1 in\n%s", body)
	b := buildinfo.Get()
	for _, label := range []string{`goversion="` + b.GoVersion + `"`, `revision="` + b.Revision + `"`, `version="` + b.Version + `"`} {
		require.Contains(t, line, label)
	}
}
