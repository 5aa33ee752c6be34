package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A run of one level must refresh that level's section and keep the others.
func TestWriteKeepsTheSectionsOfLevelsNotRun(t *testing.T) {
	dir := t.TempDir()
	old := "# Benchmark results\n\nold preamble\n\n## SQL level\n\nsql figures\n\n## HTTP level\n\nold http figures\n\n## Scale\n\nscale figures\n\n" + notes
	if err := os.WriteFile(filepath.Join(dir, "RESULTS.md"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newReport(config{out: dir, only: map[string]bool{"http": true}})
	r.sections = []string{"## HTTP level\n\nnew http figures\n", "## Fair sharing\n\nfair figures\n"}
	if err := r.write(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(raw)
	for _, want := range []string{"sql figures", "scale figures", "new http figures", "fair figures", "_Measured "} {
		if !strings.Contains(got, want) {
			t.Errorf("RESULTS.md lacks %q:\n%s", want, got)
		}
	}
	for _, gone := range []string{"old http figures", "old preamble"} {
		if strings.Contains(got, gone) {
			t.Errorf("RESULTS.md still has %q", gone)
		}
	}
	if sql, http, scale, fair := strings.Index(got, "## SQL level"), strings.Index(got, "## HTTP level"), strings.Index(got, "## Scale"), strings.Index(got, "## Fair sharing"); !(sql < http && http < scale && scale < fair) {
		t.Errorf("sections out of place (SQL at %d, refreshed HTTP at %d, kept Scale at %d, new at %d):\n%s", sql, http, scale, fair, got)
	}
	if n := strings.Count(got, notesTitle); n != 1 {
		t.Errorf("%d notes sections, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "plot.svg")); err == nil {
		t.Error("a run of one level redrew the plot of four")
	}
}
