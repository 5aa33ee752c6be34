package ratelimit

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/tenancy"
)

// queue starts a request of tenant that must wait, and returns once it is
// in the queue; its grant is reported on granted (as name) and its
// Decision on done.
func queue(t *testing.T, l *Limiter, ctx context.Context, tenant uuid.UUID, name string, granted chan<- string, done chan<- Decision) {
	t.Helper()
	before := l.Stats().Waiting
	go func() {
		d, release := l.Acquire(ctx, tenant, tenancy.Limits{})
		if d.Allowed {
			granted <- name
			_ = release // the test releases by tenant, through its own slots
		}
		if done != nil {
			done <- d
		}
	}()
	require.Eventually(t, func() bool { return l.Stats().Waiting == before+1 }, 5*time.Second, time.Millisecond, "%s waits", name)
}

// hold acquires a slot that must be free now.
func hold(t *testing.T, l *Limiter, tenant uuid.UUID) func() {
	t.Helper()
	d, release := l.Acquire(bg, tenant, tenancy.Limits{})
	require.True(t, d.Allowed)
	require.False(t, d.Queued)
	return release
}

// Freed slots go round-robin to the waiting tenants, fewest in progress
// first, and a quiet tenant's request goes ahead of the noisy tenants'
// backlogs; the reserve keeps a slot for a tenant with nothing in progress.
func TestFreedSlotsGoToTenantsInTurn(t *testing.T) {
	t.Parallel()
	l := New(Defaults{MaxConcurrency: 2, Capacity: 4, QueueLength: 10, QueueTimeout: time.Minute})
	a, b, quiet := uuid.New(), uuid.New(), uuid.New()
	a1, a2 := hold(t, l, a), hold(t, l, a)
	b1 := hold(t, l, b)
	require.Equal(t, 3, l.Stats().InFlight)

	granted := make(chan string, 20)
	// b's second would be the fourth slot: the reserve, kept for tenants
	// with nothing in progress. It waits, as do a's, past a's cap.
	queue(t, l, bg, b, "b2", granted, nil)
	for _, n := range []string{"a3", "a4", "a5"} {
		queue(t, l, bg, a, n, granted, nil)
	}
	queue(t, l, bg, b, "b3", granted, nil)

	q1 := hold(t, l, quiet) // at once, ahead of both backlogs
	require.Equal(t, 4, l.Stats().InFlight)
	q1()
	require.Equal(t, 3, l.Stats().InFlight, "the reserve stays free for the next quiet request")

	// b (one in progress of two) goes before a (two of two, and at its cap).
	b1()
	require.Equal(t, "b2", <-granted)
	a1()
	require.Equal(t, "a3", <-granted, "a and b hold one of two each: a's head waited longer")
	a2()
	require.Equal(t, "a4", <-granted)
	// a holds a3 and a4, b holds b2; the fourth slot stays the reserve.
	require.Equal(t, 3, l.Stats().InFlight)
	require.Equal(t, 2, l.Stats().Waiting, "a5 and b3")
}

// Of two tenants with backlogs, the one with fewer requests in progress
// gets the freed slot, even when the other's backlog is older.
func TestBacklogsAlternate(t *testing.T) {
	t.Parallel()
	l := New(Defaults{MaxConcurrency: 10, Capacity: 2, QueueLength: 10, QueueTimeout: time.Minute})
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	// Two other tenants hold both slots.
	c1 := hold(t, l, c)
	d1 := hold(t, l, uuid.New())
	granted := make(chan string, 20)
	for _, n := range []string{"a1", "a2", "a3"} {
		queue(t, l, bg, a, n, granted, nil)
	}
	for _, n := range []string{"b1", "b2", "b3"} {
		queue(t, l, bg, b, n, granted, nil)
	}
	c1()
	require.Equal(t, "a1", <-granted, "a waited longest")
	d1()
	require.Equal(t, "b1", <-granted, "b has nothing in progress: before a's backlog")
	require.Equal(t, 4, l.Stats().Waiting)
}

// A full queue refuses at once; the queue timeout refuses with the reason
// that tells whose fault the wait was.
func TestQueueFullAndTimeout(t *testing.T) {
	t.Parallel()
	l := New(Defaults{MaxConcurrency: 1, Capacity: 2, QueueLength: 2, QueueTimeout: 50 * time.Millisecond})
	a, other, quiet := uuid.New(), uuid.New(), uuid.New()
	ra := hold(t, l, a)
	defer ra()

	done := make(chan Decision, 3)
	granted := make(chan string, 3)
	queue(t, l, bg, a, "a2", granted, done)
	queue(t, l, bg, a, "a3", granted, done)
	d, _ := l.Acquire(bg, a, tenancy.Limits{})
	require.False(t, d.Allowed)
	require.Equal(t, ReasonQueueFull, d.Reason)
	require.False(t, d.Queued, "refused without waiting")
	require.Equal(t, time.Second, d.RetryAfter)
	for range 2 {
		d := <-done
		require.False(t, d.Allowed)
		require.True(t, d.Queued)
		require.Equal(t, ReasonConcurrency, d.Reason, "a's own request held its share")
		require.GreaterOrEqual(t, d.Waited, 50*time.Millisecond)
	}
	require.Zero(t, l.Stats().Waiting)

	// other takes the last slot; quiet, with nothing in progress, times
	// out on a server full of others' requests.
	ro := hold(t, l, other)
	defer ro()
	d, _ = l.Acquire(bg, quiet, tenancy.Limits{})
	require.False(t, d.Allowed)
	require.Equal(t, ReasonOverloaded, d.Reason)
	require.Zero(t, l.Stats().Waiting)
}

// Without a queue (QueueTimeout 0) a request at the cap is refused at once,
// as before queueing existed.
func TestNoQueueRefusesAtOnce(t *testing.T) {
	t.Parallel()
	l := New(Defaults{MaxConcurrency: 1, Capacity: 4})
	a := uuid.New()
	r := hold(t, l, a)
	defer r()
	d, _ := l.Acquire(bg, a, tenancy.Limits{})
	require.False(t, d.Allowed)
	require.Equal(t, ReasonConcurrency, d.Reason)
	require.False(t, d.Queued)
}

// A waiter whose context ends leaves the queue at once, without a slot.
func TestCanceledWaiterLeavesTheQueue(t *testing.T) {
	t.Parallel()
	l := New(Defaults{MaxConcurrency: 1, Capacity: 4, QueueLength: 4, QueueTimeout: time.Minute})
	a := uuid.New()
	ra := hold(t, l, a)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan Decision, 1)
	queue(t, l, ctx, a, "a2", make(chan string, 1), done)
	cancel()
	d := <-done
	require.False(t, d.Allowed)
	require.Equal(t, ReasonCanceled, d.Reason)
	require.Zero(t, l.Stats().Waiting)
	ra()
	require.Zero(t, l.Stats().InFlight, "the canceled waiter got no slot")
	hold(t, l, a)()
}

// Under a storm of tenants acquiring, waiting, timing out, being canceled
// and releasing, no slot is lost or doubled: afterwards nothing is held or
// waiting, and the whole capacity is free again. Run with -race.
func TestStormLeavesNoSlotBehind(t *testing.T) {
	t.Parallel()
	const capacity = 4
	l := New(Defaults{MaxConcurrency: 2, Capacity: capacity, QueueLength: 8, QueueTimeout: 20 * time.Millisecond})
	tenants := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	var mu sync.Mutex
	inFlight, peak := map[uuid.UUID]int{}, 0
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for range 200 {
				ten := tenants[rng.IntN(len(tenants))]
				ctx, cancel := context.WithTimeout(bg, time.Duration(rng.IntN(3000))*time.Microsecond)
				d, release := l.Acquire(ctx, ten, tenancy.Limits{})
				cancel()
				if !d.Allowed {
					continue
				}
				mu.Lock()
				inFlight[ten]++
				total := 0
				for _, n := range inFlight {
					total += n
				}
				peak = max(peak, total)
				over := inFlight[ten] > 2
				mu.Unlock()
				if over {
					t.Error("a tenant past its cap")
				}
				time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond)
				mu.Lock()
				inFlight[ten]--
				mu.Unlock()
				release()
				release() // twice: harmless
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, peak, capacity)
	require.Equal(t, Stats{Capacity: capacity}, l.Stats(), "nothing held or waiting")
	quiet := uuid.New()
	for range capacity - l.reserve {
		defer hold(t, l, uuid.New())()
	}
	defer hold(t, l, quiet)()
	require.Equal(t, capacity, l.Stats().InFlight, "the whole capacity is free again")
}

// The queue timeouts share one timer (fair.go): each waiter is still
// refused its own QueueTimeout after it arrived, not when an earlier one
// was, whether those before it were granted, timed out or gave up; and the
// timer is set again for waiters that arrive after it went idle.
func TestQueueTimeoutsCountFromEachArrival(t *testing.T) {
	t.Parallel()
	const timeout = 150 * time.Millisecond
	l := New(Defaults{MaxConcurrency: 10, Capacity: 1, QueueLength: 10, QueueTimeout: timeout})
	holder := uuid.New()
	release := hold(t, l, holder)
	defer release()
	type result struct {
		d       Decision
		arrived time.Time
		ended   time.Time
	}
	start := func(ctx context.Context, tenant uuid.UUID) <-chan result {
		out := make(chan result, 1)
		before := l.Stats().Waiting
		arrived := time.Now()
		go func() {
			d, release := l.Acquire(ctx, tenant, tenancy.Limits{})
			out <- result{d, arrived, time.Now()}
			if d.Allowed {
				release()
			}
		}()
		require.Eventually(t, func() bool { return l.Stats().Waiting == before+1 }, 5*time.Second, time.Millisecond)
		return out
	}
	for round := range 2 { // the second round finds the timer idle
		ctx, cancel := context.WithCancel(bg)
		gone := start(ctx, uuid.New())
		time.Sleep(timeout / 3)
		first := start(bg, uuid.New())
		time.Sleep(timeout / 3)
		second := start(bg, uuid.New())
		cancel() // the oldest gives up: the others keep their own deadlines
		r := <-gone
		require.Equal(t, ReasonCanceled, r.d.Reason, "round %d", round)
		for _, c := range []<-chan result{first, second} {
			r := <-c
			require.False(t, r.d.Allowed, "round %d", round)
			require.Equal(t, ReasonOverloaded, r.d.Reason, "round %d", round)
			waited := r.ended.Sub(r.arrived)
			require.GreaterOrEqual(t, waited, timeout, "round %d: refused before its own timeout", round)
			require.Less(t, waited, timeout+timeout/2, "round %d: refused long after its own timeout", round)
		}
		require.Zero(t, l.Stats().Waiting)
	}
	// A waiter granted before its deadline is not refused when it passes.
	granted := start(bg, uuid.New())
	release() // the holder's slot goes to the waiter (the deferred call then does nothing)
	r := <-granted
	require.True(t, r.d.Allowed)
	time.Sleep(timeout + timeout/2)
	require.Zero(t, l.Stats().Waiting)
	require.Zero(t, l.Stats().InFlight)
}

// The cost of admission on the request path when nobody waits: one lock,
// a map lookup, the bucket, and the release.
func BenchmarkAcquireRelease(b *testing.B) {
	l := New(Defaults{RatePerSecond: 1e9, Burst: 1e9, MaxConcurrency: 1000, Capacity: 1000, QueueLength: 64, QueueTimeout: time.Second})
	tenants := make([]uuid.UUID, 64)
	for i := range tenants {
		tenants[i] = uuid.New()
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			d, release := l.Acquire(bg, tenants[i%len(tenants)], tenancy.Limits{})
			if !d.Allowed {
				b.Fatal("refused")
			}
			release()
			i++
		}
	})
}

// The cost of admission as bench/'s HTTP level has it: 8 clients on a
// capacity of 4 (the pool), so most requests wait for a slot and are handed
// one by a release. Each holds its slot for a few microseconds of work (the
// database round trip's share of the CPU). cpu-ns/op is the process's CPU
// per request: parking, handing over and the queue timeout's timer included.
func BenchmarkAcquireContended(b *testing.B) {
	l := New(Defaults{RatePerSecond: 1e9, Burst: 1e9, MaxConcurrency: 1000, Capacity: 4, QueueLength: 64, QueueTimeout: 2 * time.Second})
	tenants := make([]uuid.UUID, 1000)
	for i := range tenants {
		tenants[i] = uuid.New()
	}
	b.ReportAllocs()
	b.SetParallelism(8 / max(1, runtime.GOMAXPROCS(0)))
	cpu := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			d, release := l.Acquire(bg, tenants[rng.IntN(len(tenants))], tenancy.Limits{})
			if !d.Allowed {
				b.Fatal("refused", d.Reason)
			}
			spin(2 * time.Microsecond)
			release()
		}
	})
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// spin works for d without yielding the thread.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
