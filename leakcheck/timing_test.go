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
	fast := func() { time.Sleep(100 * time.Microsecond) }
	slow := func() { time.Sleep(5 * time.Millisecond) }
	c.compareTimes("same", fast, fast)
	c.compareTimes("slower", fast, slow)
	c.compareTimes("faster", slow, fast)
	require.Len(t, c.rep.Results, 3)
	require.True(t, c.rep.Results[0].Pass, c.rep.Results[0].Detail)
	require.False(t, c.rep.Results[1].Pass, c.rep.Results[1].Detail)
	require.False(t, c.rep.Results[2].Pass, c.rep.Results[2].Detail)
	require.Contains(t, c.rep.Results[1].Detail, "; then ", "a difference is measured twice before it is reported")
}
