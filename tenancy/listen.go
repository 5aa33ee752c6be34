package tenancy

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// PlacementChannel is the channel on which the catalog announces that a
// tenant's placement changed (a move's switch; the payload is the tenant's
// id): sql/migrations/00022_tenant_moves.sql's trigger on tenants.cell.
const PlacementChannel = "rowfence_placement"

// Listen keeps one connection (cfg: the catalog, any role) LISTENing on
// PlacementChannel until ctx ends, and forgets each tenant announced there,
// so that no request runs in a tenant's old cell once the move's switch
// committed, however long the cache would keep it (issue #18,
// TestStalePlacementLosesNoWrite). It reconnects with a growing pause (up
// to 5s) when the connection fails; whatever was announced meanwhile is
// unknown, so on each connect it forgets every cached tenant (they are
// read again, one lookup each). A payload that is no tenant id is ignored:
// any role may NOTIFY any channel (leak vector 12), and the worst a forged
// one does is make the next request of that tenant read the catalog again.
// It does not work through a transaction pooler (a LISTEN ends with its
// transaction): connect it directly.
func (r *Resolver) Listen(ctx context.Context, cfg *pgx.ConnConfig, log *slog.Logger) {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, cfg, func() {
			// Whatever was cached before this LISTEN may have missed an
			// announcement (at start the cache is empty anyway).
			r.cache.DeleteFunc(func(Key, Tenant) bool { return true })
			pause = 100 * time.Millisecond
		})
		if ctx.Err() != nil {
			return
		}
		log.Warn("tenant placements: listening for changes failed; retrying", "channel", PlacementChannel, "error", err, "pause", pause.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// listenOnce connects, LISTENs, calls ready, and forgets each announced
// tenant until the connection or ctx ends.
func (r *Resolver) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, ready func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+PlacementChannel); err != nil {
		return err
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if id, err := uuid.Parse(n.Payload); err == nil {
			r.Forget(id, "")
		}
	}
}
