// Package logtest captures what code logs through log/slog, so that tests
// wait for and check log lines instead of sleeping.
package logtest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Record is one captured log line, attributes flattened to strings.
type Record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// String formats the record for a test's failure message.
func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Level, r.Msg)
	for k, v := range r.Attrs {
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// Capture is a slog handler that keeps every record and can wait for
// one, so tests synchronise on what the code reports instead of on time.
type Capture struct {
	mu      sync.Mutex
	records []Record
	changed chan struct{} // closed and replaced on every record
}

// New returns an empty Capture.
func New() *Capture {
	return &Capture{changed: make(chan struct{})}
}

// Logger returns a logger whose every record c keeps, at every level.
func (c *Capture) Logger() *slog.Logger { return slog.New(&captureHandler{c: c}) }

// All returns a copy of the records so far.
func (c *Capture) All() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Record(nil), c.records...)
}

// Find returns the records with message msg.
func (c *Capture) Find(msg string) []Record {
	var out []Record
	for _, r := range c.All() {
		if r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// WaitFor blocks until n records with message msg exist, failing the test
// after a generous real-time limit (a hang means the code is broken).
func (c *Capture) WaitFor(t *testing.T, msg string, n int) []Record {
	t.Helper()
	limit := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		var got []Record
		for _, r := range c.records {
			if r.Msg == msg {
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
			t.Fatalf("no %d %q log records; have:\n%s", n, msg, c.Dump())
		}
	}
}

// Dump formats every record, one a line, for a failure message.
func (c *Capture) Dump() string {
	var b strings.Builder
	for _, r := range c.All() {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// captureHandler is the slog.Handler behind Capture.Logger.
type captureHandler struct {
	c     *Capture
	attrs []slog.Attr
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := Record{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
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
