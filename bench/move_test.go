package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/rowfence/rowfence/pgserver"
)

// The move level's whole path, cheaply: two clusters, a tenant of 300
// products moved while its writers and another tenant's run, and its COPY
// twin, one round; the section reports both and no writer failed.
func TestMoveLevelMovesASmallTenant(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL clusters")
	}
	t.Parallel()
	ctx := context.Background()
	rep := newReport(config{out: t.TempDir()})
	err := benchMove(ctx, config{rounds: 1, moveRows: "300"}, rep)
	if errors.Is(err, pgserver.ErrNoServer) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.sections) != 1 {
		t.Fatalf("%d sections, want 1", len(rep.sections))
	}
	got := rep.sections[0]
	for _, want := range []string{"## Move: ", "| 300 + 3 | 1 | move |", "| 300 | errors: other tenant's answers not 201, moved tenant's neither 201 nor 503 | 0 | 0 | met |"} {
		if !strings.Contains(got, want) {
			t.Errorf("the section lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "first failure") {
		t.Errorf("a writer failed:\n%s", got)
	}
}

func TestParseSizesRefusesWhatIsNotARowCount(t *testing.T) {
	if got, err := parseSizes("100000, 1000000"); err != nil || len(got) != 2 || got[1] != 1_000_000 {
		t.Errorf("parseSizes: %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "-5", "1e6", "100,"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q) took it", bad)
		}
	}
}

// cpuPerRequest measures both sides in every round, and a side that does
// more work per request costs more CPU per request.
func TestCPUPerRequestTellsTheDearerSide(t *testing.T) {
	cheap := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	dear := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := 0
		for i := range 200_000 {
			x += i ^ (x >> 3)
		}
		if x == -1 {
			w.WriteHeader(500)
		}
		_, _ = w.Write([]byte("ok"))
	})
	req, _ := http.NewRequest("GET", "http://127.0.0.1/", nil)
	reqs := []*http.Request{req}
	a, b, allocs, err := cpuPerRequest(context.Background(), 2, 200*time.Millisecond, cheap, reqs, dear, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 2 || len(b) != 2 {
		t.Fatalf("rounds: %d and %d, want 2", len(a), len(b))
	}
	for i := range a {
		if b[i] <= a[i] {
			t.Errorf("round %d: the dear side took %s a request, the cheap one %s", i+1, b[i], a[i])
		}
	}
	if allocs[0] < 0 || allocs[1] < 0 {
		t.Errorf("allocations per request: %v", allocs)
	}
	failing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	if _, _, _, err := cpuPerRequest(context.Background(), 1, 100*time.Millisecond, cheap, reqs, failing, reqs); err == nil {
		t.Error("a side answering 503 went unnoticed")
	}
}

// A writer's pause is its longest run of 503 answers, from sending the
// first to the answer of the next 201; an answer that is neither 201 nor
// 503 with Retry-After is a failure.
func TestWriterMeasuresTheLongestRunOf503(t *testing.T) {
	t.Parallel()
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch since := time.Since(start); {
		case since > 200*time.Millisecond && since < 500*time.Millisecond:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		case since > 700*time.Millisecond && since < 730*time.Millisecond:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"` + uuid.NewString() + `"}`))
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var st writerStats
	acked := writeProducts(ctx, srv.Client(), srv.URL, "t", "k", &st)
	if st.refused == 0 || st.longestRefused < 250*time.Millisecond || st.longestRefused > 550*time.Millisecond {
		t.Errorf("%d refused, longest run %s: want a run of about 300ms", st.refused, st.longestRefused)
	}
	if st.failed == 0 || !strings.HasPrefix(st.firstFailure, "500") {
		t.Errorf("%d failed (first: %q): the 500 went uncounted", st.failed, st.firstFailure)
	}
	if len(acked) != st.acked || st.acked < 10 {
		t.Errorf("%d acknowledged ids, %d counted", len(acked), st.acked)
	}
	if st.longestGap < 250*time.Millisecond {
		t.Errorf("longest gap between acknowledged writes %s, shorter than the 503 run", st.longestGap)
	}
}
