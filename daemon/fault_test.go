package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFIFOWriterKilledMidLine feeds one knock through three writers of a
// FIFO input: the first writes a step and goes away, the second opens
// later, writes a step and the start of a line and is killed, the third
// comes after and completes the sequence. The daemon must read each
// writer in turn and keep the knock's progress across them.
func TestFIFOWriterKilledMidLine(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	logs, log := debugLogs(t)
	start(t, doorConfig(t, in, sig, ""), Options{Logger: log})

	// A writer that writes a step and vanishes.
	writeLines(t, in, "7000 192.0.2.5")
	waitLog(t, logs, "msg=knock src=192.0.2.5 port=7000 proto=tcp")

	// A later writer, killed while its second line is half written and
	// its end of the FIFO still open.
	w := exec.Command("sh", "-c", `exec 3>"$1"; printf '8000 192.0.2.5\n9000/udp 192.0' >&3; exec sleep 1000`, "sh", in)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Process.Kill(); w.Wait() })
	waitLog(t, logs, "msg=knock src=192.0.2.5 port=8000 proto=tcp")
	if err := w.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(); err == nil {
		t.Fatal("writer exited normally, want it killed")
	}

	// The next writer's first line completes the torn one, and the
	// result is not a knock: counted and skipped, as documented. Its
	// second line is the last step.
	writeLines(t, in, "9000/udp 192.0.2.5", "9000/udp 192.0.2.5")
	expect(t, ch, "open ssh 192.0.2.5")
	if l := waitLogLine(t, logs, `msg="line is not a knock"`); !strings.Contains(l, "reason=unrecognized") || !strings.Contains(l, "9000/udp 192.09000/udp 192.0.2.5") {
		t.Errorf("skipped line %s; want the torn line joined to the next writer's first, unrecognized", l)
	}
	if n := strings.Count(logs.String(), `msg="knock sequence complete"`); n != 1 {
		t.Errorf("%d sequences completed, want 1", n)
	}
}

// TestHangingCommand runs a door whose start command never ends and has a
// child of its own. At the command time limit the whole process group
// must be killed, the time-out logged with door and source, nothing left
// unreaped, and other doors must keep opening meanwhile.
func TestHangingCommand(t *testing.T) {
	const limit = 6 * time.Second // room for the other door on a busy machine
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	// The shell reports its own pid and its background child's, then
	// waits for the child, which sleeps far beyond the limit.
	cfg := doorConfig(t, in, sig, fmt.Sprintf(`
[[door]]
name = "hang"
sequence = ["1000", "2000"]
start_command = 'sleep 1000 & echo "hang $$ $!" > %s; wait'
`, sig))
	cfg.Daemon.CommandTimeLimit = limit
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d, err := New(cfg, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, d)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})

	writeLines(t, in, "1000 192.0.2.9", "2000 192.0.2.9")
	var shell, child int
	select {
	case line := <-ch:
		if _, err := fmt.Sscanf(line, "hang %d %d", &shell, &child); err != nil {
			t.Fatalf("hanging command wrote %q: %v", line, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hanging command did not start")
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	hungAt := time.Now()

	// Another door opens while the command hangs.
	writeLines(t, in, "7000 192.0.2.10", "8000 192.0.2.10", "9000/udp 192.0.2.10")
	expect(t, ch, "open ssh 192.0.2.10")
	if !alive(shell) || strings.Contains(logs.String(), "timed out") {
		t.Fatalf("the hanging command ended before the other door opened; it must not hold the daemon up")
	}

	line := waitLogLine(t, &logs, `msg="command timed out"`)
	if took := time.Since(hungAt); took > limit+5*time.Second {
		t.Errorf("command killed %v after it started, want about %v", took, limit)
	}
	for _, want := range []string{"level=ERROR", " door=hang ", " src=192.0.2.9 ", " cmd=start ", `err="time limit reached, process group killed"`} {
		if !strings.Contains(line, want) {
			t.Errorf("time-out line lacks %q: %s", want, line)
		}
	}
	// The shell is the daemon's child: it is reaped before the time-out
	// is logged. Its own child was killed with it, as one group.
	if alive(shell) {
		t.Errorf("the timed-out shell %d is still there: %s", shell, procStat(shell))
	}
	waitGone(t, child)
	if z := zombieChildren(t); len(z) > 0 {
		t.Errorf("daemon left zombie children: %v", z)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if st := d.runner.Stats(); st.TimedOut != 1 || st.Started != 3 {
		t.Errorf("runner stats %+v; want 1 timed out of 3 started (hang, ssh open, ssh close)", st)
	}
}

// waitLogLine waits until a log line holds want and returns the line.
func waitLogLine(t *testing.T, logs *syncBuffer, want string) string {
	t.Helper()
	waitLog(t, logs, want)
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, want) {
			return strings.TrimSpace(l)
		}
	}
	panic("unreachable")
}

// procStat returns /proc/PID/stat, or "" when there is no such process.
func procStat(pid int) string {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return string(data)
}

// procState is the state letter of /proc/PID/stat, 0 when pid is gone.
func procState(pid int) byte {
	data := procStat(pid)
	// The state follows the ")" that closes the command name.
	if i := strings.LastIndexByte(data, ')'); i >= 0 && i+2 < len(data) {
		return data[i+2]
	}
	return 0
}

// alive reports whether pid is a process that has not exited.
func alive(pid int) bool {
	s := procState(pid)
	return s != 0 && s != 'Z' && s != 'X'
}

// waitGone waits until pid has exited. A killed grandchild belongs to init
// once its parent is gone, and init reaps it in its own time, so an exited
// process not yet reaped by init counts as gone; a zombie of ours would be
// caught by zombieChildren.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d survived the time limit: %s", pid, procStat(pid))
		}
		time.Sleep(10 * time.Millisecond) // polling a state nothing signals
	}
}

// zombieChildren lists this process's children that exited and were not
// reaped.
func zombieChildren(t *testing.T) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("cannot list children: %v", err)
	}
	var z []string
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, p := range bytes.Fields(data) {
			pid, _ := strconv.Atoi(string(p))
			if procState(pid) == 'Z' {
				z = append(z, strings.TrimSpace(procStat(pid)))
			}
		}
	}
	return z
}
