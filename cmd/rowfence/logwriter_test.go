package main

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// countingWriter records what reaches the output and in how many writes.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	b      strings.Builder
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.b.Write(p)
}

func (c *countingWriter) state() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.b.String()
}

func TestLogWriterBatchesAndFlushes(t *testing.T) {
	out := &countingWriter{}
	lw := newLogWriter(out)
	log := slog.New(flushingHandler{slog.NewJSONHandler(lw, nil), lw})

	for i := range 200 {
		log.Info("request", "n", i)
	}
	// Every line arrives, in order, within the flush interval, in far fewer
	// writes than lines.
	require.Eventually(t, func() bool {
		_, s := out.state()
		return strings.Count(s, "\n") == 200
	}, 5*time.Second, 10*time.Millisecond)
	writes, s := out.state()
	require.Less(t, writes, 50, "lines are batched")
	require.Less(t, strings.Index(s, `"n":0}`), strings.Index(s, `"n":199}`))

	// A warning is out when the call returns, with what was logged before it.
	log.Info("before the warning")
	log.Warn("something is wrong")
	_, s = out.state()
	require.Contains(t, s, "before the warning")
	require.Contains(t, s, "something is wrong")

	// More than logFlushBytes pending is written at once.
	log.Info("big", "blob", strings.Repeat("x", logFlushBytes))
	_, s = out.state()
	require.Contains(t, s, `"msg":"big"`)

	// Attributes and groups keep the flushing.
	log.With("k", "v").WithGroup("g").Error("failed", "x", 1)
	_, s = out.state()
	require.Contains(t, s, `"msg":"failed","k":"v","g":{"x":1}`)

	// Flush writes what is pending (run calls it before returning).
	log.Info("last words")
	lw.Flush()
	_, s = out.state()
	require.Contains(t, s, "last words")
}
