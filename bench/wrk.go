package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrk is the HTTP load generator when it is installed (Debian: wrk): written
// in C, it leaves more of the 2 cores to the server than a Go client would.
// Each request picks a random (tenant, product) from a table the Lua script
// is given, so every tenant's cache entry and rows are exercised.

func findWrk() string {
	p, _ := exec.LookPath("wrk")
	return p
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: (.*)`)
)

// wrkScript writes a Lua script for kind (list, get, create) over d.
func wrkScript(dir, kind string, d dataset) (string, error) {
	var b strings.Builder
	b.WriteString("local ids = {\n")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		t := 1 + rng.IntN(d.tenants)
		fmt.Fprintf(&b, "{%q,%q,%q},\n", "bench-"+strconv.Itoa(t), productID(t, 1+rng.IntN(d.perTenant)).String(), "Bearer "+benchKey(t))
	}
	b.WriteString("}\nmath.randomseed(os.time())\n")
	switch kind {
	case "list":
		b.WriteString(`request = function()
  local e = ids[math.random(#ids)]
  return wrk.format("GET", "/v1/products", {["X-Tenant-ID"] = e[1], ["Authorization"] = e[3]})
end
`)
	case "get":
		b.WriteString(`request = function()
  local e = ids[math.random(#ids)]
  return wrk.format("GET", "/v1/products/" .. e[2], {["X-Tenant-ID"] = e[1], ["Authorization"] = e[3]})
end
`)
	case "create":
		b.WriteString(`request = function()
  local e = ids[math.random(#ids)]
  return wrk.format("POST", "/v1/products", {["X-Tenant-ID"] = e[1], ["Authorization"] = e[3], ["Content-Type"] = "application/json"},
    '{"name":"bench insert","price":' .. math.random(0, 100000) .. '}')
end
`)
	}
	path := filepath.Join(dir, kind+".lua")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// runWrk loads base with the script and returns throughput and percentiles.
// Any non-2xx answer or socket error fails the run.
func runWrk(ctx context.Context, bin, base, script string, clients, secs int) (result, error) {
	cmd := exec.CommandContext(ctx, bin, "-t", "2", "-c", strconv.Itoa(clients), "-d", strconv.Itoa(secs)+"s",
		"--latency", "-s", script, base)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		return result{}, fmt.Errorf("wrk: %s non-2xx answers\n%s", m[1], out)
	}
	if m := wrkSockErr.FindSubmatch(out); m != nil {
		return result{}, fmt.Errorf("wrk: socket errors: %s\n%s", m[1], out)
	}
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return result{}, fmt.Errorf("wrk: no Requests/sec in output\n%s", out)
	}
	rps, _ := strconv.ParseFloat(string(m[1]), 64)
	r := result{label: filepath.Base(script), ops: rps, elapsed: time.Duration(secs) * time.Second, rounds: []float64{rps}}
	for _, pm := range wrkPct.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(pm[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(pm[3])]
		d := time.Duration(v * float64(unit))
		if string(pm[1]) == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	return r, nil
}
