package actions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"portknock/internal/logtest"
	"portknock/sequence"
)

// epoch is the fake clock's start inside a synctest bubble.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// call is one command the fake executor was asked to run.
type call struct {
	at  time.Duration // since epoch
	cmd string
}

// fakeExec stands in for processes under the fake clock. Commands listed
// in slow take that long; commands in fail exit with status 1, always or
// (failFirst) for their first runs.
type fakeExec struct {
	mu        sync.Mutex
	calls     []call
	slow      map[string]time.Duration
	fail      map[string]bool
	failFirst map[string]int
}

func (f *fakeExec) exec(ctx context.Context, c Command, timeout time.Duration) result {
	s := c.String()
	f.mu.Lock()
	f.calls = append(f.calls, call{time.Since(epoch), s})
	d, failing := f.slow[s], f.fail[s]
	if f.failFirst[s] > 0 {
		f.failFirst[s]--
		failing = true
	}
	f.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return result{err: ctx.Err(), exitCode: -1}
		}
	}
	if failing {
		return result{err: errors.New("exit status 1"), exitCode: 1, output: "boom\n"}
	}
	return result{}
}

func (f *fakeExec) setSlow(cmd string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.slow == nil {
		f.slow = map[string]time.Duration{}
	}
	f.slow[cmd] = d
}

func (f *fakeExec) setFail(cmd string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]bool{}
	}
	f.fail[cmd] = true
}

func (f *fakeExec) setFailFirst(cmd string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failFirst == nil {
		f.failFirst = map[string]int{}
	}
	f.failFirst[cmd] = n
}

func (f *fakeExec) got() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// harness runs a Runner with a fake executor inside a synctest bubble.
type harness struct {
	t    *testing.T
	r    *Runner
	fake *fakeExec
	logs *logtest.Capture
	stop context.CancelFunc
	done chan error
}

func startHarness(t *testing.T, doors []Door, opts Options) *harness {
	h := &harness{t: t, fake: &fakeExec{}, logs: logtest.New(), done: make(chan error, 1)}
	opts.Logger = h.logs.Logger()
	h.r = NewRunner(doors, opts)
	h.r.exec = h.fake.exec
	ctx, cancel := context.WithCancel(t.Context())
	h.stop = cancel
	go func() { h.done <- h.r.Run(ctx) }()
	return h
}

// shutdown cancels Run, waits for it and closes everything as the daemon
// does at exit; the bubble then checks that no goroutine outlived it.
func (h *harness) shutdown() {
	h.t.Helper()
	h.stop()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run returned %v", err)
	}
	h.r.CloseAll(h.t.Context())
}

// sleepTo advances the fake clock to d after the epoch and lets every
// goroutine settle.
func (h *harness) sleepTo(d time.Duration) {
	time.Sleep(d - time.Since(epoch))
	synctest.Wait()
}

// wantCalls checks the commands run so far. Commands due at the same
// instant run on different workers, so calls are compared in (time,
// command) order.
func (h *harness) wantCalls(want ...call) {
	h.t.Helper()
	got := h.fake.got()
	byTime := func(a, b call) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return strings.Compare(a.cmd, b.cmd)
	}
	slices.SortFunc(got, byTime)
	want = slices.Clone(want)
	slices.SortFunc(want, byTime)
	if !slices.Equal(got, want) {
		h.t.Errorf("commands run:\n  %v\nwant\n  %v\nlog:\n%s", got, want, h.logs.Dump())
	}
}

func knock(door, src string) sequence.Match {
	return sequence.Match{
		Door: door,
		Src:  netip.MustParseAddr(src),
		Last: sequence.Step{Port: 9000, Proto: sequence.UDP},
	}
}

var sshDoor = Door{
	Name:       "ssh",
	Start:      Command{Shell: "open %IP%"},
	Start6:     Command{Shell: "open %IP%"},
	Stop:       Command{Shell: "close %IP%"},
	Stop6:      Command{Shell: "close %IP%"},
	CmdTimeout: 10 * time.Second,
}

func TestRunnerClosesAtCmdTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		h.wantCalls(call{0, "open 192.0.2.1"})
		if got := h.r.Stats().PendingCloses; got != 1 {
			t.Errorf("PendingCloses = %d, want 1", got)
		}

		h.sleepTo(10*time.Second - time.Nanosecond)
		h.wantCalls(call{0, "open 192.0.2.1"})

		h.sleepTo(10 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{10 * time.Second, "close 192.0.2.1"})
		if got := h.r.Stats().PendingCloses; got != 0 {
			t.Errorf("PendingCloses after close = %d, want 0", got)
		}
		if n := len(h.logs.Find("opened")); n != 1 {
			t.Errorf("%d opened lines, want 1", n)
		}
		closed := h.logs.Find("closed")
		if len(closed) != 1 || closed[0].Attrs["door"] != "ssh" || closed[0].Attrs["src"] != "192.0.2.1" || closed[0].Attrs["cmd"] != "stop" {
			t.Errorf("closed lines = %v, want one with door, src and cmd", closed)
		}
		h.shutdown()
		// Nothing left to close at shutdown.
		h.wantCalls(call{0, "open 192.0.2.1"}, call{10 * time.Second, "close 192.0.2.1"})
	})
}

func TestRunnerReknockExtends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(5 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		// Another source is its own open.
		h.r.Open(knock("ssh", "192.0.2.2"))
		h.sleepTo(15*time.Second - time.Nanosecond)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{5 * time.Second, "open 192.0.2.2"})

		h.sleepTo(15 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{5 * time.Second, "open 192.0.2.2"},
			call{15 * time.Second, "close 192.0.2.1"}, call{15 * time.Second, "close 192.0.2.2"})

		ext := h.logs.Find("re-knock extends open")
		if len(ext) != 1 || ext[0].Attrs["src"] != "192.0.2.1" || ext[0].Attrs["door"] != "ssh" {
			t.Errorf("extension log = %v, want one for 192.0.2.1", ext)
		}
		if s := h.r.Stats(); s.Extended != 1 || s.Started != 4 {
			t.Errorf("stats = %+v, want Extended 1, Started 4", s)
		}

		// After the close, a knock opens again.
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		if got := h.fake.got(); len(got) != 5 || got[4] != (call{15 * time.Second, "open 192.0.2.1"}) {
			t.Errorf("knock after close: calls %v", got)
		}
		h.shutdown()
	})
}

// TestRunnerReknockWhileStarting extends an open whose start command is
// still running: the start must not run twice.
func TestRunnerReknockWhileStarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.fake.setSlow("open 192.0.2.1", 2*time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(11 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{11 * time.Second, "close 192.0.2.1"})
		h.shutdown()
	})
}

// TestRunnerCloseWaitsForStart: a close never overtakes its start, or a
// slow start would open the door after it was "closed".
func TestRunnerCloseWaitsForStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{CommandTimeout: time.Minute})
		h.fake.setSlow("open 192.0.2.1", 25*time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(25 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{25 * time.Second, "close 192.0.2.1"})
		h.shutdown()
	})
}

// TestRunnerReopenWaitsForClose: a knock that arrives while the close is
// running opens again, but only after that close has finished.
func TestRunnerReopenWaitsForClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.fake.setSlow("close 192.0.2.1", 3*time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(11 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(13 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{10 * time.Second, "close 192.0.2.1"},
			call{13 * time.Second, "open 192.0.2.1"})
		// The new open is closed CmdTimeout after the knock.
		h.sleepTo(21 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{10 * time.Second, "close 192.0.2.1"},
			call{13 * time.Second, "open 192.0.2.1"}, call{21 * time.Second, "close 192.0.2.1"})
		h.shutdown()
	})
}

func TestRunnerFailedStartRetriedOnReknock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.fake.setFail("open 192.0.2.1")
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(4 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(14 * time.Second)
		// The close still runs once, in case the failed start did part
		// of its work.
		h.wantCalls(call{0, "open 192.0.2.1"}, call{4 * time.Second, "open 192.0.2.1"},
			call{14 * time.Second, "close 192.0.2.1"})
		failed := h.logs.Find("command failed")
		if len(failed) != 2 {
			t.Fatalf("failure lines = %v, want 2", failed)
		}
		want := map[string]string{"door": "ssh", "src": "192.0.2.1", "cmd": "start", "exit": "1", "output": "boom", "command": "open 192.0.2.1"}
		for k, v := range want {
			if failed[0].Attrs[k] != v {
				t.Errorf("failure line %s = %q, want %q", k, failed[0].Attrs[k], v)
			}
		}
		if failed[0].Level != slog.LevelError {
			t.Errorf("failure logged at %v", failed[0].Level)
		}
		if s := h.r.Stats(); s.Failed != 2 || s.Extended != 0 {
			t.Errorf("stats = %+v, want Failed 2, Extended 0", s)
		}
		h.shutdown()
	})
}

func TestRunnerDoorWithoutTimedClose(t *testing.T) {
	doors := []Door{
		{Name: "nostop", Start: Command{Shell: "open %IP%"}, CmdTimeout: 10 * time.Second},
		{Name: "notimeout", Start: Command{Shell: "open2 %IP%"}, Stop: Command{Shell: "close2 %IP%"}},
	}
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, doors, Options{})
		h.r.Open(knock("nostop", "192.0.2.1"))
		h.r.Open(knock("notimeout", "192.0.2.1"))
		synctest.Wait()
		h.r.Open(knock("nostop", "192.0.2.1"))
		h.r.Open(knock("notimeout", "192.0.2.1"))
		h.sleepTo(time.Hour)
		if got := h.fake.got(); len(got) != 4 {
			t.Errorf("calls = %v, want the start command four times and no close", got)
		}
		if s := h.r.Stats(); s.PendingCloses != 0 || s.Extended != 0 {
			t.Errorf("stats = %+v", s)
		}
		h.shutdown()
	})
}

func TestRunnerQueueOverflow(t *testing.T) {
	door := Door{Name: "web", Start: Command{Shell: "open %IP%"}}
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{door}, Options{MaxConcurrent: 1, QueueSize: 2})
		h.fake.setSlow("open 192.0.2.1", time.Minute)
		h.r.Open(knock("web", "192.0.2.1"))
		synctest.Wait() // the only worker is now busy
		for i := 2; i <= 5; i++ {
			h.r.Open(knock("web", fmt.Sprintf("192.0.2.%d", i)))
		}
		dropped := h.logs.Find("command queue full, open refused")
		if s := h.r.Stats(); s.Dropped != 2 {
			t.Errorf("Dropped = %d, want 2", s.Dropped)
		}
		if len(dropped) != 2 || dropped[0].Attrs["src"] != "192.0.2.4" || dropped[1].Attrs["src"] != "192.0.2.5" ||
			dropped[0].Attrs["door"] != "web" || dropped[0].Level != slog.LevelWarn {
			t.Errorf("drop lines = %v", dropped)
		}
		h.sleepTo(time.Minute)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{time.Minute, "open 192.0.2.2"}, call{time.Minute, "open 192.0.2.3"})
		h.shutdown()
	})
}

// TestRunnerDroppedOpenNotTracked: an open refused for a full queue must not
// leave a pending close behind, or the next knock would only "extend" a
// door that was never opened.
func TestRunnerDroppedOpenNotTracked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{MaxConcurrent: 1, QueueSize: 1})
		h.fake.setSlow("open 192.0.2.1", 5*time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		h.r.Open(knock("ssh", "192.0.2.2")) // queued
		h.r.Open(knock("ssh", "192.0.2.3")) // refused
		if s := h.r.Stats(); s.Dropped != 1 || s.PendingCloses != 2 {
			t.Errorf("stats = %+v, want Dropped 1, PendingCloses 2", s)
		}
		h.sleepTo(6 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.3"))
		synctest.Wait()
		h.wantCalls(call{0, "open 192.0.2.1"}, call{5 * time.Second, "open 192.0.2.2"}, call{6 * time.Second, "open 192.0.2.3"})
		h.shutdown()
	})
}

func TestRunnerShutdownRunsPendingCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{MaxConcurrent: 1})
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.r.Open(knock("ssh", "2001:db8::1"))
		h.sleepTo(3 * time.Second)
		// A start still waiting behind a slow one when the daemon stops
		// never ran, so it has nothing to close.
		h.fake.setSlow("open 192.0.2.3", time.Hour)
		h.r.Open(knock("ssh", "192.0.2.3"))
		h.r.Open(knock("ssh", "192.0.2.4"))
		synctest.Wait()
		h.shutdown()
		// The slow start was killed by the shutdown, so it counts as a
		// failed start whose partial work is closed like any other.
		h.wantCalls(
			call{0, "open 192.0.2.1"}, call{0, "open 2001:db8::1"}, call{3 * time.Second, "open 192.0.2.3"},
			call{3 * time.Second, "close 192.0.2.1"}, call{3 * time.Second, "close 192.0.2.3"}, call{3 * time.Second, "close 2001:db8::1"},
		)
		if s := h.r.Stats(); s.PendingCloses != 0 {
			t.Errorf("PendingCloses after shutdown = %d", s.PendingCloses)
		}
		// After Run, matches are refused rather than queued forever.
		h.r.Open(knock("ssh", "192.0.2.9"))
		if len(h.logs.Find("runner stopped, match ignored")) != 1 {
			t.Errorf("Open after Run not refused; log:\n%s", h.logs.Dump())
		}
	})
}

// TestRunnerShutdownWaitsForRunningClose: a stop command already running
// when the daemon stops is not killed.
func TestRunnerShutdownWaitsForRunningClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.fake.setSlow("close 192.0.2.1", 5*time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(11 * time.Second)
		h.shutdown()
		if d := time.Since(epoch); d != 15*time.Second {
			t.Errorf("Run returned at %v, want 15s (when the close finished)", d)
		}
		if n := len(h.logs.Find("closed")); n != 1 {
			t.Errorf("%d closed lines, want 1; log:\n%s", n, h.logs.Dump())
		}
	})
}

func TestRunnerIPv6Commands(t *testing.T) {
	door := Door{
		Name:   "ssh",
		Start:  Command{Shell: "iptables -A %IP%"},
		Start6: Command{Argv: []string{"ip6tables", "-A", "%IP%"}},
		Stop:   Command{Shell: "iptables -D %IP%"},
		// As the configuration fills an unset stop_command_6.
		Stop6:      Command{Shell: "iptables -D %IP%"},
		CmdTimeout: time.Second,
	}
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{door}, Options{})
		h.r.Open(knock("ssh", "2001:db8::7"))
		h.sleepTo(time.Second)
		h.r.Open(knock("ssh", "192.0.2.7"))
		h.sleepTo(2 * time.Second)
		h.wantCalls(
			call{0, "ip6tables -A 2001:db8::7"},
			call{time.Second, "iptables -D 2001:db8::7"},
			call{time.Second, "iptables -A 192.0.2.7"},
			call{2 * time.Second, "iptables -D 192.0.2.7"},
		)
		h.shutdown()
	})
}

func TestRunnerSetDoors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		changed := sshDoor
		changed.Stop = Command{Shell: "new-close %IP%"}
		changed.CmdTimeout = time.Minute
		h.r.SetDoors([]Door{changed})
		h.r.Open(knock("ssh", "192.0.2.2"))
		h.sleepTo(5 * time.Second)
		h.r.SetDoors(nil)
		h.r.Open(knock("ssh", "192.0.2.3"))
		h.sleepTo(time.Minute)
		// The first open closes with the command it was opened with,
		// although its door was changed and then removed.
		h.wantCalls(call{0, "open 192.0.2.1"}, call{0, "open 192.0.2.2"},
			call{10 * time.Second, "close 192.0.2.1"}, call{time.Minute, "new-close 192.0.2.2"})
		unknown := h.logs.Find("match for unknown door ignored")
		if len(unknown) != 1 || unknown[0].Attrs["src"] != "192.0.2.3" {
			t.Errorf("unknown door lines = %v", unknown)
		}
		h.shutdown()
	})
}

func TestRunnerDryRun(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	door := Door{
		Name:       "ssh",
		Start:      Command{Shell: "touch " + marker + " # %IP%"},
		Stop:       Command{Argv: []string{"touch", marker + "-%IP%"}},
		CmdTimeout: 10 * time.Second,
	}
	synctest.Test(t, func(t *testing.T) {
		logs := logtest.New()
		r := NewRunner([]Door{door}, Options{DryRun: true, Logger: logs.Logger()})
		// The real executor stays in place: dry run must not reach it.
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		r.Open(knock("ssh", "192.0.2.1"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		cancel()
		<-done

		lines := logs.Find("dry run, not running command")
		if len(lines) != 2 {
			t.Fatalf("dry run lines = %v, want 2", lines)
		}
		want := []map[string]string{
			{"cmd": "start", "command": "touch " + marker + " # 192.0.2.1", "door": "ssh", "src": "192.0.2.1"},
			{"cmd": "stop", "command": "touch " + marker + "-192.0.2.1", "door": "ssh", "src": "192.0.2.1"},
		}
		for i, w := range want {
			for k, v := range w {
				if lines[i].Attrs[k] != v {
					t.Errorf("line %d: %s = %q, want %q", i, k, lines[i].Attrs[k], v)
				}
			}
		}
		if s := r.Stats(); s.Started != 0 {
			t.Errorf("Started = %d in a dry run", s.Started)
		}
	})
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("dry run ran a command: %s holds %v", dir, names)
	}
}

func TestRunnerRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, nil, Options{})
		synctest.Wait()
		if err := h.r.Run(t.Context()); err == nil {
			t.Error("second Run returned nil")
		}
		h.shutdown()
	})
}

func TestRunnerInvalidSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.r.Open(sequence.Match{Door: "ssh"})
		synctest.Wait()
		h.wantCalls()
		if len(h.logs.Find("match without a source address ignored")) != 1 {
			t.Errorf("no warning; log:\n%s", h.logs.Dump())
		}
		h.shutdown()
	})
}

// The tests below run real processes, so they cannot use the fake clock;
// they wait for the Runner's own log lines instead.

func TestRunnerRealCommands(t *testing.T) {
	dir := t.TempDir()
	shellOut := filepath.Join(dir, "shell")
	argvOut := filepath.Join(dir, "argv")
	doors := []Door{
		{Name: "shell", Start6: Command{Shell: "echo %IP% %DOOR% %PORT% %PROTO% > " + shellOut}},
		{Name: "argv", Start: Command{Argv: []string{"/bin/sh", "-c", `printf '%s|%s' "$1" "$2" > "$3"`, "sh", "%IP%", "%DOOR% x", argvOut}}},
		{Name: "fails", Start: Command{Shell: "echo denied >&2; exit 4"}},
	}
	logs := logtest.New()
	r := NewRunner(doors, Options{Logger: logs.Logger()})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	r.Open(knock("shell", "2001:db8::5"))
	r.Open(knock("argv", "192.0.2.5"))
	r.Open(knock("fails", "198.51.100.5"))
	logs.WaitFor(t, "opened", 2)
	failed := logs.WaitFor(t, "command failed", 1)

	for path, want := range map[string]string{shellOut: "2001:db8::5 shell 9000 udp\n", argvOut: "192.0.2.5|argv x"} {
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	if a := failed[0].Attrs; a["exit"] != "4" || a["output"] != "denied" || a["src"] != "198.51.100.5" || a["door"] != "fails" || a["cmd"] != "start" {
		t.Errorf("failure line = %v", failed[0])
	}
	if s := r.Stats(); s.Started != 3 || s.Failed != 1 {
		t.Errorf("stats = %+v, want Started 3, Failed 1", s)
	}
}

// TestRunnerRealTimeoutKillsGroup runs a start command that never ends and
// has a child of its own; at the time limit both must die.
func TestRunnerRealTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	pidFile := filepath.Join(dir, "pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	door := Door{Name: "hang", Start: Command{Shell: "sleep 1000 > " + fifo + " & echo $! > " + pidFile + "; sleep 1000"}}
	logs := logtest.New()
	// The limit leaves a busy machine time to start the shell, its child
	// and the pid file's write before the kill.
	r := NewRunner([]Door{door}, Options{Logger: logs.Logger(), CommandTimeout: 2 * time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	eof := make(chan error, 1)
	go func() {
		f, err := os.Open(fifo) // returns once the grandchild runs
		if err != nil {
			eof <- err
			return
		}
		defer f.Close()
		_, err = f.Read(make([]byte, 1)) // EOF once it is dead
		eof <- err
	}()
	r.Open(knock("hang", "192.0.2.8"))

	lines := logs.WaitFor(t, "command timed out", 1)
	pid := readPid(t, pidFile)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if a := lines[0].Attrs; a["door"] != "hang" || a["src"] != "192.0.2.8" || a["cmd"] != "start" {
		t.Errorf("time-out line = %v", lines[0])
	}
	if s := r.Stats(); s.TimedOut != 1 || s.Failed != 1 {
		t.Errorf("stats = %+v, want TimedOut 1, Failed 1", s)
	}
	select {
	case err := <-eof:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("FIFO read: %v, want EOF", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("grandchild %d survived the time limit", pid)
	}
	assertDead(t, pid)
}

func TestRunnerDrainWaitsForQueuedStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{MaxConcurrent: 1})
		h.fake.setSlow("open 192.0.2.1", 5*time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.r.Open(knock("ssh", "192.0.2.2"))
		h.r.Drain(t.Context())
		if d := time.Since(epoch); d != 5*time.Second {
			t.Errorf("Drain returned at %v, want 5s, when the queued start had run", d)
		}
		h.wantCalls(call{0, "open 192.0.2.1"}, call{5 * time.Second, "open 192.0.2.2"})
		// With nothing queued, Drain returns at once.
		h.r.Drain(t.Context())
		if d := time.Since(epoch); d != 5*time.Second {
			t.Errorf("idle Drain returned at %v", d)
		}
		h.shutdown()
	})
}

// webDoor opens without a timed close; tests make its start slow to keep
// the start workers busy.
var webDoor = Door{Name: "web", Start: Command{Shell: "web %IP%"}}

// TestRunnerReknockAtCloseWithBusyWorkers is the deadlock once found: with
// the only start worker busy, a close fell due and the same source knocked
// again at that moment. The reopen then sat in the start queue waiting for
// the close, while the close waited for a start worker: the close never ran
// and the door stayed open.
func TestRunnerReknockAtCloseWithBusyWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor, webDoor}, Options{MaxConcurrent: 1})
		h.fake.setSlow("web 198.51.100.1", time.Minute)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(9 * time.Second)
		h.r.Open(knock("web", "198.51.100.1")) // the only worker: busy until 69s
		h.sleepTo(10 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1")) // re-knock as the close falls due
		synctest.Wait()
		// The close runs on time although no start worker is free.
		h.wantCalls(call{0, "open 192.0.2.1"}, call{9 * time.Second, "web 198.51.100.1"},
			call{10 * time.Second, "close 192.0.2.1"})

		// The reopen runs when the worker is free, after the close. Its
		// close was due CmdTimeout after the knock, so it follows at once.
		h.sleepTo(69 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{9 * time.Second, "web 198.51.100.1"},
			call{10 * time.Second, "close 192.0.2.1"},
			call{69 * time.Second, "open 192.0.2.1"}, call{69 * time.Second, "close 192.0.2.1"})
		if s := h.r.Stats(); s.PendingCloses != 0 {
			t.Errorf("PendingCloses = %d, want 0", s.PendingCloses)
		}
		h.shutdown()
	})
}

// TestRunnerCloseNotBehindQueuedStarts: a due close runs on time even when
// every start worker is busy and the start queue is full.
func TestRunnerCloseNotBehindQueuedStarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor, webDoor}, Options{MaxConcurrent: 2, QueueSize: 3})
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(5 * time.Second)
		for i := 1; i <= 6; i++ {
			src := fmt.Sprintf("198.51.100.%d", i)
			h.fake.setSlow("web "+src, time.Minute)
			h.r.Open(knock("web", src))
		}
		synctest.Wait()
		if s := h.r.Stats(); s.Dropped != 1 {
			t.Fatalf("Dropped = %d, want 1: two starts running, three queued", s.Dropped)
		}
		h.sleepTo(10 * time.Second)
		var closes []call
		for _, c := range h.fake.got() {
			if strings.HasPrefix(c.cmd, "close ") {
				closes = append(closes, c)
			}
		}
		if want := []call{{10 * time.Second, "close 192.0.2.1"}}; !slices.Equal(closes, want) {
			t.Errorf("closes = %v, want %v", closes, want)
		}
		h.shutdown()
	})
}

// TestRunnerReopenParkedOnClose: knocks while a close runs are one reopen,
// run after the close, and Drain waits for it.
func TestRunnerReopenParkedOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{MaxConcurrent: 1})
		h.fake.setSlow("close 192.0.2.1", 3*time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(11 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1")) // parked on the close
		h.sleepTo(12 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1")) // extends the parked reopen
		if s := h.r.Stats(); s.PendingCloses != 1 || s.Extended != 1 {
			t.Errorf("stats = %+v, want PendingCloses 1, Extended 1", s)
		}
		h.r.Drain(t.Context())
		if d := time.Since(epoch); d != 13*time.Second {
			t.Errorf("Drain returned at %v, want 13s, when the reopen had run", d)
		}
		h.sleepTo(22 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{10 * time.Second, "close 192.0.2.1"},
			call{13 * time.Second, "open 192.0.2.1"}, call{22 * time.Second, "close 192.0.2.1"})
		if n := len(h.logs.Find("knock while closing, opens again after the close")); n != 1 {
			t.Errorf("%d parking lines, want 1; log:\n%s", n, h.logs.Dump())
		}
		h.shutdown()
	})
}

// TestRunnerShutdownDropsParkedReopen: a reopen parked on a close that is
// still running at shutdown is not run, and nothing is left pending.
func TestRunnerShutdownDropsParkedReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.fake.setSlow("close 192.0.2.1", 3*time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(11 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		h.shutdown()
		h.wantCalls(call{0, "open 192.0.2.1"}, call{10 * time.Second, "close 192.0.2.1"})
		if s := h.r.Stats(); s.PendingCloses != 0 {
			t.Errorf("PendingCloses after shutdown = %d", s.PendingCloses)
		}
		// Nothing is in flight any more: Drain returns at once.
		h.r.Drain(t.Context())
	})
}

// TestRunnerShutdownClosesEveryDoor: at shutdown every pending close runs,
// however long that takes; none is dropped for lack of a shared budget.
func TestRunnerShutdownClosesEveryDoor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{MaxConcurrent: 2, CommandTimeout: 5 * time.Second})
		for i := range 100 {
			src := fmt.Sprintf("192.0.2.%d", i+1)
			h.fake.setSlow("close "+src, time.Second)
			h.r.Open(knock("ssh", src))
		}
		synctest.Wait()
		h.shutdown()
		if d := time.Since(epoch); d != 50*time.Second {
			t.Errorf("shutdown took until %v, want 50s: 100 closes of 1s, two at a time", d)
		}
		closed := map[string]bool{}
		for _, c := range h.fake.got() {
			if src, ok := strings.CutPrefix(c.cmd, "close "); ok {
				closed[src] = true
			}
		}
		if len(closed) != 100 {
			t.Errorf("%d doors closed at shutdown, want 100", len(closed))
		}
		if n := len(h.logs.Find("closed")); n != 100 {
			t.Errorf("%d closed lines, want 100", n)
		}
		if s := h.r.Stats(); s.PendingCloses != 0 || s.StopsGivenUp != 0 {
			t.Errorf("stats = %+v", s)
		}
	})
}

// TestRunnerStopRetried: a stop command that fails (iptables losing the
// xtables lock race, say) runs again after 1s and 5s, and the door is
// closed when it succeeds.
func TestRunnerStopRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.fake.setFailFirst("close 192.0.2.1", 2)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(12 * time.Second)
		// A knock while the close waits for its retry opens again after it.
		h.r.Open(knock("ssh", "192.0.2.1"))
		if s := h.r.Stats(); s.PendingCloses != 1 {
			t.Errorf("PendingCloses while retrying = %d, want 1", s.PendingCloses)
		}
		h.sleepTo(16 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{10 * time.Second, "close 192.0.2.1"},
			call{11 * time.Second, "close 192.0.2.1"}, call{16 * time.Second, "close 192.0.2.1"},
			call{16 * time.Second, "open 192.0.2.1"})
		retries := h.logs.Find("stop command will be retried")
		if len(retries) != 2 || retries[0].Attrs["in"] != "1s" || retries[1].Attrs["in"] != "5s" ||
			retries[0].Attrs["door"] != "ssh" || retries[0].Attrs["src"] != "192.0.2.1" {
			t.Errorf("retry lines = %v", retries)
		}
		if s := h.r.Stats(); s.StopRetries != 2 || s.StopsGivenUp != 0 || s.Failed != 2 || s.PendingCloses != 1 {
			t.Errorf("stats = %+v, want StopRetries 2, Failed 2, PendingCloses 1 (the reopen)", s)
		}
		if n := len(h.logs.Find("giving up on stop command; door may still be open")); n != 0 {
			t.Errorf("%d give-up lines", n)
		}
		h.shutdown()
	})
}

// TestRunnerStopGivenUp: a stop command that always fails is tried four
// times (at the close, then 1s, 5s and 30s after each failure) and then
// given up with an error naming the door and the source.
func TestRunnerStopGivenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.fake.setFail("close 192.0.2.1")
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(time.Hour)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{10 * time.Second, "close 192.0.2.1"},
			call{11 * time.Second, "close 192.0.2.1"}, call{16 * time.Second, "close 192.0.2.1"},
			call{46 * time.Second, "close 192.0.2.1"})
		gaveUp := h.logs.Find("giving up on stop command; door may still be open")
		if len(gaveUp) != 1 {
			t.Fatalf("give-up lines = %v, want 1", gaveUp)
		}
		want := map[string]string{"door": "ssh", "src": "192.0.2.1", "cmd": "stop", "command": "close 192.0.2.1", "attempts": "4"}
		for k, v := range want {
			if gaveUp[0].Attrs[k] != v {
				t.Errorf("give-up line %s = %q, want %q", k, gaveUp[0].Attrs[k], v)
			}
		}
		if gaveUp[0].Level != slog.LevelError {
			t.Errorf("give-up logged at %v", gaveUp[0].Level)
		}
		if s := h.r.Stats(); s.StopRetries != 3 || s.StopsGivenUp != 1 || s.PendingCloses != 0 {
			t.Errorf("stats = %+v, want StopRetries 3, StopsGivenUp 1, PendingCloses 0", s)
		}
		// Given up means forgotten: the next knock opens again.
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		if got := h.fake.got(); got[len(got)-1] != (call{time.Hour, "open 192.0.2.1"}) {
			t.Errorf("knock after give-up: calls %v", got)
		}
		h.shutdown()
	})
}

// TestRunnerShutdownRetriesFailedStop: at shutdown a failed stop command,
// including one waiting for its retry, gets one more try after 1s before
// it is given up.
func TestRunnerShutdownRetriesFailedStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.fake.setFailFirst("close 192.0.2.1", 2) // fails at 10s and at shutdown
		h.fake.setFail("close 192.0.2.2")
		h.fake.setFailFirst("close 192.0.2.3", 1) // succeeds on its retry
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(5 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.2"))
		h.r.Open(knock("ssh", "192.0.2.3"))
		h.sleepTo(10*time.Second + 500*time.Millisecond)
		h.shutdown()
		at := 10*time.Second + 500*time.Millisecond
		h.wantCalls(
			call{0, "open 192.0.2.1"}, call{5 * time.Second, "open 192.0.2.2"}, call{5 * time.Second, "open 192.0.2.3"},
			call{10 * time.Second, "close 192.0.2.1"},
			call{at, "close 192.0.2.1"}, call{at, "close 192.0.2.2"}, call{at, "close 192.0.2.3"},
			call{at + time.Second, "close 192.0.2.1"}, call{at + time.Second, "close 192.0.2.2"}, call{at + time.Second, "close 192.0.2.3"},
		)
		gaveUp := h.logs.Find("giving up on stop command; door may still be open")
		if len(gaveUp) != 1 || gaveUp[0].Attrs["src"] != "192.0.2.2" || gaveUp[0].Attrs["door"] != "ssh" || gaveUp[0].Attrs["attempts"] != "2" {
			t.Errorf("give-up lines = %v, want one for 192.0.2.2 after 2 attempts", gaveUp)
		}
		if s := h.r.Stats(); s.StopsGivenUp != 1 || s.PendingCloses != 0 {
			t.Errorf("stats = %+v", s)
		}
	})
}

// TestRunnerCloseAllIsTheShutdown: the end of Run's context stops the
// workers and leaves open doors open; CloseAll is what closes them.
func TestRunnerCloseAllIsTheShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, []Door{sshDoor}, Options{})
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(time.Second)
		h.stop()
		if err := <-h.done; err != nil {
			t.Fatalf("Run returned %v", err)
		}
		h.wantCalls(call{0, "open 192.0.2.1"})
		if got := h.r.Stats().PendingCloses; got != 1 {
			t.Fatalf("PendingCloses after Run = %d, want 1: Run must not close", got)
		}
		h.r.CloseAll(t.Context())
		h.wantCalls(call{0, "open 192.0.2.1"}, call{time.Second, "close 192.0.2.1"})
		if got := h.r.Stats().PendingCloses; got != 0 {
			t.Errorf("PendingCloses after CloseAll = %d, want 0", got)
		}
		h.r.Open(knock("ssh", "192.0.2.2"))
		if w := h.logs.Find("runner stopped, match ignored"); len(w) != 1 {
			t.Errorf("open after CloseAll: %v, want it refused", w)
		}
	})
}
