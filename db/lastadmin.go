package db

// ConstraintLastAdmin names the rule that a tenant with an admin keeps one
// (sql/migrations/00014_users_keep_an_admin.sql): demoting or deleting the
// last admin fails with a *ConstraintError of Kind ErrInvalid
// (check_violation, SQLSTATE 23514) and this Constraint, through the API or in
// SQL as any role. The tenant's own deletion is allowed.
const ConstraintLastAdmin = "users_last_admin"
