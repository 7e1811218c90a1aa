package daemon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"portknock/config"
)

// syncBuffer is a log destination tests can read while the daemon writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// doorConfig is a TOML configuration whose doors report to signal, a FIFO
// the test reads: each line there is a command that ran.
func doorConfig(t *testing.T, input, signal, extraDoors string) *config.Config {
	t.Helper()
	src := fmt.Sprintf(`
[daemon]
state_dir = %q

[[input]]
type = "text"
path = %q
format = "simple"

[[door]]
name = "ssh"
sequence = ["7000/tcp", "8000/tcp", "9000/udp"]
seq_timeout = "1m"
start_command = ["sh", "-c", "echo open %%DOOR%% %%IP%% > %s"]
stop_command = ["sh", "-c", "echo close %%DOOR%% %%IP%% > %s"]
cmd_timeout = "1h"
%s`, t.TempDir(), input, signal, signal, extraDoors)
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "test.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mkfifo(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// signals reads the lines commands write to the signal FIFO.
func signals(t *testing.T, path string) <-chan string {
	t.Helper()
	ch := make(chan string, 16)
	// Opening read-write keeps the FIFO open across writers and never
	// blocks, so each command's single write arrives as one line.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	go func() {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	return ch
}

func expect(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	expectWithin(t, ch, want, 10*time.Second)
}

// expectWithin is expect for a command that comes only after work whose
// length depends on the machine's speed, such as a flood.
func expectWithin(t *testing.T, ch <-chan string, want string, limit time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("command ran %q, want %q", got, want)
		}
	case <-time.After(limit):
		t.Fatalf("no command ran within %v; want %q", limit, want)
	}
}

// running is a daemon started by a test; done closes when Run returns,
// after which err holds its result.
type running struct {
	*Daemon
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// expectSet waits for commands that may run in any order.
func expectSet(t *testing.T, ch <-chan string, want ...string) {
	t.Helper()
	var got []string
	for range want {
		select {
		case line := <-ch:
			got = append(got, line)
		case <-time.After(10 * time.Second):
			t.Fatalf("commands ran %q; want %q", got, want)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("commands ran %q; want %q", got, want)
	}
}

func start(t *testing.T, cfg *config.Config, opts Options) *running {
	t.Helper()
	d, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, d)
}

// startOnPipe starts a daemon on cfg whose stdin input reads what the
// test writes to w, logging to logs, whose tail the test prints if it
// fails.
func startOnPipe(t *testing.T, cfg *config.Config) (d *running, w *os.File, logs *syncBuffer) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	logs = new(syncBuffer)
	d = start(t, cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Stdin: r})
	t.Cleanup(func() {
		if t.Failed() {
			log := logs.String()
			if len(log) > 8<<10 {
				log = "…" + log[len(log)-8<<10:]
			}
			t.Logf("daemon log (tail):\n%s", log)
		}
	})
	return d, w, logs
}

// run runs a daemon until the test ends.
func run(t *testing.T, d *Daemon) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Daemon: d, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = d.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// stop stops the daemon as a signal would, and waits for it.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
		return nil
	}
}

func TestOpensAndClosesOnStop(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	var logs syncBuffer
	d := start(t, doorConfig(t, in, sig, ""), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	writeLines(t, in, "7000 192.0.2.10", "not a knock line", "22 192.0.2.10", "8000/tcp 192.0.2.10", "9000/udp 192.0.2.10")
	expect(t, ch, "open ssh 192.0.2.10")
	// Stopping the daemon closes the open door first.
	done := make(chan error, 1)
	go func() { done <- d.stop(t) }()
	expect(t, ch, "close ssh 192.0.2.10")
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, want := range []string{"knock sequence complete", "door=ssh", "src=192.0.2.10"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// writeLines writes to a FIFO input as one writer that then goes away.
func writeLines(t *testing.T, fifo string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

func TestReloadKeepsProgressAndSurvivesBadConfig(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	first := doorConfig(t, in, sig, "")
	second := doorConfig(t, in, sig, `
[[door]]
name = "web"
sequence = ["1000", "2000"]
start_command = ["sh", "-c", "echo open %DOOR% %IP% > `+sig+`"]
`)
	next := make(chan func() (*config.Config, error), 1)
	var logs syncBuffer
	d := start(t, first, Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Load:   func() (*config.Config, error) { return (<-next)() },
	})

	// A knock in progress when the configuration is reloaded...
	writeLines(t, in, "7000 2001:db8::7")
	ctx := context.Background()
	next <- func() (*config.Config, error) { return second, nil }
	if err := d.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	// ...completes afterwards, and the new door works.
	writeLines(t, in, "8000 2001:db8::7", "9000/udp 2001:db8::7", "1000 192.0.2.1", "2000 192.0.2.1")
	expectSet(t, ch, "open ssh 2001:db8::7", "open web 192.0.2.1")

	// A broken configuration is refused and the running one stays.
	next <- func() (*config.Config, error) { return nil, errors.New("test.toml:3: door: bad") }
	if err := d.Reload(ctx); err == nil {
		t.Fatal("Reload accepted a broken configuration")
	}
	if !strings.Contains(logs.String(), "reload failed; keeping the running configuration") {
		t.Errorf("refused reload not logged:\n%s", logs.String())
	}
	writeLines(t, in, "1000 192.0.2.2", "2000 192.0.2.2")
	expect(t, ch, "open web 192.0.2.2")
}

func TestFIFOWriterGoesAwayDaemonStays(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	_, log := debugLogs(t)
	start(t, doorConfig(t, in, sig, ""), Options{Logger: log})
	// Three writers, one knock each: the daemon keeps reading.
	writeLines(t, in, "7000 192.0.2.5")
	writeLines(t, in, "8000 192.0.2.5")
	writeLines(t, in, "9000/udp 192.0.2.5")
	expect(t, ch, "open ssh 192.0.2.5")
}

func TestDryRunRunsNothing(t *testing.T) {
	in := mkfifo(t, "input")
	marker := filepath.Join(t.TempDir(), "ran")
	var logs syncBuffer
	d := start(t, doorConfig(t, in, marker, ""), Options{DryRun: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	writeLines(t, in, "7000 192.0.2.10", "8000 192.0.2.10", "9000/udp 192.0.2.10")
	waitLog(t, &logs, "msg=opened")
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dry run ran a command: %v", err)
	}
	if !strings.Contains(logs.String(), `command="sh -c \"echo open ssh 192.0.2.10 > `+marker) {
		t.Errorf("dry run did not log the command:\n%s", logs.String())
	}
}

// waitLog waits until the log holds want.
func waitLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never showed %q:\n%s", want, logs.String())
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not ordering
	}
}

func TestNewNeedsAnInput(t *testing.T) {
	cfg := doorConfig(t, "-", "/dev/null", "")
	cfg.Inputs = nil
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "-i") {
		t.Errorf("New without inputs: %v; want an error that suggests -i", err)
	}
}

func TestDebugLogsEveryKnockInTheKnockSpace(t *testing.T) {
	in := mkfifo(t, "input")
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := start(t, doorConfig(t, in, "/dev/null", ""), Options{Logger: log, DryRun: true})
	writeLines(t, in, "22 192.0.2.10", "7000 192.0.2.10")
	waitLog(t, &logs, "msg=knock src=192.0.2.10 port=7000 proto=tcp")
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); strings.Contains(got, "port=22") {
		t.Errorf("a packet outside the knock space was logged as a knock:\n%s", got)
	}
}

// debugLogs returns a logger at debug level writing to a buffer, whose
// contents are logged when the test fails.
func debugLogs(t *testing.T) (*syncBuffer, *slog.Logger) {
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	return logs, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeClocks are a wall clock and a monotonic clock a test steps apart.
type fakeClocks struct {
	wall atomic.Int64 // Unix ns
	mono atomic.Int64 // ns
}

func (c *fakeClocks) now() time.Time         { return time.Unix(0, c.wall.Load()) }
func (c *fakeClocks) elapsed() time.Duration { return time.Duration(c.mono.Load()) }
func (c *fakeClocks) step(wall, mono time.Duration) {
	c.wall.Add(int64(wall + mono))
	c.mono.Add(int64(mono))
}

// TestWallClockStepNeitherExtendsNorCuts runs knocks across wall-clock steps
// of an hour: the monotonic clock alone decides what timed out.
func TestWallClockStepNeitherExtendsNorCuts(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	logs, log := debugLogs(t)
	clk := &fakeClocks{}
	clk.wall.Store(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).UnixNano())
	start(t, doorConfig(t, in, sig, ""), Options{Logger: log, Now: clk.now, Mono: clk.elapsed})

	// The wall clock goes back an hour while 61 s pass: seq_timeout (1m)
	// is over, so the attempt of .10 must not complete.
	writeLines(t, in, "7000 192.0.2.10")
	waitLog(t, logs, "msg=knock src=192.0.2.10 port=7000")
	clk.step(-time.Hour, 61*time.Second)
	writeLines(t, in, "8000 192.0.2.10", "9000/udp 192.0.2.10")
	waitLog(t, logs, `msg="knock timed out" door=ssh src=192.0.2.10`)

	// The wall clock goes back an hour again while 2 s pass: the attempt of
	// .11 is alive and completes.
	writeLines(t, in, "7000 192.0.2.11")
	waitLog(t, logs, "msg=knock src=192.0.2.11 port=7000")
	clk.step(-time.Hour, 2*time.Second)
	writeLines(t, in, "8000 192.0.2.11", "9000/udp 192.0.2.11")
	expect(t, ch, "open ssh 192.0.2.11")

	// Forward an hour with 1 s passing: still alive.
	writeLines(t, in, "7000 192.0.2.12")
	waitLog(t, logs, "msg=knock src=192.0.2.12 port=7000")
	clk.step(time.Hour, time.Second)
	writeLines(t, in, "8000 192.0.2.12", "9000/udp 192.0.2.12")
	expect(t, ch, "open ssh 192.0.2.12")
	if strings.Contains(logs.String(), `complete" door=ssh src=192.0.2.10`) {
		t.Error("an attempt older than seq_timeout on the monotonic clock opened")
	}
}
