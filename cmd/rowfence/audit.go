package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

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
