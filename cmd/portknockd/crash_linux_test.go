package main

import (
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"portknock/internal/netnstest"
)

// crashRig runs the real daemon binary on knocks written to its stdin, with
// a door whose commands append to a file, and kills it with SIGKILL: what a
// crash, an OOM kill or a power cut does to a door with a timed close. It
// needs neither root nor a network: the journal is the subject.
type crashRig struct {
	t      *testing.T
	daemon string
	cfg    string
	cmds   string // what the door's commands wrote
}

func newCrashRig(t *testing.T, cmdTimeout string, daemonExtra string) *crashRig {
	daemon, _ := buildBinaries(t)
	dir := t.TempDir()
	r := &crashRig{t: t, daemon: daemon, cmds: filepath.Join(dir, "cmds"), cfg: filepath.Join(dir, "portknockd.toml")}
	cfg := fmt.Sprintf(`[daemon]
state_dir = %q
%s
[[input]]
type   = "text"
path   = "-"
format = "simple"

[[door]]
name          = "ssh"
sequence      = ["7000/tcp", "8000/tcp", "9000/udp"]
start_command = "echo open %%IP%% >> %s"
stop_command  = "echo close %%IP%% >> %s"
cmd_timeout   = %q
`, filepath.Join(dir, "state"), daemonExtra, r.cmds, r.cmds, cmdTimeout)
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs the daemon; knocks are written to the returned pipe.
func (r *crashRig) start() (*netnstest.Proc, *os.File) {
	r.t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(r.daemon, "-c", r.cfg)
	cmd.Stdin = pr
	p := netnstest.StartCmd(r.t, cmd, "portknockd", "crash test")
	pr.Close()
	r.t.Cleanup(func() { pw.Close() })
	p.WaitLine(r.t, 0, waitTimeout, "start", logMatch("portknockd started"))
	return p, pw
}

func (r *crashRig) knock(w *os.File, src string) {
	r.t.Helper()
	if _, err := fmt.Fprintf(w, "7000/tcp %s\n8000/tcp %s\n9000/udp %s\n", src, src, src); err != nil {
		r.t.Fatal(err)
	}
}

func (r *crashRig) kill(p *netnstest.Proc) {
	r.t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatal(err)
	}
	p.WaitExit(r.t, waitTimeout)
}

func (r *crashRig) commands() string {
	b, err := os.ReadFile(r.cmds)
	if err != nil && !os.IsNotExist(err) {
		r.t.Fatal(err)
	}
	return string(b)
}

// TestCrashThenLateRestart: the daemon is killed with the door open and
// comes back after cmd_timeout: the overdue close runs at once.
func TestCrashThenLateRestart(t *testing.T) {
	// Longer than the time an overdue close may take after the restart,
	// so that a close given a fresh cmd_timeout would show.
	const timeout = 4 * time.Second
	r := newCrashRig(t, timeout.String(), "")
	p, w := r.start()
	r.knock(w, "192.0.2.7")
	_, opened := p.WaitLine(t, 0, waitTimeout, "opened", logMatch("opened", "door=ssh", "src=192.0.2.7"))
	r.kill(p)
	if got := r.commands(); got != "open 192.0.2.7\n" {
		t.Fatalf("commands before the crash: %q", got)
	}
	// Stay down until the close is well overdue.
	due := logTime(t, parseLog(opened)).Add(timeout)
	time.Sleep(time.Until(due.Add(500 * time.Millisecond)))

	p2, _ := r.start()
	i, restored := p2.WaitLine(t, 0, waitTimeout, "restored close", logMatch("pending close restored from journal", "door=ssh", "src=192.0.2.7"))
	if f := parseLog(restored); f["overdue"] != "true" {
		t.Errorf("restored close not seen as overdue: %s", restored)
	}
	_, closed := p2.WaitLine(t, i, waitTimeout, "closed", logMatch("closed", "door=ssh", "src=192.0.2.7"))
	// Timed by the daemon's own log, so that only the daemon's delay
	// counts, not the test's.
	if took := logTime(t, parseLog(closed)).Sub(logTime(t, parseLog(restored))); took > timeout-time.Second {
		t.Errorf("overdue close took %v after the restart, want at once", took)
	}
	if got := r.commands(); got != "open 192.0.2.7\nclose 192.0.2.7\n" {
		t.Errorf("commands: %q", got)
	}
}

// TestCrashThenEarlyRestart: the daemon is killed and comes back before
// cmd_timeout: the close runs at its original time, not at once and not
// after a fresh cmd_timeout.
func TestCrashThenEarlyRestart(t *testing.T) {
	const timeout = 6 * time.Second // the restart must come well before it, even on a busy machine
	r := newCrashRig(t, timeout.String(), "")
	p, w := r.start()
	knocked := time.Now()
	r.knock(w, "192.0.2.8")
	_, opened := p.WaitLine(t, 0, waitTimeout, "opened", logMatch("opened", "door=ssh", "src=192.0.2.8"))
	r.kill(p)

	p2, _ := r.start()
	_, restored := p2.WaitLine(t, 0, waitTimeout, "restored close", logMatch("pending close restored from journal", "door=ssh", "src=192.0.2.8"))
	f := parseLog(restored)
	if f["overdue"] != "false" {
		t.Fatalf("restored close seen as overdue after %v: %s", time.Since(logTime(t, parseLog(opened))), restored)
	}
	due, err := time.Parse(time.RFC3339Nano, f["due"])
	if err != nil {
		t.Fatalf("due %q: %v", f["due"], err)
	}
	// The close is due cmd_timeout after the match, which came after the
	// knock was sent and before "opened" was logged, however long a busy
	// machine took to run the start command. The log's times are cut to
	// the millisecond. A fresh cmd_timeout from the restart would be due
	// later.
	if openedAt := logTime(t, parseLog(opened)); due.After(openedAt.Add(timeout+time.Millisecond)) || due.Before(knocked.Add(timeout-time.Millisecond)) {
		t.Errorf("due %v, want %v after the knock sent at %v and the door opened at %v", due, timeout, knocked, openedAt)
	}
	_, closed := p2.WaitLine(t, 0, timeout+waitTimeout, "closed", logMatch("closed", "door=ssh", "src=192.0.2.8"))
	closedAt := logTime(t, parseLog(closed))
	// On time: the timer, then the stop command, which a busy machine
	// may take a while to run. (A close given a fresh cmd_timeout shows
	// in due above.)
	if closedAt.Before(due.Truncate(time.Millisecond)) || closedAt.After(due.Add(3*time.Second)) {
		t.Errorf("closed at %v, want on time at %v", closedAt, due)
	}
	if got := r.commands(); got != "open 192.0.2.8\nclose 192.0.2.8\n" {
		t.Errorf("commands: %q", got)
	}
}

// TestCloseOnExitOff: with close_on_exit = false a clean stop leaves the
// door open, and the next start closes it on time.
func TestCloseOnExitOff(t *testing.T) {
	r := newCrashRig(t, "2s", "close_on_exit = false")
	p, w := r.start()
	// The knock is read after this, so its close is due 2s after it at
	// the earliest, however long the start command took on a busy
	// machine.
	knocked := time.Now()
	r.knock(w, "192.0.2.9")
	p.WaitLine(t, 0, waitTimeout, "opened", logMatch("opened", "door=ssh", "src=192.0.2.9"))
	p.Stop(t)
	if err := p.WaitExit(t, waitTimeout); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	if !strings.Contains(p.Output(), "door left open at exit") || r.commands() != "open 192.0.2.9\n" {
		t.Fatalf("after a clean stop: commands %q, log:\n%s", r.commands(), p.Output())
	}
	p2, _ := r.start()
	_, closed := p2.WaitLine(t, 0, waitTimeout, "closed", logMatch("closed", "door=ssh", "src=192.0.2.9"))
	// Not at the restart: at its time, 2s after the knock. The log's
	// times are cut to the millisecond.
	if closedAt := logTime(t, parseLog(closed)); closedAt.Before(knocked.Add(2*time.Second - time.Millisecond)) {
		t.Errorf("closed at %v, %v after the knock was sent; want 2s after it", closedAt, closedAt.Sub(knocked))
	}
	if got := r.commands(); got != "open 192.0.2.9\nclose 192.0.2.9\n" {
		t.Errorf("commands: %q", got)
	}
}

// TestDamagedJournal starts the daemon on a journal with a torn and a
// garbage line around a good record: the damage is reported with the file
// it was copied to, and the good close still runs.
func TestDamagedJournal(t *testing.T) {
	r := newCrashRig(t, "1s", "")
	state := filepath.Join(filepath.Dir(r.cfg), "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	good := `{"op":"open","id":4,"door":"ssh","src":"192.0.2.10","due":"2001-01-01T00:00:00Z","shell":"echo close 192.0.2.10 >> ` + r.cmds + `"}`
	data := fmt.Sprintf("%08x %s\nnot a journal line\n%08x %s", crc32c(good), good, crc32c(good), good[:20])
	if err := os.WriteFile(filepath.Join(state, "closes.journal"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _ := r.start()
	_, l := p.WaitLine(t, 0, waitTimeout, "damage report", logMatch("close journal damaged; readable records kept, damaged lines set aside"))
	if f := parseLog(l); !strings.Contains(f["err"], "2 damaged line(s)") || !strings.Contains(f["err"], "closes.journal.damaged-") {
		t.Errorf("damage report %q", l)
	}
	p.WaitLine(t, 0, waitTimeout, "closed", logMatch("closed", "door=ssh", "src=192.0.2.10"))
	if got := r.commands(); got != "close 192.0.2.10\n" {
		t.Errorf("commands: %q", got)
	}
}

// TestUnwritableStateDir runs the daemon with its state_dir on a small
// tmpfs of the test's own, made read-only and then full: an open that
// needs a close is refused with an error naming door and address, and the
// daemon opens again by itself once the state_dir is writable.
func TestUnwritableStateDir(t *testing.T) {
	netnstest.Require(t)
	r := newCrashRig(t, "1h", "")
	mnt := filepath.Join(filepath.Dir(r.cfg), "state")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_RDONLY, "size=256k,mode=0700"); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	remount := func(flags uintptr) {
		t.Helper()
		if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|flags, ""); err != nil {
			t.Fatalf("remount: %v", err)
		}
	}

	p, w := r.start()
	p.WaitLine(t, 0, waitTimeout, "not writable", logMatch("state_dir not writable: doors with a timed close will not open until it is"))
	r.knock(w, "192.0.2.20")
	_, l := p.WaitLine(t, 0, waitTimeout, "refusal", logMatch("open refused: its close could not be recorded in state_dir", "door=ssh", "src=192.0.2.20"))
	if f := parseLog(l); f["level"] != "ERROR" || !strings.Contains(f["err"], "read-only file system") {
		t.Errorf("refusal %q", l)
	}

	remount(0)
	r.knock(w, "192.0.2.21")
	p.WaitLine(t, 0, waitTimeout, "opened", logMatch("opened", "door=ssh", "src=192.0.2.21"))

	// Fill the file system: the next open is refused again.
	filler, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			break
		}
		if i > 1<<10 {
			t.Fatal("tmpfs never filled up")
		}
	}
	filler.Close()
	from := len(p.Lines())
	for i := range 32 { // a line may still fit in a partly used block
		src := fmt.Sprintf("192.0.2.%d", 100+i)
		r.knock(w, src)
		_, l := p.WaitLine(t, from, waitTimeout, "open or refusal", func(l string) bool {
			f := parseLog(l)
			return f != nil && f["src"] == src && (f["msg"] == "opened" || f["msg"] == "open refused: its close could not be recorded in state_dir")
		})
		if f := parseLog(l); f["msg"] != "opened" {
			if !strings.Contains(f["err"], "no space left on device") {
				t.Errorf("refusal on a full state_dir: %q", l)
			}
			break
		}
		if i == 31 {
			t.Fatal("opens kept succeeding on a full state_dir")
		}
	}
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	r.knock(w, "192.0.2.22")
	p.WaitLine(t, 0, waitTimeout, "opened", logMatch("opened", "door=ssh", "src=192.0.2.22"))
	if strings.Contains(r.commands(), "192.0.2.20") {
		t.Errorf("a refused door opened: %q", r.commands())
	}
}

func crc32c(s string) uint32 { return crc32.Checksum([]byte(s), crc32.MakeTable(crc32.Castagnoli)) }
