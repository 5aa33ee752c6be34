package audit

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/pgtest"
)

// Checks 13 and 14: what a serving role can do beyond its own transaction
// (leak vector 12). Each case plants one kind in its own database (role
// settings IN DATABASE, pg_catalog's and the database's ACLs are all per
// database, so the cases run beside the other tests) and must be reported as
// a defect; the migrated schema reports none (TestMigratedSchemaPasses).
func TestReachBeyondTheTransactionIsReported(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, plant string
		want        []string // check and object of each finding
	}{
		{"the app role's session defaults in this database",
			"alter role rowfence_app in database {db} set default_transaction_read_only = on",
			[]string{"role-session-defaults rowfence_app"}},
		{"the platform role's session defaults in this database",
			"alter role rowfence_platform in database {db} set statement_timeout = '1ms'",
			[]string{"role-session-defaults rowfence_platform"}},
		{"pg_terminate_backend left to PUBLIC (a migration without a superuser)",
			"grant execute on function pg_terminate_backend(integer, bigint) to public",
			[]string{"serving-role-reach rowfence_app signal-backends", "serving-role-reach rowfence_platform signal-backends"}},
		{"pg_cancel_backend granted to the app role",
			"grant execute on function pg_cancel_backend(integer) to rowfence_app",
			[]string{"serving-role-reach rowfence_app signal-backends"}},
		{"session advisory locks left to PUBLIC",
			"grant execute on function pg_try_advisory_lock_shared(integer, integer) to public",
			[]string{"serving-role-reach rowfence_app session-advisory-locks", "serving-role-reach rowfence_platform session-advisory-locks"}},
		{"TEMPORARY left to PUBLIC",
			"grant temporary on database {db} to public",
			[]string{"serving-role-reach rowfence_app temporary-tables", "serving-role-reach rowfence_platform temporary-tables"}},
		{"large objects left to PUBLIC",
			"grant execute on function lo_from_bytea(oid, bytea) to public",
			[]string{"serving-role-reach rowfence_app large-objects", "serving-role-reach rowfence_platform large-objects"}},
		{"logical decoding messages left to PUBLIC",
			"grant execute on function pg_logical_emit_message(boolean, text, bytea) to public",
			[]string{"serving-role-reach rowfence_app logical-messages", "serving-role-reach rowfence_platform logical-messages"}},
		{"pg_stat_activity left to PUBLIC",
			"grant select on pg_stat_activity to public",
			[]string{"serving-role-reach rowfence_app session-activity", "serving-role-reach rowfence_platform session-activity"}},
		{"CREATE on a schema",
			"grant create on schema public to rowfence_platform",
			[]string{"serving-role-reach rowfence_platform create-objects"}},
		{"CREATE on the database",
			"grant create on database {db} to rowfence_app",
			[]string{"serving-role-reach rowfence_app create-objects"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tdb := pgtest.New(t)
			admin := tdb.AdminPool(t)
			t.Cleanup(func() {
				// Role settings outlive the database; the rest goes with it.
				for _, role := range []string{"rowfence_app", "rowfence_platform"} {
					_, _ = admin.Exec(context.Background(), "alter role "+role+" in database "+pgx.Identifier{tdb.Name}.Sanitize()+" reset all")
				}
			})
			_, err := admin.Exec(ctx, strings.ReplaceAll(c.plant, "{db}", pgx.Identifier{tdb.Name}.Sanitize()))
			require.NoError(t, err)
			rep, err := Run(ctx, admin, Options{})
			require.NoError(t, err)
			var got []string
			for _, f := range defects(rep) {
				got = append(got, f.Check+" "+f.Object)
				require.NotEmpty(t, f.Detail)
			}
			require.ElementsMatch(t, c.want, got)
		})
	}
}
