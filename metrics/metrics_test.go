package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// The pool's tracer times each statement and each pipeline from its Start
// to its End (rowfence_db_duration_seconds, by kind), and the context it
// hands pgx still ends with the caller's: pgx watches that context to
// cancel the statement.
func TestTracerTimesStatementsAndPipelines(t *testing.T) {
	m := metrics.New(0)
	tracer := m.Tracer().(interface {
		pgx.QueryTracer
		pgx.BatchTracer
	})
	parent, cancel := context.WithCancel(context.Background())
	for range 3 {
		tracer.TraceQueryEnd(tracer.TraceQueryStart(parent, nil, pgx.TraceQueryStartData{}), nil, pgx.TraceQueryEndData{})
	}
	ctx := tracer.TraceBatchStart(parent, nil, pgx.TraceBatchStartData{})
	time.Sleep(2 * time.Millisecond)
	tracer.TraceBatchEnd(ctx, nil, pgx.TraceBatchEndData{})
	tracer.TraceBatchEnd(parent, nil, pgx.TraceBatchEndData{}) // no start: not observed

	watched, stop := context.WithCancel(ctx)
	defer stop()
	cancel()
	select {
	case <-watched.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a context derived from the tracer's did not end with the caller's")
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	require.Regexp(t, `(?m)^rowfence_db_duration_seconds_count\{kind="statement"\} 3$`, body)
	require.Regexp(t, `(?m)^rowfence_db_duration_seconds_count\{kind="pipeline"\} 1$`, body)
	sum := regexp.MustCompile(`(?m)^rowfence_db_duration_seconds_sum\{kind="pipeline"\} (\S+)$`).FindStringSubmatch(body)
	require.Len(t, sum, 2)
	seconds, err := strconv.ParseFloat(sum[1], 64)
	require.NoError(t, err)
	require.GreaterOrEqual(t, seconds, 0.002, "the pipeline took at least the 2 ms slept")
}
