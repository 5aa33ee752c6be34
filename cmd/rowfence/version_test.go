package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// `rowfence version` prints each fact on its line; a test binary records no
// VCS information, so those say "unknown" rather than nothing.
func TestVersionCommand(t *testing.T) {
	t.Parallel()
	out, err := runCmd(t, map[string]string{}, "version")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 5, out)
	require.Regexp(t, `^rowfence \S+$`, lines[0])
	require.Equal(t, "revision: unknown", lines[1])
	require.Equal(t, "time: unknown", lines[2])
	require.Equal(t, "modified: false", lines[3])
	require.Equal(t, "go: "+runtime.Version(), lines[4])

	_, err = runCmd(t, map[string]string{}, "version", "extra")
	require.Equal(t, 2, exitCode(err), "an argument is a usage error")
}

// `make build` stamps the VCS revision into the binary (the Makefile's
// exported -buildvcs=false is for the tests). Go stamps only where .git is
// a directory, so the test builds in a fresh clone of the committed tree:
// a git worktree (a .git file) would record nothing.
func TestMakeBuildStampsTheRevision(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary in a clone")
	}
	for _, tool := range []string{"git", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	t.Parallel()
	root, _ := moduleRoot(t)
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("the module is not in a git repository: %v", err)
	}
	clone := filepath.Join(t.TempDir(), "rowfence")
	out, err := exec.Command("git", "clone", "--quiet", "--shared", root, clone).CombinedOutput()
	require.NoError(t, err, "%s", out)
	cmd := exec.Command("make", "build")
	cmd.Dir = clone
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "make build\n%s", out)
	out, err = exec.Command(filepath.Join(clone, "bin", "rowfence"), "version").Output()
	require.NoError(t, err)
	require.Contains(t, string(out), "revision: "+strings.TrimSpace(string(head))+"\n")
	require.Contains(t, string(out), "modified: false\n")
	require.NotContains(t, string(out), "time: unknown")
	require.NoError(t, os.RemoveAll(clone))
}
