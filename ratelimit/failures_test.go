package ratelimit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An address that keeps sending failed credentials is throttled; another
// address is not, nor is another IPv6 /64, but the rest of the same /64 is.
func TestFailedCredentialsThrottlePerAddress(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	f := NewFailures(3, time.Hour)
	f.now = func() time.Time { return now }
	a, b := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("198.51.100.9")
	for range 3 {
		_, throttled := f.Throttled(a)
		require.False(t, throttled)
		f.Failed(a)
	}
	wait, throttled := f.Throttled(a)
	require.True(t, throttled, "past 3 failures an hour")
	require.InDelta(t, (20 * time.Minute).Seconds(), wait.Seconds(), 1, "one failure's worth refills in window/limit")
	_, throttled = f.Throttled(netip.MustParseAddr("::ffff:203.0.113.7"))
	require.True(t, throttled, "an IPv4-mapped address is that address")
	_, throttled = f.Throttled(b)
	require.False(t, throttled, "another address is not throttled")

	v6 := netip.MustParseAddr("2001:db8:1:2::1")
	for range 3 {
		f.Failed(v6)
	}
	_, throttled = f.Throttled(netip.MustParseAddr("2001:db8:1:2:ffff::9"))
	require.True(t, throttled, "the rest of the /64 is the same client")
	_, throttled = f.Throttled(netip.MustParseAddr("2001:db8:1:3::1"))
	require.False(t, throttled, "another /64 is another client")

	now = now.Add(20*time.Minute + time.Second)
	_, throttled = f.Throttled(a)
	require.False(t, throttled, "after window/limit one more attempt may go")
	f.Failed(a)
	_, throttled = f.Throttled(a)
	require.True(t, throttled)
	require.EqualValues(t, 2, f.Stats().Entries)

	var off *Failures
	require.Nil(t, NewFailures(0, time.Minute))
	off.Failed(a)
	_, throttled = off.Throttled(a)
	require.False(t, throttled)
}
