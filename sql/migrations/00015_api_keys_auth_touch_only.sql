-- +goose Up
-- The credential check (app.role 'auth') may stamp last_used_at on a live
-- key and change nothing else. Column grants belong to database roles, not to
-- app.role values, and rowfence_app may update name and revoked_at (admins
-- rename and revoke keys), so the api_keys_auth_touch policy (00004) let
-- 'auth' rename a live key. This trigger refuses, as insufficient_privilege
-- (42501), any change made as 'auth' to a column other than last_used_at.
-- SECURITY INVOKER: it reads nothing, it compares the old and new row.
SET LOCAL ROLE rowfence_owner;

-- +goose StatementBegin
CREATE FUNCTION api_keys_auth_touch_only() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('app.role', true) = 'auth'
       AND (to_jsonb(NEW) - 'last_used_at') IS DISTINCT FROM (to_jsonb(OLD) - 'last_used_at') THEN
        RAISE EXCEPTION 'the credential check may only stamp last_used_at'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION api_keys_auth_touch_only() FROM PUBLIC;
CREATE TRIGGER api_keys_auth_touch_only BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION api_keys_auth_touch_only();
RESET ROLE;

-- +goose Down
SET LOCAL ROLE rowfence_owner;
DROP TRIGGER api_keys_auth_touch_only ON api_keys;
DROP FUNCTION api_keys_auth_touch_only();
RESET ROLE;
