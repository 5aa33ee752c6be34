package db

// constraint is what a violation of one named constraint means to a client.
type constraint struct {
	code    Code
	field   string // the API's name of the input at fault
	message string
}

// constraints are the constraints of sql/migrations that a valid request can
// still break, by name: the one place where a constraint name becomes a field
// and a message (mapError). A violation of a constraint not listed keeps the
// Code of its SQLSTATE and names no field. TestConstraintsAreTheMigrations
// fails when a name here is not one the migrations create.
var constraints = map[string]constraint{
	// 00002_tenancy.sql: the registry's slugs are global (tenants are not
	// tenant rows); only the platform's paths can see the conflict.
	"tenants_slug_key": {ErrConflict, "slug", "a tenant with this slug already exists"},
	// 00003_users_products.sql: per tenant and case-insensitive (leak vector 4).
	"users_tenant_email_key": {ErrConflict, "email", "a user with this email already exists"},
	// 00017_users_external_id.sql: per tenant, as email.
	"users_tenant_external_id_key": {ErrConflict, "external_id", "a user with this external_id already exists"},
	// 00014_users_keep_an_admin.sql: a pseudo-constraint its trigger raises,
	// on a change of role or a deletion (so no one field is at fault).
	"users_last_admin": {ErrLastAdmin, "", "a tenant must keep an admin: make another user admin before demoting or deleting this one"},
}
