package dbtype

import "slices"

// The vocabulary: the values PostgreSQL itself checks, each written once,
// here, as a typed constant. The sqlc-generated structs carry these types
// (sqlc.yaml, "overrides"), so a column's value is never a bare string.
// Each list names the CHECK constraint or policies that list the same
// values in SQL; TestVocabularyMatchesTheCatalog compares the two in a
// migrated database, so neither side can change alone.

// Role is what a unit of work may do inside its tenant, and what a user or an
// API key is granted. PostgreSQL enforces it: the permissive policies compare
// the app.role setting with these names (sql/migrations/00004_auth.sql,
// 00007_jobs.sql, 00008_idempotency.sql), and the CHECK constraints
// users_role_valid (00003_users_products.sql) and api_keys_role_valid
// (00004_auth.sql) list the client roles, admin, member and viewer.
type Role string

const (
	RoleAdmin  Role = "admin"  // everything, including users and API keys
	RoleMember Role = "member" // reads products and users, writes products
	RoleViewer Role = "viewer" // reads products and users
	// RoleAuth is the credential check itself: it may read API keys and
	// users and stamp a key's last_used_at, nothing else. Never a client's:
	// no user or key can hold it (the CHECK constraints above).
	RoleAuth Role = "auth"
)

// ClientRoles are the roles a user, an API key or a token can hold, weakest
// first: each may do everything the ones before it may.
func ClientRoles() []Role { return []Role{RoleViewer, RoleMember, RoleAdmin} }

// rank orders the client roles as ClientRoles does (1 is the weakest); 0
// for any other value, RoleAuth included. A switch: it is on every request's
// path (the route's least role), and a slice would be allocated there.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleMember:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the roles the policies know.
func (r Role) Valid() bool { return r == RoleAuth || r.Client() }

// Client reports whether r is a role a client can hold (not RoleAuth).
func (r Role) Client() bool { return r.rank() > 0 }

// AtLeast reports whether r may do what needs at least min: r is a client
// role and min is no stronger. A role that is no client role allows nothing.
func (r Role) AtLeast(min Role) bool { return r.Client() && r.rank() >= min.rank() }

// Lesser returns the weaker of r and o: a key or a token never grants more
// than its user currently has.
func (r Role) Lesser(o Role) Role {
	if r.rank() <= o.rank() {
		return r
	}
	return o
}

// TenantStatus is a tenant's state in the registry (tenants.status, whose
// CHECK constraint tenants_status_valid, sql/migrations/00020_tenant_archives.sql,
// lists the same values). Only an active tenant's requests are served.
type TenantStatus string

const (
	TenantStatusActive    TenantStatus = "active"
	TenantStatusSuspended TenantStatus = "suspended" // its requests are refused (403 tenant-suspended); its data kept
	// TenantStatusDeleting: marked for deletion; its requests are refused,
	// its data kept until purge_after, when the purge deletes it. Setting the
	// status back to active before then cancels the deletion. The CHECK
	// constraint tenants_purge_after_when_deleting ties purge_after to it.
	TenantStatusDeleting TenantStatus = "deleting"
	// TenantStatusArchived: its rows were moved into its archive and out of
	// the live tables (lifecycle.Archive; 00020_tenant_archives.sql); its
	// requests get 409 tenant-archived until `rowfence tenant restore`.
	TenantStatusArchived TenantStatus = "archived"
)

// TenantStatuses lists every tenant status.
func TenantStatuses() []TenantStatus {
	return []TenantStatus{TenantStatusActive, TenantStatusSuspended, TenantStatusDeleting, TenantStatusArchived}
}

// Valid reports whether s is a tenant status.
func (s TenantStatus) Valid() bool { return slices.Contains(TenantStatuses(), s) }

// ExportStatus is where a tenant export stands (exports.status, whose CHECK
// constraint exports_status_valid, sql/migrations/00007_jobs.sql, lists the
// same values). An export starts pending (the column's default); the export
// job makes it running, then done or, after its last attempt, failed.
type ExportStatus string

const (
	ExportStatusPending ExportStatus = "pending" // queued, or waiting to be retried
	ExportStatusRunning ExportStatus = "running" // the job is writing it
	ExportStatusDone    ExportStatus = "done"    // written; its content can be downloaded
	ExportStatusFailed  ExportStatus = "failed"  // for good: error says why
)

// ExportStatuses lists every export status.
func ExportStatuses() []ExportStatus {
	return []ExportStatus{ExportStatusPending, ExportStatusRunning, ExportStatusDone, ExportStatusFailed}
}

// Valid reports whether s is an export status.
func (s ExportStatus) Valid() bool { return slices.Contains(ExportStatuses(), s) }
