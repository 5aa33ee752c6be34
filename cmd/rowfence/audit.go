package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/rowfence/rowfence/audit"
	"github.com/rowfence/rowfence/config"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runAudit runs the isolation audit (sql/audit) against DATABASE_URL and
// fails when it finds a defect that is not an accepted exception.
func runAudit(ctx context.Context, args []string, env config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "text", "text or json")
	var accept stringList
	fs.Var(&accept, "accept-role", "a login role that may bypass RLS or become an owner, accepted as an exception (repeatable; never rowfence_app or rowfence_platform)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return usageError{fmt.Sprintf("audit: --format must be text or json, not %q", *format)}
	}
	conn, err := connectAdmin(ctx, env, "the audit reads the catalog of the database to check")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rep, err := audit.Run(ctx, conn, audit.Options{AcceptRoles: accept})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			audit.Report
			Defects int `json:"defects"`
		}{rep, rep.Defects()}); err != nil {
			return err
		}
	} else {
		printAudit(stdout, conn.Config().Database, rep)
	}
	if n := rep.Defects(); n > 0 {
		return fmt.Errorf("audit: %d defect(s) that could let one tenant see or change another's rows", n)
	}
	return nil
}

func printAudit(w io.Writer, database string, rep audit.Report) {
	fmt.Fprintf(w, "rowfence audit of database %q: %d finding(s), %d defect(s)\n\n", database, len(rep.Findings), rep.Defects())
	for _, f := range rep.Findings {
		verdict := "DEFECT  "
		if f.Accepted {
			verdict = "accepted"
		}
		fmt.Fprintf(w, "%s  %-26s %s\n          %s\n", verdict, f.Check, f.Object, f.Detail)
		if f.Accepted {
			fmt.Fprintf(w, "          why accepted: %s\n", f.Reason)
		}
	}
	fmt.Fprintf(w, "\npolicies (%d):\n", len(rep.Policies))
	for _, p := range rep.Policies {
		fmt.Fprintf(w, "  %s %s: %s %s to %s\n    USING %s\n    WITH CHECK %s\n", p.Table, p.Name, p.Kind, p.Command, p.Roles, p.Using, orNone(p.WithCheck))
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none: USING applies)"
	}
	return s
}
