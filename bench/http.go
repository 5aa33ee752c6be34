package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// server is a `rowfence serve` process under load.
type server struct {
	cmd  *exec.Cmd
	base string
}

// build compiles the main package pkg (an import path) into dir.
func build(ctx context.Context, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// startServe starts `rowfence serve` on appURL.
func startServe(ctx context.Context, bin, appURL string, extraEnv ...string) (*server, error) {
	// The limiter runs (its cost is part of a request) but never refuses:
	// the load is the measurement, not a noisy neighbour.
	env := append([]string{"CURSOR_KEY=" + strings.Repeat("b", 32), "RATE_LIMIT=1000000", "RATE_BURST=1000000", "TENANT_CONCURRENCY=10000"}, extraEnv...)
	return startServer(ctx, bin, []string{"serve"}, appURL, env...)
}

// startServer runs bin with args on a free loopback port (ADDR) and
// APP_DATABASE_URL, logging to a temporary file, until /readyz answers 200.
func startServer(ctx context.Context, bin string, args []string, appURL string, extraEnv ...string) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "APP_DATABASE_URL="+appURL, "ADDR="+addr)
	cmd.Env = append(cmd.Env, extraEnv...)
	logFile, err := os.CreateTemp("", "rfbench-serve-*.log")
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, base: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		res, err := http.Get(s.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	tail, _ := os.ReadFile(logFile.Name())
	return nil, fmt.Errorf("%s did not become ready:\n%s", filepath.Base(bin), tail)
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
}

// rss returns the server's resident set size now and at its peak (KiB).
func (s *server) rss() (now, peak int64) {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	for _, line := range strings.Split(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			now = v
		case "VmHWM:":
			peak = v
		}
	}
	return now, peak
}

func httpClient(workers int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        workers * 2,
			MaxIdleConnsPerHost: workers * 2,
			DisableCompression:  true,
		},
	}
}

// httpOp sends one request and checks its status; the body is read whole.
func httpOp(client *http.Client, want int, build func(rng *rand.Rand) (*http.Request, error)) op {
	return func(ctx context.Context, rng *rand.Rand) error {
		req, err := build(rng)
		if err != nil {
			return err
		}
		res, err := client.Do(req.WithContext(ctx))
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			return fmt.Errorf("%s %s: status %d: %s", req.Method, req.URL.Path, res.StatusCode, body)
		}
		return nil
	}
}

// authenticate makes req a request of bench tenant n with its admin key.
func authenticate(req *http.Request, n int) {
	req.Header.Set("X-Tenant-ID", "bench-"+strconv.Itoa(n))
	req.Header.Set("Authorization", "Bearer "+benchKey(n))
}

func httpOps(base string, client *http.Client, d dataset) map[string]op {
	tenantOf := func(rng *rand.Rand) int { return 1 + rng.IntN(d.tenants) }
	return map[string]op{
		"http list": httpOp(client, 200, func(rng *rand.Rand) (*http.Request, error) {
			req, err := http.NewRequest("GET", base+"/v1/products", nil)
			if err == nil {
				authenticate(req, tenantOf(rng))
			}
			return req, err
		}),
		"http get": httpOp(client, 200, func(rng *rand.Rand) (*http.Request, error) {
			t := tenantOf(rng)
			req, err := http.NewRequest("GET", base+"/v1/products/"+productID(t, 1+rng.IntN(d.perTenant)).String(), nil)
			if err == nil {
				authenticate(req, t)
			}
			return req, err
		}),
		"http create": httpOp(client, 201, func(rng *rand.Rand) (*http.Request, error) {
			body := `{"name":"bench insert","price":` + strconv.Itoa(rng.IntN(100000)) + `}`
			req, err := http.NewRequest("POST", base+"/v1/products", strings.NewReader(body))
			if err == nil {
				authenticate(req, tenantOf(rng))
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		}),
	}
}
