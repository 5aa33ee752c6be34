package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/tenancy"
)

func TestBucketPerTenant(t *testing.T) {
	t.Parallel()
	l := New(Defaults{RatePerSecond: 2, Burst: 3})
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return clock }
	a, b := uuid.New(), uuid.New()
	for i := range 3 {
		d, release := l.Acquire(bg, a, tenancy.Limits{})
		require.True(t, d.Allowed, "request %d within the burst", i)
		require.Equal(t, 3, d.Quota)
		require.Equal(t, 2-i, d.Remaining)
		require.Equal(t, 1500*time.Millisecond, d.Window, "3 tokens at 2/s")
		release()
	}
	d, _ := l.Acquire(bg, a, tenancy.Limits{})
	require.False(t, d.Allowed)
	require.Equal(t, ReasonRate, d.Reason)
	require.Equal(t, 500*time.Millisecond, d.RetryAfter, "one token comes back in 1/2 s")
	require.Equal(t, 1500*time.Millisecond, d.Reset)

	other, release := l.Acquire(bg, b, tenancy.Limits{})
	require.True(t, other.Allowed, "another tenant has its own bucket")
	release()

	clock = clock.Add(500 * time.Millisecond)
	d, release = l.Acquire(bg, a, tenancy.Limits{})
	require.True(t, d.Allowed, "refilled")
	release()
}

func TestOverridesAndNoLimit(t *testing.T) {
	t.Parallel()
	l := New(Defaults{RatePerSecond: 1, Burst: 1})
	a := uuid.New()
	for range 50 {
		d, release := l.Acquire(bg, a, tenancy.Limits{RatePerSecond: 1000, Burst: 100})
		require.True(t, d.Allowed)
		require.Equal(t, 100, d.Quota)
		release()
	}
	// The override is dropped: back to the default bucket, which starts full.
	d, release := l.Acquire(bg, a, tenancy.Limits{})
	require.True(t, d.Allowed)
	release()
	d, _ = l.Acquire(bg, a, tenancy.Limits{})
	require.False(t, d.Allowed)

	unlimited := New(Defaults{})
	for range 1000 {
		d, release := unlimited.Acquire(bg, a, tenancy.Limits{})
		require.True(t, d.Allowed)
		require.Zero(t, d.Quota, "no RateLimit headers without a rate")
		release()
	}
}

func TestConcurrencyCap(t *testing.T) {
	t.Parallel()
	l := New(Defaults{MaxConcurrency: 2})
	a, b := uuid.New(), uuid.New()
	_, r1 := l.Acquire(bg, a, tenancy.Limits{})
	_, r2 := l.Acquire(bg, a, tenancy.Limits{})
	d, _ := l.Acquire(bg, a, tenancy.Limits{})
	require.False(t, d.Allowed)
	require.Equal(t, ReasonConcurrency, d.Reason)
	require.Equal(t, time.Second, d.RetryAfter)
	d, rb := l.Acquire(bg, b, tenancy.Limits{})
	require.True(t, d.Allowed, "the cap is per tenant")
	rb()
	r1()
	r1() // releasing twice is harmless
	d, r3 := l.Acquire(bg, a, tenancy.Limits{})
	require.True(t, d.Allowed)
	d, _ = l.Acquire(bg, a, tenancy.Limits{})
	require.False(t, d.Allowed, "the double release did not free a second slot")
	r2()
	r3()
	d, _ = l.Acquire(bg, a, tenancy.Limits{MaxConcurrency: 1})
	require.True(t, d.Allowed, "override")
	d, _ = l.Acquire(bg, a, tenancy.Limits{MaxConcurrency: 1})
	require.False(t, d.Allowed)
}

func TestIdleTenantsAreForgotten(t *testing.T) {
	t.Parallel()
	l := New(Defaults{RatePerSecond: 10})
	clock := time.Now()
	l.now = func() time.Time { return clock }
	for range sweepAbove {
		_, release := l.Acquire(bg, uuid.New(), tenancy.Limits{})
		release()
	}
	busy := uuid.New()
	_, hold := l.Acquire(bg, busy, tenancy.Limits{})
	defer hold()
	clock = clock.Add(2 * idleAfter)
	_, release := l.Acquire(bg, uuid.New(), tenancy.Limits{})
	release()
	require.Len(t, l.tenants, 2, "only the busy tenant and the newcomer remain")
}

var bg = context.Background()
