-- +goose Up
-- The owner and the app role (docs/DESIGN.md, "Database roles"; the platform
-- role comes with 00006_platform.sql). Roles are cluster-wide, so this is
-- idempotent: several rowfence databases (and parallel test databases) share them.
--   rowfence_owner  owns every table; NOLOGIN; never serves requests.
--   rowfence_app    serves requests; LOGIN, NOSUPERUSER, NOBYPASSRLS, NOINHERIT,
--                   owns nothing and only gets the grants it needs (later files).
-- +goose StatementBegin
DO $$
BEGIN
  BEGIN
    CREATE ROLE rowfence_owner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
  END;
  BEGIN
    CREATE ROLE rowfence_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
  END;
END
$$;
-- +goose StatementEnd

-- If the roles existed already, make sure nobody widened them. Only when
-- needed: ALTER ROLE rewrites a shared catalog row, and two databases
-- migrating at once would otherwise collide on it.
-- +goose StatementBegin
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rowfence_owner'
             AND (rolcanlogin OR rolsuper OR rolbypassrls)) THEN
    ALTER ROLE rowfence_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rowfence_app'
             AND (NOT rolcanlogin OR rolsuper OR rolbypassrls OR rolinherit)) THEN
    ALTER ROLE rowfence_app LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
  END IF;
END
$$;
-- +goose StatementEnd

-- The migrating role creates objects as rowfence_owner (SET LOCAL ROLE in each
-- schema migration), so it must be a member of it. A superuser already may.
-- +goose StatementBegin
DO $$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
     AND NOT pg_has_role(current_user, 'rowfence_owner', 'MEMBER') THEN
    EXECUTE format('GRANT rowfence_owner TO %I', current_user);
  END IF;
END
$$;
-- +goose StatementEnd

-- The owner creates its tables in public; nobody else may create anything there
-- (PostgreSQL 15 already revokes CREATE from PUBLIC; older servers do not).
GRANT USAGE, CREATE ON SCHEMA public TO rowfence_owner;
GRANT USAGE ON SCHEMA public TO rowfence_app;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- +goose Down
REVOKE CREATE ON SCHEMA public FROM rowfence_owner;
-- The roles are shared by every rowfence database on the cluster, so they are
-- left in place; drop them by hand once no database uses them.
