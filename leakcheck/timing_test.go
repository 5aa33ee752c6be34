package leakcheck

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The timing vector fails for a difference that persists and passes for
// requests that take about as long.
func TestCompareTimes(t *testing.T) {
	c := &checker{rep: &Report{}}
	fast := func() { time.Sleep(100 * time.Microsecond) } // about 1 ms: sleeps round up here
	slow := func() { time.Sleep(20 * time.Millisecond) }
	c.compareTimes("same", fast, fast)
	c.compareTimes("slower", fast, slow)
	c.compareTimes("faster", slow, fast)
	// 6x: inside the 3-10x band that is confirmed by a second measurement,
	// with room on both sides for a loaded machine's noise (at 4x, one run
	// under load measured 2.7x the second time).
	base := func() { time.Sleep(2 * time.Millisecond) }
	sixTimes := func() { time.Sleep(12 * time.Millisecond) }
	c.compareTimes("6x", base, sixTimes)
	require.Len(t, c.rep.Results, 4)
	require.True(t, c.rep.Results[0].Pass, c.rep.Results[0].Detail)
	for _, r := range c.rep.Results[1:] {
		require.False(t, r.Pass, "%s: %s", r.Vector, r.Detail)
	}
	require.NotContains(t, c.rep.Results[1].Detail, "; then ", "past 10x fails on one measurement")
	require.Contains(t, c.rep.Results[3].Detail, "; then ", "3-10x is measured twice before it is reported")
}
