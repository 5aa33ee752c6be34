package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// result is one measured run: throughput and latency percentiles.
type result struct {
	label string
	ops   float64 // per second
	p50   time.Duration
	p99   time.Duration

	lat     []time.Duration
	elapsed time.Duration
	rounds  []float64 // ops/s of each round, in order
}

// ratio is the median over rounds of a's throughput over b's: rounds of a and
// b ran next to each other, so each round's ratio compares like with like,
// and the median ignores a round that hit a burst of noise.
func ratio(a, b result) float64 {
	n := min(len(a.rounds), len(b.rounds))
	if n == 0 {
		return a.ops / b.ops
	}
	rs := make([]float64, n)
	for i := range n {
		rs[i] = a.rounds[i] / b.rounds[i]
	}
	sort.Float64s(rs)
	if n%2 == 1 {
		return rs[n/2]
	}
	return (rs[n/2-1] + rs[n/2]) / 2
}

func findPgbench() (string, error) {
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(matches) == 0 {
		return "", errors.New("pgbench not found (Debian: apt-get install -y postgresql)")
	}
	return matches[len(matches)-1], nil
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// largeRuns are runs of a script on the dataset's large tenant: the script
// picks it when large=1.
var largeRuns = map[string]string{"search_large_rls.sql": "search_rls.sql", "search_large_manual.sql": "search_manual.sql"}

// pgbench runs one script for secs seconds with clients connections and
// returns its throughput and its per-transaction latency percentiles.
func pgbench(ctx context.Context, bin, connString, script string, d dataset, clients int, secs int) (result, error) {
	dir, err := os.MkdirTemp("", "rfbench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	file, large := script, 0
	if v, ok := largeRuns[script]; ok {
		file, large = v, 1
	}
	body, err := scripts.ReadFile("sql/" + file)
	if err != nil {
		return result{}, err
	}
	scriptPath := filepath.Join(dir, file)
	if err := os.WriteFile(scriptPath, body, 0o644); err != nil {
		return result{}, err
	}
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", "2", "-T", strconv.Itoa(secs),
		"-D", fmt.Sprintf("tenants=%d", d.tenants), "-D", fmt.Sprintf("per_tenant=%d", d.perTenant),
		"-D", fmt.Sprintf("large=%d", large),
		"-f", scriptPath, "-l", "--log-prefix=" + filepath.Join(dir, "log"), connString}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("pgbench %s: %w\n%s", script, err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return result{}, fmt.Errorf("pgbench %s: no tps in output\n%s", script, out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	lat, err := readPgbenchLogs(dir)
	if err != nil {
		return result{}, err
	}
	p50, p99 := percentiles(lat)
	return result{label: script, ops: tps, p50: p50, p99: p99, lat: lat, elapsed: time.Duration(secs) * time.Second, rounds: []float64{tps}}, nil
}

// readPgbenchLogs reads the per-transaction logs: the third field is the
// latency in microseconds.
func readPgbenchLogs(dir string) ([]time.Duration, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "log.*"))
	var lat []time.Duration
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			us, err := strconv.ParseInt(fields[2], 10, 64)
			if err == nil {
				lat = append(lat, time.Duration(us)*time.Microsecond)
			}
		}
		fh.Close()
	}
	if len(lat) == 0 {
		return nil, errors.New("pgbench wrote no transaction log")
	}
	return lat, nil
}
