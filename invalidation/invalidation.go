// Package invalidation keeps a serve instance's caches of tenants and
// credentials current: the database announces every change to what they
// hold (sql/migrations/00025_cache_change_notify.sql: a tenant's status,
// slug or limits, an API key's role, expiry or revocation, a user's role,
// any of them deleted) on Channel, in the change's own transaction, and a
// Listener LISTENing there makes each cache forget that tenant's entries at
// once, on every instance, whichever instance or DBA made the change.
//
// While that holds, a cache may keep its entries for ExtendedTTL instead of
// its configured TTL (AUTH_CACHE_TTL, TENANT_CACHE_TTL): fewer lookups and
// renewals, and a change reaches every instance in milliseconds instead of
// within the TTL. It holds while the Listener hears its own heartbeat: every
// Heartbeat it notifies Channel from a second session, with a new payload,
// and notifications of one channel arrive in commit order, so once that
// beat is back every change committed before it has been heard. A heartbeat that does not come back
// within Heartbeat (a broken connection, one that went half-open, a
// transaction pooler that dropped the LISTEN, a database too slow) puts
// every cache back on its own TTL at once, and a cache that shortens its
// TTL shortens its entries to it, without dropping them (cache.Cache.SetTTL):
// a change missed meanwhile lasts at most about two heartbeats plus that
// TTL. After maxMisses heartbeats sent and not back in a row the listener
// connects again; a heartbeat that cannot be sent (a commit waiting for a
// lagging synchronous standby holds the lock every NOTIFY needs) makes it
// not live, but not connect again, which would empty the caches.
package invalidation

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is where the database announces a tenant whose cached state
// changed; the payload is the tenant's id.
const Channel = "rowfence_change"

// Heartbeat is how often a Listener checks that it hears its own
// notifications, and how long one may take to come back.
const Heartbeat = time.Second

// ExtendedTTL is how long a cache keeps an entry while it hears every
// change (a configured TTL above it stays). It still bounds a change that
// no trigger announces: one made with session_replication_role = replica
// (which fires no ordinary trigger, PostgreSQL documentation, CREATE
// TRIGGER), or to a column the caches came to hold without its trigger.
const ExtendedTTL = 5 * time.Minute

// Cache is a cache of per-tenant state that a Listener keeps current.
type Cache interface {
	// ForgetTenants drops every entry of these tenants, and keeps lookups
	// in flight from storing one read before the change. One call walks a
	// cache once, however many tenants it names.
	ForgetTenants(tenants map[uuid.UUID]struct{})
	// ForgetAll drops every entry, likewise.
	ForgetAll()
	// Listening says whether every change is being heard (the cache may
	// keep its entries for TTL(own, true)) or not (back to its own TTL,
	// what it kept for longer shortened to it).
	Listening(live bool)
}

// TTL is how long a cache whose own TTL is own keeps an entry: ExtendedTTL
// while every change is heard (live), unless own is longer; own otherwise.
func TTL(own time.Duration, live bool) time.Duration {
	if live {
		return max(own, ExtendedTTL)
	}
	return own
}

// Source is one database whose changes a Listener hears.
type Source struct {
	// Name names it in logs (a cell's name).
	Name string
	// Pool is where the listener's two connections come from (one
	// LISTENs, the other sends the heartbeat): it takes them out
	// (pgxpool.Conn.Hijack), so they connect as the pool does, as its
	// role and through its reconnect breaker (db.GuardConnects), and
	// during an outage add no dials of their own. Not through a
	// transaction pooler, whose server connection drops the LISTEN with
	// the transaction (the heartbeat notices, and the caches keep their
	// TTL).
	Pool *pgxpool.Pool
	// Channels are LISTENed besides Channel (tenancy.PlacementChannel on
	// the catalog); each payload is a tenant id.
	Channels []string
	// Unheard marks a database whose changes cannot be heard (Pool goes
	// through a transaction pooler): nothing listens to it, and the caches
	// are never told that every change is heard.
	Unheard bool
}

// Listener keeps caches current from the changes of its sources. Its zero
// value is not usable: see New.
type Listener struct {
	caches    []Cache
	log       *slog.Logger
	heartbeat time.Duration

	mu   sync.Mutex
	up   []bool // per source: its last heartbeat came back in time
	live bool   // what the caches were last told
	// done is Run's ctx: once it ends, going quiet is no news to warn of.
	done context.Context
}

// New returns a Listener for caches; it reports its state changes to log.
func New(log *slog.Logger, caches ...Cache) *Listener {
	return &Listener{caches: caches, log: log, heartbeat: Heartbeat}
}

// Run listens on every source until ctx ends, reconnecting with a growing
// pause (up to 5 s) when a connection fails, and tells the caches first
// that it is not listening when it returns. On every connect it makes the
// caches forget everything: whatever changed while it was not connected
// went unheard.
func (l *Listener) Run(ctx context.Context, sources ...Source) {
	l.mu.Lock()
	l.up, l.done = make([]bool, len(sources)), ctx
	l.mu.Unlock()
	var wg sync.WaitGroup
	for i, s := range sources {
		if s.Unheard {
			l.log.Warn("cache invalidation: a transaction pooler cannot hold a LISTEN; changes reach this instance within AUTH_CACHE_TTL and TENANT_CACHE_TTL",
				"source", s.Name, "channels", append([]string{Channel}, s.Channels...))
			continue
		}
		wg.Go(func() { l.source(ctx, i, s) })
	}
	wg.Wait()
}

// Live reports whether every source's heartbeat is back in time.
func (l *Listener) Live() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live
}

func (l *Listener) source(ctx context.Context, i int, s Source) {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx, i, s, func() { pause = 100 * time.Millisecond })
		l.set(i, false)
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("cache invalidation: listening for changes failed; retrying", "source", s.Name, "error", err, "pause", pause.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// listen takes a connection out of the source's pool, LISTENs on it,
// forgets everything, and then hears changes and heartbeats until that
// connection or ctx ends. The heartbeat goes from another connection (see
// beat): a session's own notification comes back to it even behind a
// transaction pooler that drops every other session's, so only another
// session's proves the LISTEN. connected is called when the first
// heartbeat came back.
func (l *Listener) listen(ctx context.Context, i int, s Source, connected func()) error {
	conn, err := hijack(ctx, s.Pool)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range append([]string{Channel}, s.Channels...) {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	for _, c := range l.caches {
		c.ForgetAll()
	}
	var beats *pgx.Conn
	defer func() {
		if beats != nil {
			beats.Close(context.WithoutCancel(ctx))
		}
	}()
	lost, heard := 0, false
	for {
		// A new payload every beat, and no tenant id (other instances
		// ignore it): one from an earlier round, or a copy by a role that
		// saw it on the channel, proves nothing of this one.
		beat := "heartbeat " + rand.Text()
		due := time.Now().Add(l.heartbeat)
		sent, err := l.beat(ctx, s.Pool, &beats, beat, due)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		back := false
		// pgx returns notifications it holds already without looking at
		// the deadline: the round ends at its time all the same. A beat
		// that could not be sent ends nothing: changes still arrive.
		for time.Now().Before(due) {
			n, err := wait(ctx, conn, due)
			if err != nil {
				return err
			}
			if n == nil {
				break
			}
			// A burst of changes (a tenant's users deleted one by one, say)
			// is forgotten in one walk of each cache: what arrives within
			// burstWait of the last, up to maxBurst tenants.
			tenants := map[uuid.UUID]struct{}{}
			for n != nil && len(tenants) < maxBurst {
				switch {
				case sent && n.Payload == beat:
					back = true
				default:
					// A payload that is no tenant id is ignored: any role
					// may NOTIFY any channel (leak vector 12), and the
					// worst a forged one does is make the next request of
					// that tenant look it up again.
					if id, err := uuid.Parse(n.Payload); err == nil {
						tenants[id] = struct{}{}
					}
				}
				if n, err = wait(ctx, conn, time.Now().Add(burstWait)); err != nil {
					return err
				}
			}
			if len(tenants) > 0 {
				for _, c := range l.caches {
					c.ForgetTenants(tenants)
				}
			}
			if back {
				// Every change committed before the beat has been heard,
				// and forgotten.
				l.set(i, true)
			}
		}
		switch {
		case back:
			lost = 0
			if !heard {
				heard = true
				connected()
			}
			continue
		case !sent:
			// A commit that waits (a lagging synchronous standby holds
			// the notification queue's lock) says nothing of the LISTEN:
			// not live, and no reconnect, which would empty the caches.
			l.log.Debug("cache invalidation: a heartbeat could not be sent", "source", s.Name, "error", err)
		default:
			lost++
		}
		l.set(i, false)
		if lost >= maxMisses {
			return fmt.Errorf("%d heartbeats in a row were sent and did not come back within %s", lost, l.heartbeat)
		}
	}
}

// beat notifies Channel with payload from the heartbeat connection *beats
// (taken out of pool when there is none, with synchronous_commit off: a
// heartbeat need not wait for its WAL flush), by due. sent reports whether
// it was; a connection that failed is closed and made again next time.
func (l *Listener) beat(ctx context.Context, pool *pgxpool.Pool, beats **pgx.Conn, payload string, due time.Time) (sent bool, err error) {
	bctx, cancel := context.WithDeadline(ctx, due)
	defer cancel()
	if *beats == nil {
		c, err := hijack(bctx, pool)
		if err != nil {
			return false, err
		}
		if _, err := c.Exec(bctx, "SET synchronous_commit = off"); err != nil {
			c.Close(context.WithoutCancel(ctx))
			return false, err
		}
		*beats = c
	}
	if _, err := (*beats).Exec(bctx, "SELECT pg_notify($1, $2)", Channel, payload); err != nil {
		(*beats).Close(context.WithoutCancel(ctx))
		*beats = nil
		return false, err
	}
	return true, nil
}

// hijack takes a connection out of pool for good: it connects as the pool
// does (its role, settings and reconnect breaker), and the pool makes
// another when it needs one.
func hijack(ctx context.Context, pool *pgxpool.Pool) (*pgx.Conn, error) {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return pc.Hijack(), nil
}

// burstWait and maxBurst bound how changes are gathered into one
// ForgetTenants: a burst lasts while notifications come within burstWait of
// each other, up to maxBurst tenants. maxMisses heartbeats sent and not
// back in a row make the listener connect again (and the caches forget
// everything).
const (
	burstWait = time.Millisecond
	maxBurst  = 256
	maxMisses = 5
)

// wait returns the next notification on conn, or nil at the deadline; an
// error is the connection's or ctx's.
func wait(ctx context.Context, conn *pgx.Conn, deadline time.Time) (*pgconn.Notification, error) {
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	n, err := conn.WaitForNotification(wctx)
	switch {
	case err == nil:
		return n, nil
	case ctx.Err() == nil && pgconn.Timeout(err):
		return nil, nil
	default:
		return nil, err
	}
}

// set records source i's state and tells the caches when the whole changes.
func (l *Listener) set(i int, up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.up[i] = up
	live := true
	for _, u := range l.up {
		live = live && u
	}
	if live == l.live {
		return
	}
	l.live = live
	for _, c := range l.caches {
		c.Listening(live)
	}
	switch {
	case live:
		l.log.Info("cache invalidation: hearing every change; caches keep entries longer", "ttl", ExtendedTTL.String())
	case l.done.Err() == nil:
		l.log.Warn("cache invalidation: not hearing every change; caches are back on their TTL")
	}
}
