//go:build unix

package textlog

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"portknock/input"
	"portknock/sequence"
)

var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// recorder is a slog handler that keeps records for inspection.
type recorder struct {
	mu      sync.Mutex
	records []string
	attrs   []slog.Attr
	// messages receives every record's message, for tests that wait for
	// the source to reach a point it logs.
	messages chan string
}

func newRecorder() *recorder { return &recorder{messages: make(chan string, 1000)} }

// waitFor receives messages until msg arrives.
func (r *recorder) waitFor(t *testing.T, msg string) {
	t.Helper()
	for {
		select {
		case m := <-r.messages:
			if m == msg {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for log message %q", msg)
		}
	}
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	for _, a := range r.attrs {
		b.WriteString(" " + a.String())
	}
	rec.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	r.mu.Lock()
	r.records = append(r.records, b.String())
	r.mu.Unlock()
	select {
	case r.messages <- rec.Message:
	default:
	}
	return nil
}
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &childRecorder{r, append(append([]slog.Attr{}, r.attrs...), as...)}
}
func (r *recorder) WithGroup(string) slog.Handler { return r }

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.records...)
}

// childRecorder carries With attributes but records into its parent.
type childRecorder struct {
	parent *recorder
	attrs  []slog.Attr
}

func (c *childRecorder) Enabled(ctx context.Context, l slog.Level) bool {
	return c.parent.Enabled(ctx, l)
}
func (c *childRecorder) Handle(ctx context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(c.attrs...)
	return c.parent.Handle(ctx, rec)
}
func (c *childRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &childRecorder{c.parent, append(append([]slog.Attr{}, c.attrs...), as...)}
}
func (c *childRecorder) WithGroup(string) slog.Handler { return c }

// run starts s.Run and returns the events channel and Run's result.
func run(t *testing.T, ctx context.Context, s *Source) (<-chan sequence.Event, chan error) {
	t.Helper()
	if s.Now == nil {
		s.Now = func() time.Time { return testTime }
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	events := make(chan sequence.Event, 100)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(ev *sequence.Event, _ input.Mode) bool { events <- *ev; return true }) }()
	return events, done
}

// expect receives the wanted events. Run may return while its last events
// are still buffered; expect then puts Run's result back for waitErr.
func expect(t *testing.T, events <-chan sequence.Event, done chan error, want ...sequence.Event) {
	t.Helper()
	for i, w := range want {
		var ev sequence.Event
		select {
		case ev = <-events:
		case err := <-done:
			select {
			case ev = <-events:
				done <- err
			default:
				t.Fatalf("Run returned %v before event %d", err, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for event %d", i)
		}
		if ev != w {
			t.Fatalf("event %d = %+v, want %+v", i, ev, w)
		}
	}
}

func knock(input, src string, port uint16, proto sequence.Proto) sequence.Event {
	return sequence.Event{Src: netip.MustParseAddr(src), Port: port, Proto: proto, Time: testTime, Input: input}
}

func checkStats(t *testing.T, s *Source, want input.Stats) {
	t.Helper()
	want.Unit = "lines"
	// The source counts an event once emit has returned, which may be
	// after the test has received it: the counters are given time to
	// catch up (they only grow) before they are compared.
	got := s.Stats()
	for deadline := time.Now().Add(10 * time.Second); !reflect.DeepEqual(got, want) && time.Now().Before(deadline); got = s.Stats() {
		time.Sleep(time.Millisecond) // polling counters nothing signals
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
	var sum uint64
	for _, n := range got.Skipped {
		sum += n
	}
	if got.Read != got.Events+sum {
		t.Errorf("stats %+v: read != events + skipped", got)
	}
}

func skipped(pairs ...any) (a [reasonCount]uint64) {
	for i := 0; i < len(pairs); i += 2 {
		a[pairs[i].(Reason)] = uint64(pairs[i+1].(int))
	}
	return a
}

func mkfifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "knock.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("cannot make a FIFO: %v", err)
	}
	return path
}

// openWriter opens the FIFO for writing, which waits until Run has it open
// for reading.
func openWriter(t *testing.T, path string) *os.File {
	t.Helper()
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestSourceFIFO(t *testing.T) {
	path := mkfifo(t)
	rec := newRecorder()
	s := &Source{Name: "fifo", Path: path, MaxLine: 40, Logger: slog.New(rec)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, done := run(t, ctx, s)

	write := func(text string) {
		t.Helper()
		w := openWriter(t, path)
		if _, err := w.WriteString(text); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	write("7000 192.0.2.7\n8000/udp 2001:db8::1\r\ngarbage\n" + strings.Repeat("x", 100) + "\n")
	// Writers follow each other at once, without waiting for the daemon
	// to notice the first one went: nothing may be lost in between.
	write("9000 ::ffff:192.0.2.8\n")
	write("")
	write("9001 192.0.2.9\n")
	expect(t, events, done,
		knock("fifo", "192.0.2.7", 7000, sequence.TCP),
		knock("fifo", "2001:db8::1", 8000, sequence.UDP),
		knock("fifo", "192.0.2.8", 9000, sequence.TCP),
		knock("fifo", "192.0.2.9", 9001, sequence.TCP))

	// A writer that vanishes mid-line: its torn line joins the next
	// writer's first line, which is then not a knock; the rest is.
	write("10000 192.0.2.9")
	write("7000 192.0.2.10\n7001 192.0.2.11\n")
	expect(t, events, done, knock("fifo", "192.0.2.11", 7001, sequence.TCP))
	checkStats(t, s, input.Stats{Read: 8, Events: 5, Skipped: skipped(ReasonUnrecognized, 2, ReasonTooLong, 1)})

	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Run = %v, want nil after cancellation", err)
	}
	for _, l := range rec.lines() {
		if strings.HasPrefix(l, "WARN") {
			t.Errorf("unexpected warning: %s", l)
		}
	}
	select {
	case ev := <-events:
		t.Errorf("unexpected event %+v", ev)
	default:
	}
}

// TestSourceFIFOCancelWithoutWriter cancels while no writer has ever
// opened the FIFO: Run must return.
func TestSourceFIFOCancelWithoutWriter(t *testing.T) {
	for range 20 {
		path := mkfifo(t)
		s := &Source{Name: "fifo", Path: path}
		ctx, cancel := context.WithCancel(context.Background())
		_, done := run(t, ctx, s)
		cancel()
		if err := waitErr(t, done); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	}
}

// stdinPipe returns a pipe whose read end is like os.Stdin when a shell
// pipes into the daemon: a blocking descriptor wrapped by os.NewFile, which
// Go reads with plain blocking system calls. (os.Pipe's ends are already
// pollable and would not show whether Run can interrupt such reads.)
func stdinPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var fds [2]int
	syscall.ForkLock.RLock()
	err := syscall.Pipe(fds[:])
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	r = os.NewFile(uintptr(fds[0]), "stdin-pipe")
	w = os.NewFile(uintptr(fds[1]), "stdin-pipe-writer")
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestSourceStdinPipe(t *testing.T) {
	pr, pw := stdinPipe(t)
	s := &Source{Name: "stdin", Path: "-", Stdin: pr, Parser: Parser{Prefix: "knock"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, done := run(t, ctx, s)
	if _, err := pw.WriteString("knock 7000 192.0.2.7\n7000 192.0.2.7\nknock 8000/UDP fe80::1%eth0\n"); err != nil {
		t.Fatal(err)
	}
	expect(t, events, done,
		knock("stdin", "192.0.2.7", 7000, sequence.TCP),
		knock("stdin", "fe80::1", 8000, sequence.UDP))
	// Run is blocked reading a pipe nobody writes to.
	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Run = %v, want nil after cancellation", err)
	}
	checkStats(t, s, input.Stats{Read: 3, Events: 2, Skipped: skipped(ReasonPrefix, 1)})
}

func TestSourceStdinEOF(t *testing.T) {
	pr, pw := stdinPipe(t)
	s := &Source{Name: "stdin", Path: "-", Stdin: pr}
	events, done := run(t, context.Background(), s)
	if _, err := pw.WriteString("7000 192.0.2.7\n8000 192.0.2.8"); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	expect(t, events, done,
		knock("stdin", "192.0.2.7", 7000, sequence.TCP),
		knock("stdin", "192.0.2.8", 8000, sequence.TCP))
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Run = %v, want nil at EOF", err)
	}
	checkStats(t, s, input.Stats{Read: 2, Events: 2})
}

func TestSourceStdinDevNull(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &Source{Name: "stdin", Path: "-", Stdin: f}
	_, done := run(t, context.Background(), s)
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Run = %v, want nil at EOF", err)
	}
}

func TestSourceStdinRegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lines")
	if err := os.WriteFile(path, []byte("7000 192.0.2.7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &Source{Name: "stdin", Path: "-", Stdin: f}
	events, done := run(t, context.Background(), s)
	expect(t, events, done, knock("stdin", "192.0.2.7", 7000, sequence.TCP))
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Run = %v, want nil at EOF", err)
	}
}

func TestSourceFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "knocks.log")
	// Lines already in the file are history: not knocks now.
	if err := os.WriteFile(path, []byte("7000 192.0.2.99\n8000 192.0.2.99\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	s := &Source{Name: "file", Path: path, Logger: slog.New(rec)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, done := run(t, ctx, s)
	// Run has the file open at its end once it logs that it follows it;
	// until then an append could land before that end.
	rec.waitFor(t, followingFile)

	appendTo(t, path, "7000 192.0.2.7\r\n0 192.0.2.7\n7000 192.0.2.300\n7000/sctp 192.0.2.7\n\x00\xff\n"+
		strings.Repeat("9", 5000)+"\n9000/udp 2001:0db8:0000:0000:0000:0000:0000:0001")
	expect(t, events, done, knock("file", "192.0.2.7", 7000, sequence.TCP))
	// The last line has no newline yet: a writer may be mid-line.
	appendTo(t, path, "\n")
	expect(t, events, done, knock("file", "2001:db8::1", 9000, sequence.UDP))
	checkStats(t, s, input.Stats{Read: 7, Events: 2, Skipped: skipped(
		ReasonBadPort, 1, ReasonBadAddress, 1, ReasonBadProto, 1, ReasonUnrecognized, 1, ReasonTooLong, 1)})

	// Rotation by rename: the rest of the old file, then the new one from
	// its start, nothing lost or doubled.
	appendTo(t, path, "7001 192.0.2.1\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path+".1", "7002 192.0.2.1\n")
	appendTo(t, path, "7003 192.0.2.1\n")
	expect(t, events, done,
		knock("file", "192.0.2.1", 7001, sequence.TCP),
		knock("file", "192.0.2.1", 7002, sequence.TCP),
		knock("file", "192.0.2.1", 7003, sequence.TCP))

	// Truncation in place (copytruncate): reading starts again at the top.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "followed file was truncated; reading from its start")
	appendTo(t, path, "7004 192.0.2.1\n")
	expect(t, events, done, knock("file", "192.0.2.1", 7004, sequence.TCP))

	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Run = %v, want nil after cancellation", err)
	}
	var debug []string
	for _, l := range rec.lines() {
		if strings.HasPrefix(l, "DEBUG line is not a knock") {
			debug = append(debug, l)
		}
	}
	if len(debug) != 4 {
		t.Fatalf("debug lines for skipped lines = %q, want 4", debug)
	}
	for _, l := range debug {
		if !strings.Contains(l, "input=file") || !strings.Contains(l, "reason=") {
			t.Errorf("debug line %q lacks input or reason", l)
		}
	}
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func TestSourceErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		s    *Source
		want string
	}{
		{"directory", &Source{Name: "x", Path: dir}, "neither a FIFO nor a regular file"},
		{"bad format", &Source{Name: "x", Path: "-", Parser: Parser{Format: 77}}, "unknown format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Run(context.Background(), func(*sequence.Event, input.Mode) bool { t.Error("event from a broken source"); return true })
			// The caller names the input: an error naming it too
			// would be logged with the name twice.
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), `"x"`) {
				t.Fatalf("Run = %v, want an error containing %q and not the input's name", err, tc.want)
			}
		})
	}
}

// TestSourceFileNotYetThere: a followed file that does not exist yet is
// waited for with one warning, as tail -F does, and read from its start
// once it appears: every line in a new log is news.
func TestSourceFileNotYetThere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.log")
	rec := newRecorder()
	s := &Source{Name: "file", Path: path, Logger: slog.New(rec)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, done := run(t, ctx, s)
	rec.waitFor(t, waitingForFile)

	// Written before the follower sees the file: still read, from the top.
	appendTo(t, path, "7000 192.0.2.7\n")
	rec.waitFor(t, appearedFile)
	expect(t, events, done, knock("file", "192.0.2.7", 7000, sequence.TCP))
	appendTo(t, path, "8000 192.0.2.7\n")
	expect(t, events, done, knock("file", "192.0.2.7", 8000, sequence.TCP))

	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Run = %v, want nil after cancellation", err)
	}
	var warnings []string
	for _, l := range rec.lines() {
		if strings.HasPrefix(l, "WARN ") {
			warnings = append(warnings, l)
		}
	}
	want := "WARN " + waitingForFile + " path=" + path + " err=open " + path + ": no such file or directory input=file"
	if len(warnings) != 1 || warnings[0] != want {
		t.Errorf("warnings = %q, want exactly %q", warnings, want)
	}
}

// TestSourceFileAppearsUntrusted: a file that appears later is judged as
// one present at start would have been.
func TestSourceFileAppearsUntrusted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.log")
	rec := newRecorder()
	s := &Source{Name: "file", Path: path, Logger: slog.New(rec)}
	_, done := run(t, context.Background(), s)
	rec.waitFor(t, waitingForFile)
	// Made aside and renamed into place, so that it appears writable by all.
	appendTo(t, path+".tmp", "7000 192.0.2.7\n")
	if err := os.Chmod(path+".tmp", 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	err := waitErr(t, done)
	if err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("Run = %v, want the appeared file refused as not trusted", err)
	}
}
