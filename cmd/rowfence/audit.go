package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/rowfence/rowfence/audit"
	"github.com/rowfence/rowfence/config"
)

type auditCmd struct {
	Format     string   `enum:"text,json" default:"text" help:"Report format: text or json."`
	AcceptRole []string `name:"accept-role" sep:"none" placeholder:"ROLE" help:"A login role that may bypass RLS or become an owner, accepted as an exception (repeatable; never rowfence_app or rowfence_platform)."`
}

func (c *auditCmd) Run(r *runEnv) error {
	return runAudit(r.ctx, *c, r.env, r.stdout)
}

// runAudit runs the isolation audit (sql/audit) against DATABASE_URL: a
// defect that is not an accepted exception is a finding (exit 1); a database
// it cannot reach or read, a failure to run (exit 3).
func runAudit(ctx context.Context, opts auditCmd, env config.Config, stdout io.Writer) error {
	format, accept := opts.Format, opts.AcceptRole
	if len(env.Cells) > 0 {
		return auditCells(ctx, env, format, accept, stdout)
	}
	conn, err := connectAdmin(ctx, env, "the audit reads the catalog of the database to check")
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer conn.Close(context.Background())
	rep, err := audit.Run(ctx, conn, audit.Options{AcceptRoles: accept})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if format == "json" {
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
		return findingError{fmt.Sprintf("audit: %d defect(s) that could let one tenant see or change another's rows", n)}
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

// auditCells audits every cell (CELLS, and DATABASE_URL's), one report each;
// a defect in any is a finding: a tenant is as isolated as its cell.
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
		return findingError{fmt.Sprintf("audit: %d defect(s) across %d cells that could let one tenant see or change another's rows", defects, len(urls))}
	}
	return nil
}
