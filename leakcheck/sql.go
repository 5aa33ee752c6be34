package leakcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// sqlVectors speak SQL as the app role, the way a handler bug or a stolen
// app connection could (docs/DESIGN.md, "Known ways RLS leaks").
func (c *checker) sqlVectors() error {
	ctx := c.ctx
	conn, err := pgx.Connect(ctx, c.cfg.DB)
	if err != nil {
		return fmt.Errorf("connect to --db: %w", err)
	}
	defer conn.Close(context.Background())

	var super, bypass bool
	err = conn.QueryRow(ctx, `select rolsuper, rolbypassrls from pg_roles where rolname = current_user`).Scan(&super, &bypass)
	c.record("sql: role cannot bypass RLS", err == nil && !super && !bypass, "superuser %v, bypassrls %v, err %v", super, bypass, err)
	// SET ROLE works for any membership, at any depth, INHERIT or not: a role
	// the connection can become is as good as the connection (leak vector 11).
	var reach string
	err = conn.QueryRow(ctx, `
select coalesce(string_agg(r.rolname, ', ' order by r.rolname), '')
from pg_roles r
where r.rolname <> current_user
  and (pg_has_role(current_user, r.oid, 'MEMBER') or pg_has_role(session_user, r.oid, 'MEMBER'))
  and (r.rolsuper or r.rolbypassrls or r.rolcreaterole
       or r.rolname in ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files')
       or exists (select 1 from pg_class t join pg_attribute a on a.attrelid = t.oid and a.attname = 'tenant_id'
                  where t.relowner = r.oid and t.relkind in ('r', 'p')))`).Scan(&reach)
	c.record("sql: role cannot become a role that bypasses RLS or owns a tenant table", err == nil && reach == "", "can become: %q, err %v", reach, err)

	count := func(q string) (int, error) {
		var n int
		err := conn.QueryRow(ctx, q).Scan(&n)
		return n, err
	}
	inTenant := func(tenant string, fn func(tx pgx.Tx) error) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "select set_config('app.tenant_id', $1, true), set_config('app.role', 'admin', true)", tenant); err != nil {
				return err
			}
			return fn(tx)
		})
	}
	if c.tenantA == uuid.Nil || c.tenantB == uuid.Nil {
		c.record("sql: tenant ids", false, "the API's rows carry no tenant_id, so the SQL vectors cannot name the tenants")
		return nil
	}
	// The tables behind the discovered resources: the collection's name with
	// - as _, when the app role sees a table of that name with a tenant_id.
	for _, res := range c.rows {
		table := strings.ReplaceAll(res.Name, "-", "_")
		var col string
		err := conn.QueryRow(ctx, `
select coalesce((select p.column_name from information_schema.column_privileges p
                 where p.table_schema = current_schema() and p.table_name = $1 and p.privilege_type = 'UPDATE'
                   and p.column_name not in ('tenant_id', 'id') order by p.column_name limit 1), '')
where exists (select 1 from information_schema.columns where table_schema = current_schema() and table_name = $1 and column_name = 'tenant_id')`,
			table).Scan(&col)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // no such tenant table: an API name that is not a table name
		}
		if err != nil {
			return fmt.Errorf("looking up table %s: %w", table, err)
		}
		c.tableVectors(conn, inTenant, count, res, pgx.Identifier{table}.Sanitize(), col)
	}
	refused := func(vector, sql string, args ...any) {
		err := inTenant(c.tenantA.String(), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql, args...)
			return err
		})
		var pgErr *pgconn.PgError
		c.record(vector, errors.As(err, &pgErr), "refused: %v", err)
	}
	refused("sql: read the tenant registry", "select * from tenants")
	refused("sql: create a table or function", "create function public.peek() returns int language sql as 'select 1'")
	return nil
}

// tableVectors attack one tenant table as the app role; vector names carry
// the table unless it is the primary resource's.
func (c *checker) tableVectors(conn *pgx.Conn, inTenant func(string, func(pgx.Tx) error) error, count func(string) (int, error),
	res *seededRow, table, col string) {
	ctx := c.ctx
	vec := func(v string) string { return name(v, res, c.primary) }
	n, err := count("select count(*) from " + table)
	c.record(vec("sql: no tenant set (fresh connection) reads nothing"), err == nil && n == 0, "%d rows, err %v", n, err)
	_ = inTenant(c.tenantA.String(), func(pgx.Tx) error { return nil })
	n, err = count("select count(*) from " + table)
	c.record(vec("sql: after a transaction ('' setting) reads nothing"), err == nil && n == 0, "%d rows, err %v", n, err)

	var seen int
	err = inTenant(c.tenantA.String(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "select count(*) from "+table+" where tenant_id = $1 or id::text = $2", c.tenantB, res.b).Scan(&seen)
	})
	c.record(vec("sql: A naming B's tenant_id or id reads nothing"), err == nil && seen == 0, "%d rows, err %v", seen, err)

	refused := func(vector, sql string, args ...any) {
		err := inTenant(c.tenantA.String(), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql, args...)
			return err
		})
		var pgErr *pgconn.PgError
		c.record(vec(vector), errors.As(err, &pgErr), "refused: %v", err)
	}
	refused("sql: insert naming B", "insert into "+table+" (tenant_id) values ($1)", c.tenantB)
	refused("sql: update moving A's row to B", "update "+table+" set tenant_id = $1 where id::text = $2", c.tenantB, res.a)
	refused("sql: TRUNCATE (ignores RLS)", "truncate "+table)
	if col == "" {
		return
	}
	ident := pgx.Identifier{col}.Sanitize()
	var changed int64
	err = inTenant(c.tenantA.String(), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "update "+table+" set "+ident+" = "+ident+" where id::text = $1", res.b)
		changed = tag.RowsAffected()
		return err
	})
	c.record(vec("sql: A updating B's row changes nothing"), err == nil && changed == 0, "%d rows changed, err %v", changed, err)
	// COPY bypasses no policy but would write without the API's checks.
	var tableName string
	_ = conn.QueryRow(ctx, "select $1::regclass::text", table).Scan(&tableName)
	_, err = conn.CopyFrom(ctx, pgx.Identifier{strings.Trim(tableName, `"`)}, []string{col}, pgx.CopyFromRows([][]any{{"copied"}}))
	c.record(vec("sql: COPY FROM"), err != nil, "refused: %v", err)
}
