package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// record is one captured log line, attributes flattened to strings.
type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.level, r.msg)
	for k, v := range r.attrs {
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// logCapture is a slog handler that keeps every record and can wait for
// one, so tests synchronise on what the code reports instead of on time.
type logCapture struct {
	mu      sync.Mutex
	records []record
	changed chan struct{} // closed and replaced on every record
}

func newLogCapture() *logCapture {
	return &logCapture{changed: make(chan struct{})}
}

func (c *logCapture) logger() *slog.Logger { return slog.New(&captureHandler{c: c}) }

// all returns a copy of the records so far.
func (c *logCapture) all() []record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]record(nil), c.records...)
}

// find returns the records with message msg.
func (c *logCapture) find(msg string) []record {
	var out []record
	for _, r := range c.all() {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// waitFor blocks until n records with message msg exist, failing the test
// after a generous real-time limit (a hang means the code is broken).
func (c *logCapture) waitFor(t *testing.T, msg string, n int) []record {
	t.Helper()
	limit := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		var got []record
		for _, r := range c.records {
			if r.msg == msg {
				got = append(got, r)
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-limit:
			t.Fatalf("no %d %q log records; have:\n%s", n, msg, c.dump())
		}
	}
}

func (c *logCapture) dump() string {
	var b strings.Builder
	for _, r := range c.all() {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

type captureHandler struct {
	c     *logCapture
	attrs []slog.Attr
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.c.mu.Lock()
	h.c.records = append(h.c.records, rec)
	close(h.c.changed)
	h.c.changed = make(chan struct{})
	h.c.mu.Unlock()
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{c: h.c, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }
