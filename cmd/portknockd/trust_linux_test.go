package main

// Tests of the files portknockd believes, through the command line: start,
// check and a SIGHUP reload refuse a file root or the daemon's user does
// not own or others can write, and say how to fix it.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"portknock/config"
	"portknock/internal/netnstest"
	"portknock/journal"
)

const nobodyUID = 65534

// whoami is how a trust error names the user this test runs as, who owns
// the files it makes.
func whoami() string {
	uid := strconv.Itoa(os.Geteuid())
	if u, err := user.LookupId(uid); err == nil {
		return u.Username + " (uid " + uid + ")"
	}
	return "uid " + uid
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func chownNobody(t *testing.T, path string) {
	t.Helper()
	if err := os.Chown(path, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
}

// trustDir is a directory of files for one test: a configuration with a
// FIFO input, a door with a timed close and a door with one-time
// sequences, all trusted until the test spoils them.
type trustDir struct {
	dir, cfg, fifo, ots, state, marker string
}

func newTrustDir(t *testing.T) *trustDir {
	t.Helper()
	dir := t.TempDir()
	d := &trustDir{
		dir:    dir,
		cfg:    filepath.Join(dir, "portknockd.toml"),
		fifo:   filepath.Join(dir, "knocks.fifo"),
		ots:    filepath.Join(dir, "web.seq"),
		state:  filepath.Join(dir, "state"),
		marker: filepath.Join(dir, "stop-command-ran"),
	}
	src := fmt.Sprintf(`[daemon]
state_dir = %q

[[input]]
type   = "text"
path   = %q
format = "simple"

[[door]]
name          = "ssh"
sequence      = ["8000/tcp", "7000/tcp", "9000/udp"]
start_command = "true"
stop_command  = "true"
cmd_timeout   = "1h"

[[door]]
name               = "web"
one_time_sequences = %q
start_command      = "true"
`, d.state, d.fifo, d.ots)
	if err := os.WriteFile(d.cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.ots, []byte("2000,1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(d.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(d.state, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// leaveJournal leaves in state_dir an overdue close that would create the
// marker file, as a daemon killed with a door open would.
func (d *trustDir) leaveJournal(t *testing.T) {
	t.Helper()
	j, err := journal.Open(d.state, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Add(journal.Record{Door: "ssh", Src: netip.MustParseAddr("192.0.2.66"), Due: time.Now().Add(-time.Hour),
		Stop: config.Command{Argv: []string{"touch", d.marker}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

func (d *trustDir) assertNoMarker(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Stat(d.marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the untrusted journal's stop command ran (%v):\n%s", err, out)
	}
}

func TestCheckTrustedFiles(t *testing.T) {
	d := newTrustDir(t)
	code, out, errOut := runArgs(t, "", "check", d.cfg)
	if code != 0 || strings.Contains(errOut, "error:") || strings.Contains(errOut, "trust") {
		t.Fatalf("check of trusted files: exit %d:\n%s", code, errOut)
	}
	if !strings.Contains(out, "door web") {
		t.Errorf("check output:\n%s", out)
	}
}

// TestCheckReportsEveryUntrustedFile: check judges every file as the
// daemon would and reports them all, and still prints the configuration.
func TestCheckReportsEveryUntrustedFile(t *testing.T) {
	d := newTrustDir(t)
	d.leaveJournal(t)
	chmod(t, d.cfg, 0o666)
	chmod(t, d.ots, 0o664)
	chmod(t, d.fifo, 0o622)
	chmod(t, filepath.Join(d.state, journal.FileName), 0o666)
	code, out, errOut := runArgs(t, "", "check", "-c", d.cfg)
	if code != 1 {
		t.Fatalf("check exit %d, want 1:\n%s", code, errOut)
	}
	journalFile := filepath.Join(d.state, journal.FileName)
	me := whoami()
	for _, want := range []string{
		"error: " + d.cfg + ": not trusted: owned by " + me + ", mode 0666: its group and others can write to it; fix: chmod go-w " + d.cfg + "\n",
		"error: door \"web\": one-time sequences: " + d.ots + ": not trusted: owned by " + me + ", mode 0664: its group can write to it; fix: chmod go-w " + d.ots + "\n",
		"error: input text:" + d.fifo + ": " + d.fifo + ": not trusted: owned by " + me + ", mode 0622: its group and others can write to it; fix: chmod go-w " + d.fifo + "\n",
		"error: state_dir: " + journalFile + ": not trusted: owned by " + me + ", mode 0666: its group and others can write to it; fix: chmod go-w " + journalFile + "\n",
		"4 problem(s) with files portknockd would not trust",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check's errors lack %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "door ssh") || !strings.Contains(out, "1 pending close(s)") {
		t.Errorf("check did not print the configuration:\n%s", out)
	}
	d.assertNoMarker(t, errOut)
}

func TestCheckUntrustedAndBrokenConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(path, []byte("[[door]]\nname = 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chmod(t, path, 0o646)
	code, _, errOut := runArgs(t, "", "check", path)
	if code != 1 || !strings.Contains(errOut, path+": not trusted") || !strings.Contains(errOut, path+":2:") {
		t.Errorf("check of an untrusted, broken file: exit %d, want both problems:\n%s", code, errOut)
	}
}

// TestCheckAsUser: root checking for a daemon that runs as another user
// judges as that user, whose files are its own.
func TestCheckAsUser(t *testing.T) {
	netnstest.RequireRoot(t, "changing a file's owner")
	d := newTrustDir(t)
	d.leaveJournal(t)
	chownNobody(t, d.state)
	chownNobody(t, filepath.Join(d.state, journal.FileName))
	code, _, errOut := runArgs(t, "", "check", d.cfg)
	if code != 1 || !strings.Contains(errOut, "error: state_dir: "+d.state+": not trusted: owned by nobody (uid 65534)") ||
		!strings.Contains(errOut, "fix: chown root:root "+d.state) {
		t.Errorf("root's check of nobody's state_dir: exit %d:\n%s", code, errOut)
	}
	for _, as := range []string{"nobody", "65534"} {
		if code, _, errOut := runArgs(t, "", "check", "--user", as, d.cfg); code != 0 {
			t.Errorf("check --user %s: exit %d:\n%s", as, code, errOut)
		}
	}
	// The same user's view of a file another user owns.
	chownNobody(t, d.cfg)
	if code, _, errOut := runArgs(t, "", "check", "-u", "daemon", d.cfg); code != 1 ||
		!strings.Contains(errOut, d.cfg+": not trusted: owned by nobody (uid 65534)") ||
		!strings.Contains(errOut, "neither root nor daemon (uid 1)") {
		t.Errorf("check -u daemon of nobody's config: exit %d:\n%s", code, errOut)
	}
	if code, _, errOut := runArgs(t, "", "check", "-u", "no-such-user-here", d.cfg); code != 2 || !strings.Contains(errOut, "no-such-user-here") {
		t.Errorf("check -u of an unknown user: exit %d: %s", code, errOut)
	}
}

// TestStartRefusesUntrustedConfig runs the daemon in process on a
// configuration others can write, or another user owns.
func TestStartRefusesUntrustedConfig(t *testing.T) {
	d := newTrustDir(t)
	me := whoami()
	chmod(t, d.cfg, 0o666)
	code, _, errOut := runArgs(t, "", "-c", d.cfg, "--dry-run")
	if code != 1 || !strings.HasPrefix(errOut, d.cfg+": not trusted: owned by "+me+", mode 0666") ||
		!strings.Contains(errOut, "fix: chmod go-w "+d.cfg) {
		t.Errorf("start on a 0666 configuration: exit %d:\n%s", code, errOut)
	}
	if os.Geteuid() != 0 {
		return
	}
	chmod(t, d.cfg, 0o644)
	chownNobody(t, d.cfg)
	code, _, errOut = runArgs(t, "", "-c", d.cfg, "--dry-run")
	if code != 1 || !strings.Contains(errOut, "owned by nobody (uid 65534), mode 0644: its owner is not root, whom the daemon runs as") ||
		!strings.Contains(errOut, "fix: chown root:root "+d.cfg) {
		t.Errorf("start on nobody's configuration: exit %d:\n%s", code, errOut)
	}
}

// TestStartRefusesJournalOfAnotherUser is the attack: a journal left in a
// state_dir another user owns would have its stop command run by the
// daemon as itself. The start is refused and the command never runs.
func TestStartRefusesJournalOfAnotherUser(t *testing.T) {
	netnstest.RequireRoot(t, "changing a file's owner")
	d := newTrustDir(t)
	d.leaveJournal(t)
	chownNobody(t, d.state)
	code, _, errOut := runArgs(t, "", "-c", d.cfg, "-i", "-")
	if code != 1 {
		t.Fatalf("start on nobody's state_dir: exit %d, want 1:\n%s", code, errOut)
	}
	for _, want := range []string{`msg="cannot start"`, "state_dir: " + d.state + ": not trusted: owned by nobody (uid 65534), mode 0700",
		"fix: chown root:root " + d.state} {
		if !strings.Contains(errOut, want) {
			t.Errorf("start error lacks %q:\n%s", want, errOut)
		}
	}
	d.assertNoMarker(t, errOut)
}

func TestStartRefusesWorldWritableFIFO(t *testing.T) {
	d := newTrustDir(t)
	chmod(t, d.fifo, 0o666)
	code, _, errOut := runArgs(t, "", "-c", d.cfg)
	if code != 1 || !strings.Contains(errOut, "input text:"+d.fifo+": "+d.fifo+": not trusted") {
		t.Errorf("start on a world-writable FIFO: exit %d:\n%s", code, errOut)
	}
}

// TestReloadRefusesUntrustedConfig sends SIGHUP to the real daemon after
// its configuration became writable by others: the reload is refused with
// the reason, and the running doors keep working.
func TestReloadRefusesUntrustedConfig(t *testing.T) {
	daemon, _ := buildBinaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portknockd.toml")
	door := func(name, seq string) string {
		return fmt.Sprintf("[[door]]\nname = %q\nsequence = %s\nstart_command = \"true\"\n", name, seq)
	}
	write := func(doors string) {
		t.Helper()
		src := "[[input]]\ntype = \"text\"\npath = \"-\"\nformat = \"simple\"\n\n" + doors
		if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(door("ssh", `["8000", "7000"]`))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// A state_dir of the test's: the daemon makes its status socket there.
	cmd := exec.Command(daemon, "-c", cfg, "-s", filepath.Join(dir, "state"))
	cmd.Stdin = pr
	p := netnstest.StartCmd(t, cmd, "portknockd", "reload test")
	pr.Close()
	defer pw.Close()
	p.WaitLine(t, 0, waitTimeout, "start", logMatch("portknockd started"))

	hup := func() int {
		t.Helper()
		from := len(p.Lines())
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		p.WaitLine(t, from, waitTimeout, "SIGHUP", logMatch("SIGHUP: reloading configuration"))
		return from
	}
	refused := func(what string, fields ...string) {
		t.Helper()
		from := hup()
		_, l := p.WaitLine(t, from, waitTimeout, "refusal", logMatch("reload failed; keeping the running configuration"))
		for _, f := range fields {
			if !strings.Contains(parseLog(l)["err"], f) {
				t.Errorf("reload of %s: refusal lacks %q: %s", what, f, l)
			}
		}
		// The running door opens; the file's new one does not.
		if _, err := fmt.Fprintf(pw, "2000 192.0.2.9\n1000 192.0.2.9\n8000 192.0.2.7\n7000 192.0.2.7\n"); err != nil {
			t.Fatal(err)
		}
		p.WaitLine(t, from, waitTimeout, "ssh opens", logMatch("knock sequence complete", "door=ssh", "src=192.0.2.7"))
		for _, l := range p.Lines()[from:] {
			if logMatch("knock sequence complete", "door=web")(l) {
				t.Errorf("door from a refused reload opened: %s", l)
			}
		}
	}

	write(door("ssh", `["8000", "7000"]`) + door("web", `["2000", "1000"]`))
	chmod(t, cfg, 0o666)
	refused("a 0666 file", cfg+": not trusted", "mode 0666", "fix: chmod go-w "+cfg)
	if os.Geteuid() == 0 {
		chmod(t, cfg, 0o644)
		chownNobody(t, cfg)
		refused("nobody's file", "owned by nobody (uid 65534)", "fix: chown root:root "+cfg)
		if err := os.Chown(cfg, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	chmod(t, cfg, 0o600)
	from := hup()
	p.WaitLine(t, from, waitTimeout, "reload", logMatch("configuration reloaded", "doors=2"))
	if _, err := fmt.Fprintf(pw, "2000 192.0.2.9\n1000 192.0.2.9\n"); err != nil {
		t.Fatal(err)
	}
	p.WaitLine(t, from, waitTimeout, "web opens", logMatch("knock sequence complete", "door=web", "src=192.0.2.9"))
}
