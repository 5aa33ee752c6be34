package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

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
	if len(env.Cells) > 0 {
		return auditCells(ctx, env, *format, accept, stdout)
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

// auditCells audits every cell (CELLS, and DATABASE_URL's), one report each,
// and fails when any has a defect: a tenant is as isolated as its cell.
func auditCells(ctx context.Context, env config.Config, format string, accept []string, stdout io.Writer) error {
	urls, err := cellURLs(env, "the audit reads the catalog of each cell's database")
	if err != nil {
		return err
	}
	type cellReport struct {
		Cell string `json:"cell"`
		audit.Report
		Defects int `json:"defects"`
	}
	var reports []cellReport
	defects := 0
	for _, u := range urls {
		conn, err := pgx.Connect(ctx, u.URL)
		if err != nil {
			return fmt.Errorf("audit: cell %s: %w", u.Name, err)
		}
		rep, err := audit.Run(ctx, conn, audit.Options{AcceptRoles: accept})
		database := conn.Config().Database
		conn.Close(context.Background())
		if err != nil {
			return fmt.Errorf("audit: cell %s: %w", u.Name, err)
		}
		defects += rep.Defects()
		reports = append(reports, cellReport{u.Name, rep, rep.Defects()})
		if format == "text" {
			fmt.Fprintf(stdout, "== cell %s\n", u.Name)
			printAudit(stdout, database, rep)
			fmt.Fprintln(stdout)
		}
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			return err
		}
	}
	if defects > 0 {
		return fmt.Errorf("audit: %d defect(s) across %d cells that could let one tenant see or change another's rows", defects, len(urls))
	}
	return nil
}
