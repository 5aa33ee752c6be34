package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/rowfence/rowfence/leakcheck"
)

// runLeakcheck attacks a running deployment as tenant A against tenant B and
// exits non-zero on any leak.
func runLeakcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("leakcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg leakcheck.Config
	fs.StringVar(&cfg.URL, "url", "", "base URL of the deployment, e.g. http://localhost:8080 (required)")
	fs.StringVar(&cfg.TenantA, "tenant-a", "", "X-Tenant-ID of the attacking tenant (required)")
	fs.StringVar(&cfg.TenantB, "tenant-b", "", "X-Tenant-ID of the victim tenant (required)")
	fs.StringVar(&cfg.DB, "db", "", "the app role's connection string: also try the SQL vectors")
	format := fs.String("format", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.URL == "" || cfg.TenantA == "" || cfg.TenantB == "" {
		return usageError{"leakcheck: --url, --tenant-a and --tenant-b are required"}
	}
	if *format != "text" && *format != "json" {
		return usageError{fmt.Sprintf("leakcheck: --format must be text or json, not %q", *format)}
	}
	rep, err := leakcheck.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("leakcheck: %w", err)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			leakcheck.Report
			Leaks int `json:"leaks"`
		}{rep, rep.Leaks()}); err != nil {
			return err
		}
	} else {
		for _, r := range rep.Results {
			verdict := "pass"
			if !r.Pass {
				verdict = "LEAK"
			}
			fmt.Fprintf(stdout, "%-4s  %-52s %s\n", verdict, r.Vector, r.Detail)
		}
		fmt.Fprintf(stdout, "\n%d vectors, %d leak(s)\n", len(rep.Results), rep.Leaks())
	}
	if n := rep.Leaks(); n > 0 {
		return fmt.Errorf("leakcheck: %d vector(s) leaked", n)
	}
	return nil
}
