-- Role administration, run by the migrating role (never by the app).

-- name: RolePasswordStatement :one
-- ALTER ROLE takes no parameters, so the server quotes the name and the
-- password itself.
SELECT format('ALTER ROLE %I PASSWORD %L', @role_name::text, @password::text)::text AS statement;
