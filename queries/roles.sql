-- Role administration, run by the migrating role (never by the app).

-- name: AppRolePasswordStatement :one
-- ALTER ROLE takes no parameters, so the server quotes the password itself.
SELECT format('ALTER ROLE rowfence_app PASSWORD %L', @password::text)::text AS statement;
