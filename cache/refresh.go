package cache

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// MaxRefreshBatch bounds a Refresher's batch, in keys: a batch that reaches
// it is looked up at once rather than at the end of its window.
const MaxRefreshBatch = 500

// Loaded is a batch lookup's answer for one key: its value when Found, or
// Err when the lookup of that key failed (the entry then expires at its
// time).
type Loaded[V any] struct {
	Value V
	Found bool
	Err   error
}

// LoadMany looks items up at once and answers for each, in items' order
// (len(answers) == len(items)). An error fails the whole batch: every entry
// in it expires at its time.
type LoadMany[R, V any] func(ctx context.Context, items []R) ([]Loaded[V], error)

// Refresher renews a cache's positive entries in use in batches. Why: one
// lookup per entry in use every RefreshAfter is, with 1,000 tenants at the
// default 5 s TTL of keys and tenants, 500 transactions a second, each a
// round trip, a pooled connection and a PostgreSQL transaction: ~20 µs of
// CPU per request of the HTTP benchmark (bench/RESULTS.md). Due entries are
// gathered for a window of a quarter of the TTL's last fifth (250 ms at
// 5 s), so that every entry used in the fifth before it would expire is
// renewed before it does, and looked up together by one LoadMany call, in a
// goroutine of its own.
//
// R is what a lookup of one key needs besides the key itself (an API key's
// secret hash, say); it is given to Refresh with the key.
type Refresher[K comparable, V, R any] struct {
	cache   *Cache[K, V]
	load    LoadMany[R, V]
	timeout time.Duration

	mu sync.Mutex
	// busy holds the keys queued or being looked up: one refresh at a
	// time per key.
	busy  map[K]struct{}
	keys  []K
	items []R
	timer *time.Timer
}

// NewRefresher renews c's due entries with load; each LoadMany call gets a
// context with the timeout (<= 0: a minute). With c disabled or without
// Options.Refresh, Refresh does nothing.
func NewRefresher[K comparable, V, R any](c *Cache[K, V], load LoadMany[R, V], timeout time.Duration) *Refresher[K, V, R] {
	if timeout <= 0 {
		timeout = time.Minute
	}
	return &Refresher[K, V, R]{cache: c, load: load, timeout: timeout, busy: map[K]struct{}{}}
}

// window is how long due entries are gathered: a quarter of the last fifth
// of the positive TTL.
func (r *Refresher[K, V, R]) window() time.Duration {
	ttl := r.cache.TTL()
	return max((ttl-RefreshAfter(ttl))/4, time.Millisecond)
}

// Refresh queues key (with item, what its lookup needs) for the next batch
// when its entry is due (Cache.RefreshDue) and not queued or being looked up
// already. Call it after a Hit was used; it returns at once. What the batch
// finds replaces the entry as Set (found) or SetAbsent (not found), with a
// Ticket taken before the lookup, so a Delete meanwhile wins.
func (r *Refresher[K, V, R]) Refresh(key K, item R) {
	if !r.cache.RefreshDue(key) {
		return
	}
	r.mu.Lock()
	if _, queued := r.busy[key]; queued {
		r.mu.Unlock()
		return
	}
	r.busy[key] = struct{}{}
	r.keys, r.items = append(r.keys, key), append(r.items, item)
	if len(r.keys) >= MaxRefreshBatch {
		keys, items := r.take()
		r.mu.Unlock()
		go r.run(keys, items)
		return
	}
	if len(r.keys) == 1 {
		if r.timer == nil {
			r.timer = time.AfterFunc(r.window(), r.Flush)
		} else {
			r.timer.Reset(r.window())
		}
	}
	r.mu.Unlock()
}

// Flush looks up what is queued now, without waiting for the window to end
// (the window's timer calls it; so may a test).
func (r *Refresher[K, V, R]) Flush() {
	r.mu.Lock()
	keys, items := r.take()
	r.mu.Unlock()
	if len(keys) > 0 {
		r.run(keys, items)
	}
}

// take empties the queue. r.mu is held.
func (r *Refresher[K, V, R]) take() ([]K, []R) {
	keys, items := r.keys, r.items
	r.keys, r.items = nil, nil
	if r.timer != nil {
		r.timer.Stop()
	}
	return keys, items
}

// run looks keys up and stores the answers, with a Ticket taken before:
// the renewed entries live for the TTL from then, however long the batch
// took. Whatever happens, keys leave busy; a LoadMany that panics or
// answers for other keys than asked is a bug, logged, and its entries
// expire at their time.
func (r *Refresher[K, V, R]) run(keys []K, items []R) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("cache: refresh panicked; its entries expire at their time", "cache", r.cache.Name(), "panic", p)
		}
		r.mu.Lock()
		for _, k := range keys {
			delete(r.busy, k)
		}
		r.mu.Unlock()
	}()
	t := r.cache.Ticket()
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	answers, err := r.load(ctx, items)
	switch {
	case err != nil:
		return
	case len(answers) != len(keys):
		slog.Error("cache: refresh answered for another number of keys than asked; none is stored",
			"cache", r.cache.Name(), "asked", len(keys), "answers", len(answers))
		return
	}
	for i, a := range answers {
		switch {
		case a.Err != nil:
		case a.Found:
			r.cache.Set(t, keys[i], a.Value)
		default:
			r.cache.SetAbsent(t, keys[i])
		}
	}
}
