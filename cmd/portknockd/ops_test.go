package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"portknock/daemon"
	"portknock/internal/netnstest"
	"portknock/sealed"
)

// TestAlertRules checks the example alert rules and runs their unit
// tests.
func TestAlertRules(t *testing.T) {
	promtool := netnstest.Tool(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "portknockd.rules.yml"},
		{"test", "rules", "portknockd.rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Join("..", "..", "examples")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// opsConfig writes a configuration with a door with a sequence and a
// sealed door, reading stdin, with its state in the test's directory.
func opsConfig(t *testing.T) (path, stateDir string) {
	t.Helper()
	dir := t.TempDir()
	k, err := sealed.NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := k.MarshalText()
	key := filepath.Join(dir, "door.key")
	if err := os.WriteFile(key, text, 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir = filepath.Join(dir, "state")
	src := fmt.Sprintf(`[daemon]
state_dir = %q

[[input]]
type = "text"
path = "-"
format = "simple"

[[door]]
name = "ssh"
sequence = ["7000/tcp", "9000/udp", "8000/tcp"]
seq_timeout = "1m"
start_command = "true"
stop_command = "true"
cmd_timeout = "1h"

[[door]]
name = "sealed door"
sealed = { base = 40000, key_file = %q }
start_command = "true"
`, stateDir, key)
	path = filepath.Join(dir, "portknockd.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, stateDir
}

// TestFail2banFilter runs the daemon on knocks from stdin and the example
// filter on what it logged: each wrong knock and each sealed rejection is
// found, with its address, and nothing else.
func TestFail2banFilter(t *testing.T) {
	regex := netnstest.Tool(t, "fail2ban-regex", "fail2ban")
	cfg, _ := opsConfig(t)
	var knocks strings.Builder
	knocks.WriteString("7000 192.0.2.5\n8000 192.0.2.5\n")                     // wrong knock
	knocks.WriteString("7000 2001:db8::7\n8000/tcp 2001:db8::7\n")             // wrong knock
	knocks.WriteString("7000 192.0.2.8\n9000/udp 192.0.2.8\n8000 192.0.2.8\n") // opens
	for i := range sealed.Knocks {
		fmt.Fprintf(&knocks, "%d/tcp 198.51.100.9\n", 40000+256*i+7) // a block no key made
	}
	code, _, logs := runArgs(t, knocks.String(), "-c", cfg)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs)
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "portknockd.log")
	if err := os.WriteFile(logFile, []byte(logs), 0o600); err != nil {
		t.Fatal(err)
	}
	// As fail2ban's systemd backend shows journal entries: a syslog-like
	// header with the unit's identifier and pid before the message.
	journalFile := filepath.Join(dir, "journal.log")
	var framed strings.Builder
	for line := range strings.Lines(logs) {
		framed.WriteString("Dec  3 14:00:03 gw portknockd[42]: " + line)
	}
	if err := os.WriteFile(journalFile, []byte(framed.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// The filter includes common.conf, which fail2ban ships; it is looked
	// for beside the filter.
	filter := filepath.Join(dir, "filter.d", "portknockd.conf")
	os.Mkdir(filepath.Dir(filter), 0o700)
	copyFile(t, filepath.Join("..", "..", "examples", "fail2ban", "filter.d", "portknockd.conf"), filter)
	copyFile(t, "/etc/fail2ban/filter.d/common.conf", filepath.Join(dir, "filter.d", "common.conf"))

	for _, file := range []string{logFile, journalFile} {
		out, err := exec.Command(regex, "-v", "--print-all-matched", "--print-no-missed", file, filter).CombinedOutput()
		if err != nil {
			t.Fatalf("fail2ban-regex %s: %v\n%s", file, err, out)
		}
		m := regexp.MustCompile(`Lines: (\d+) lines, 0 ignored, (\d+) matched`).FindSubmatch(out)
		if m == nil || string(m[2]) != "3" {
			t.Errorf("fail2ban-regex %s found %s matches, want 3:\n%s\nlog:\n%s", file, m, out, logs)
		}
		for _, addr := range []string{"192.0.2.5", "2001:db8::7", "198.51.100.9"} {
			if !regexp.MustCompile(`(?m)^\|\s+` + regexp.QuoteMeta(addr) + `\s`).Match(out) {
				t.Errorf("fail2ban-regex %s did not find %s:\n%s", file, addr, out)
			}
		}
		if bytes.Contains(out, []byte("192.0.2.8")) {
			t.Errorf("fail2ban-regex %s found the address that opened the door:\n%s", file, out)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStatusCommand runs the daemon, knocks, and asks portknockd status,
// as text and as JSON; once the daemon has stopped, status says so with
// exit status 3.
func TestStatusCommand(t *testing.T) {
	cfg, stateDir := opsConfig(t)
	if code, _, errOut := runArgs(t, "", "status", "-c", cfg); code != 3 || !strings.Contains(errOut, "no portknockd is running") {
		t.Errorf("before the start: exit %d, %q; want 3 and a clear message", code, errOut)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var logs syncWriter
	done := make(chan int, 1)
	go func() { done <- run([]string{"-c", cfg}, r, io.Discard, &logs) }()
	defer func() {
		w.Close()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("daemon did not stop when stdin ended")
		}
	}()
	fmt.Fprint(w, "7000 192.0.2.8\n9000/udp 192.0.2.8\n8000 192.0.2.8\n7000 192.0.2.9\n")

	// The daemon is up once the socket answers, and has taken the knocks
	// once the door shows open and the attempt in progress.
	var st daemon.Status
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, _ := runArgs(t, "", "status", "--json", "-s", stateDir)
		if code == 0 {
			st = daemon.Status{}
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			// A snapshot may be half a second old: one taken while the
			// knocks from .8 were arriving shows them in progress.
			if st.OpenDoorsTotal == 1 && st.AttemptsTotal == 1 && len(st.Attempts) == 1 && st.Attempts[0].Src == "192.0.2.9" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the open door and the attempt: exit %d, %+v\nlog:\n%s", code, st, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, out, errOut := runArgs(t, "", "status", "-c", cfg)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	for _, re := range []string{
		`(?m)^open doors: 1$`,
		`(?m)^\s+ssh\s+192\.0\.2\.8\s+(59m\d+s|1h0m0s)\s`,
		`(?m)^attempts in progress: 1$`,
		`(?m)^\s+ssh\s+192\.0\.2\.9\s+1 of 3\s+(\d+m)?\d+s$`,
		`(?m)^\s+text:-\s+text\s+4\s+-\s+lines 4$`,
		`(?m)^matcher: 4 events .* 1 matches`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status output lacks %s:\n%s", re, out)
		}
	}
	w.Close()
	if code := <-done; code != 0 {
		t.Errorf("daemon exit %d:\n%s", code, logs.String())
	}
	done <- 0 // for the deferred wait
	if code, _, errOut := runArgs(t, "", "status", "-s", stateDir); code != 3 || !strings.Contains(errOut, "no portknockd is running") {
		t.Errorf("after the stop: exit %d, %q; want 3 and a clear message", code, errOut)
	}
}

// syncWriter is a log destination a test reads while the daemon writes.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWriteStatusEscapes: text in an answer that would steer a terminal
// (an escape sequence, a newline forging a table row) prints quoted.
func TestWriteStatusEscapes(t *testing.T) {
	const esc = "\x1b]0;owned\x07"
	st := &daemon.Status{
		Version:        "portknockd" + esc,
		OpenDoors:      []daemon.StatusOpen{{Door: "ssh\n  web", Src: "192.0.2.1" + esc}},
		OpenDoorsTotal: 1,
		Inputs:         []daemon.StatusInput{{Name: "in" + esc, Type: "text", Counters: map[string]uint64{"lines" + esc: 1}}},
	}
	var b strings.Builder
	writeStatus(&b, st)
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07") || strings.Contains(out, "ssh\n") {
		t.Errorf("control characters printed as they are:\n%q", out)
	}
	for _, want := range []string{`"ssh\n  web"`, `"192.0.2.1\x1b]0;owned\a"`, `"lines\x1b]0;owned\a" 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}
