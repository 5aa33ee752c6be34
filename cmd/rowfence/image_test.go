package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/pgtest"
)

// runtimeStage is a container file's last stage: its instructions from the
// last FROM on, comments and blank lines dropped.
func runtimeStage(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var stage []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stage = nil
		}
		stage = append(stage, line)
	}
	return stage
}

// Dockerfile (built where the golang image can be pulled) and
// Containerfile.local (make image, offline) ship the same runtime: scratch,
// the binary and root certificates at the same paths, the same non-root
// user, entry point and command. Only where the files come from differs.
func TestImageFilesAgree(t *testing.T) {
	t.Parallel()
	root, _ := moduleRoot(t)
	full := runtimeStage(t, filepath.Join(root, "Dockerfile"))
	local := runtimeStage(t, filepath.Join(root, "Containerfile.local"))
	fromBuild := regexp.MustCompile(`^COPY --from=build \S+ `)
	for i := range full {
		full[i] = fromBuild.ReplaceAllString(full[i], "COPY <built> ")
	}
	for i := range local {
		local[i] = regexp.MustCompile(`^COPY \S+ `).ReplaceAllString(local[i], "COPY <built> ")
	}
	require.Equal(t, full, local)
	require.Equal(t, "FROM scratch", full[0])
	require.Contains(t, full, "USER 65532:65532", "not root")
	require.Contains(t, full, `ENTRYPOINT ["/rowfence"]`)
	require.Contains(t, full, `CMD ["serve"]`)
	require.Contains(t, full, "COPY <built> /etc/ssl/certs/ca-certificates.crt")

	// The build stage builds the serving binary: static, default tags (no
	// `rowfence dev`, no demo seed), as make image does.
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	require.Contains(t, string(dockerfile), "RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/rowfence ./cmd/rowfence\n")
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	require.Contains(t, string(makefile), "CGO_ENABLED=0 $(GO) build -buildvcs=$(BUILDVCS) -trimpath -ldflags='-s -w' -o $(IMAGE_CONTEXT)/rowfence ./cmd/rowfence\n")
}

// containerEngine is podman or docker, whichever answers; the test skips
// when neither is installed or answers (docker without its daemon).
func containerEngine(t *testing.T) string {
	t.Helper()
	names := []string{"podman", "docker"}
	if e := os.Getenv("CONTAINER_ENGINE"); e != "" {
		names = []string{e}
	}
	var why []string
	for _, name := range names {
		path, err := exec.LookPath(name)
		if err != nil {
			why = append(why, name+" is not installed")
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, path, "info").CombinedOutput()
		cancel()
		if err != nil {
			why = append(why, fmt.Sprintf("%s does not answer (%v): %s", name, err, lastLine(out)))
			continue
		}
		return path
	}
	t.Skipf("no container engine to build the image with (install one: apt-get install -y podman): %s", strings.Join(why, "; "))
	return ""
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// engineCmd runs the engine and returns its combined output and exit code
// (-1: it did not exit).
func engineCmd(t *testing.T, engine string, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, engine, args...).CombinedOutput()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		return string(out) + err.Error(), -1
	}
	return string(out), 0
}

// The image make image builds (issue 17, item 1): built wherever a
// container engine answers, offline (FROM scratch); started, `version` and
// a /healthz probe, wherever the engine can start a container.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary and an image")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	engine := containerEngine(t)
	root, _ := moduleRoot(t)
	tag := fmt.Sprintf("localhost/rowfence-test:%d", time.Now().UnixNano())
	build := exec.Command("make", "image", "IMAGE="+tag, "IMAGE_CONTEXT="+t.TempDir(), "CONTAINER_ENGINE="+engine)
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "make image\n%s", out)
	t.Cleanup(func() { engineCmd(t, engine, time.Minute, "rmi", "--force", tag) })

	inspect, code := engineCmd(t, engine, time.Minute, "image", "inspect", "--format",
		"{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Size}}", tag)
	require.Zero(t, code, inspect)
	var user, entrypoint, cmd string
	var size int64
	_, err = fmt.Sscan(inspect, &user, &entrypoint, &cmd, &size)
	require.NoError(t, err, inspect)
	require.Equal(t, "65532:65532", user)
	require.Equal(t, `["/rowfence"]`, entrypoint)
	require.Equal(t, `["serve"]`, cmd)
	require.Less(t, size, int64(40<<20), "a small image: the binary and the root certificates")

	// Started. An engine that cannot start containers at all (here: crun
	// may not set RLIMIT_NOFILE in this sandbox) fails before our process
	// runs, with its own error (125 or 126; 127 when the program cannot be
	// found) that does not name /rowfence; a broken image (a missing or
	// dynamically linked binary) is an error naming it, and fails the test.
	ver, code := engineCmd(t, engine, 2*time.Minute, "run", "--rm", tag, "version")
	if (code == 125 || code == 126 || code == 127) && !strings.Contains(ver, "/rowfence") {
		t.Skipf("built; but %s cannot start a container here, so the image was not run: %s", filepath.Base(engine), lastLine([]byte(ver)))
	}
	require.Zero(t, code, ver)
	require.Regexp(t, `(?m)^rowfence \S+$`, ver)
	require.Contains(t, ver, "\ngo: go")

	// Serving: the container reaches the test's PostgreSQL through a TCP
	// proxy on the host's loopback (--network=host); /healthz answers.
	tdb := pgtest.New(t)
	proxy := startPGProxy(t, tdb.AppURL)
	addr := freeAddr(t)
	name := strings.ReplaceAll(strings.TrimPrefix(tag, "localhost/"), ":", "-")
	run, code := engineCmd(t, engine, 2*time.Minute, "run", "--detach", "--rm", "--name", name, "--network=host",
		"-e", "APP_DATABASE_URL="+proxy.url(t, tdb.AppURL, ""), "-e", "ADDR="+addr, tag)
	require.Zero(t, code, run)
	t.Cleanup(func() { engineCmd(t, engine, time.Minute, "rm", "--force", name) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			require.Equal(t, 200, res.StatusCode)
			require.True(t, bytes.Contains(body, []byte(`"ok"`)), "%s", body)
			break
		}
		if time.Now().After(deadline) {
			logs, _ := engineCmd(t, engine, time.Minute, "logs", name)
			t.Fatalf("the container did not answer /healthz: %v\n%s", err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
