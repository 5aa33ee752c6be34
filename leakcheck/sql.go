package leakcheck

import (
	"context"
	"errors"
	"fmt"

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
	n, err := count("select count(*) from products")
	c.record("sql: no tenant set (fresh connection) reads nothing", err == nil && n == 0, "%d rows, err %v", n, err)

	inTenant := func(tenant string, fn func(tx pgx.Tx) error) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "select set_config('app.tenant_id', $1, true), set_config('app.role', 'admin', true)", tenant); err != nil {
				return err
			}
			return fn(tx)
		})
	}
	_ = inTenant(c.tenantA.String(), func(pgx.Tx) error { return nil })
	n, err = count("select count(*) from products")
	c.record("sql: after a transaction ('' setting) reads nothing", err == nil && n == 0, "%d rows, err %v", n, err)

	var seen int
	err = inTenant(c.tenantA.String(), func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "select count(*) from products where tenant_id = $1 or id = $2", c.tenantB, c.productB).Scan(&seen)
	})
	c.record("sql: A naming B's tenant_id or id reads nothing", err == nil && seen == 0, "%d rows, err %v", seen, err)

	refused := func(vector, sql string, args ...any) {
		err := inTenant(c.tenantA.String(), func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql, args...)
			return err
		})
		var pgErr *pgconn.PgError
		c.record(vector, errors.As(err, &pgErr), "refused: %v", err)
	}
	refused("sql: insert naming B", "insert into products (tenant_id, name, price) values ($1, 'x', 1)", c.tenantB)
	refused("sql: update moving A's row to B", "update products set tenant_id = $1 where id = $2", c.tenantB, c.productA)
	refused("sql: TRUNCATE (ignores RLS)", "truncate products")
	refused("sql: read the tenant registry", "select * from tenants")
	refused("sql: create a table or function", "create function public.peek() returns int language sql as 'select 1'")

	var changed int64
	err = inTenant(c.tenantA.String(), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "update products set name = 'x' where id = $1", c.productB)
		changed = tag.RowsAffected()
		return err
	})
	c.record("sql: A updating B's row changes nothing", err == nil && changed == 0, "%d rows changed, err %v", changed, err)

	_, err = conn.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"name", "price"}, pgx.CopyFromRows([][]any{{"copied", int64(1)}}))
	c.record("sql: COPY FROM", err != nil, "refused: %v", err)
	return nil
}
