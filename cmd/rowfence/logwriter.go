package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The server writes a log line per request (the access log). Written one by
// one, that is a write system call per request, a few percent of the
// server's CPU under load (bench/RESULTS.md). logWriter batches the lines:
// they reach the output at most logFlushInterval after they were logged, at
// once when logFlushBytes are pending, and at once for a warning or an error
// (flushingHandler). run flushes what is left before it returns, so a
// graceful stop loses nothing; a process killed outright (SIGKILL, a crash in
// another goroutine) loses at most the last logFlushInterval of lines.
const (
	logFlushInterval = 100 * time.Millisecond
	logFlushBytes    = 32 << 10
)

type logWriter struct {
	mu      sync.Mutex
	out     io.Writer
	buf     []byte
	timer   *time.Timer
	pending bool // the timer will flush
}

func newLogWriter(out io.Writer) *logWriter {
	l := &logWriter{out: out}
	l.timer = time.AfterFunc(time.Hour, l.Flush)
	l.timer.Stop()
	return l
}

// Write takes one log line; slog writes each record with one call.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) >= logFlushBytes {
		return len(p), l.flushLocked()
	}
	if !l.pending {
		l.pending = true
		l.timer.Reset(logFlushInterval)
	}
	return len(p), nil
}

// Flush writes out every pending line.
func (l *logWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.flushLocked()
}

func (l *logWriter) flushLocked() error {
	l.pending = false
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.out.Write(l.buf)
	if cap(l.buf) > 4*logFlushBytes { // a burst of huge lines: don't keep the memory
		l.buf = nil
	} else {
		l.buf = l.buf[:0]
	}
	return err
}

// flushingHandler flushes its logWriter after every record of level Warn or
// above: those lines are read when something is wrong, often just before the
// process stops.
type flushingHandler struct {
	slog.Handler
	w *logWriter
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.w.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.w}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.w}
}
