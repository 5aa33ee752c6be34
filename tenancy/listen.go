package tenancy

// PlacementChannel is the channel on which the catalog announces that a
// tenant's placement changed (a move's switch; the payload is the tenant's
// id): sql/migrations/00022_tenant_moves.sql's trigger on tenants.cell. An
// invalidation.Listener LISTENs there on the catalog and makes the Resolver
// forget the tenant, so that no request runs in a tenant's old cell once
// the move's switch committed, however long the cache would keep it (issue
// #18, TestStalePlacementLosesNoWrite); on each connect it forgets every
// cached tenant, since whatever was announced meanwhile is unknown.
const PlacementChannel = "rowfence_placement"
