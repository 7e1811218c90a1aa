package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runArgs runs portknockd with args and stdin as a pipe that ends after
// the given text, as a shell pipeline would give it.
func runArgs(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		w.WriteString(stdin)
		w.Close()
	}()
	var out, errOut bytes.Buffer
	code = run(args, r, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheckExamples(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"quickstart.toml", []string{"toml format, 1 door(s)", "door ssh", "7000/tcp 9000/udp 8000/tcp", "input text:- format simple"}},
		{"knockd.conf", []string{"knockd format", "door openSSH", "tcpflags       syn", "one-time, from", "4 unused", "next",
			// The one-time sequences' ports are in the knock space too.
			"knock space (log these, drop them): 2001/tcp 2002/udp 2003/tcp 2222/udp"}},
		{"portknockd.toml", []string{"toml format"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			code, out, errOut := runArgs(t, "", "check", "-c", filepath.Join("..", "..", "examples", tc.file))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("check output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestCheckNamesLineOfMisspelledKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	src := "[[door]]\nname = \"ssh\"\nsequence = [\"7000\", \"8000\"]\nseq_timout = \"5s\"\nstart_command = \"true\"\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runArgs(t, "", "check", path)
	if code == 0 {
		t.Fatal("check accepted a misspelled key")
	}
	if !strings.Contains(errOut, path+":4:") || !strings.Contains(errOut, "seq_timout") {
		t.Errorf("error does not name file:line and key: %q", errOut)
	}
}

func TestParsePrintsJSONEvents(t *testing.T) {
	in := "7000 192.0.2.7\r\ngarbage\n9000/udp 2001:0db8:0000:0000:0000:0000:0000:0001\n\x00\xff\n"
	code, out, errOut := runArgs(t, in, "parse")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []map[string]any
	for line := range strings.Lines(out) {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		got = append(got, ev)
	}
	if len(got) != 2 {
		t.Fatalf("got %d events, want 2:\n%s", len(got), out)
	}
	if got[0]["src"] != "192.0.2.7" || got[0]["dport"] != 7000.0 || got[0]["proto"] != "tcp" || got[0]["format"] != "simple" {
		t.Errorf("first event = %v", got[0])
	}
	if _, ok := got[0]["flags"]; ok {
		t.Errorf("simple lines have no flags, but flags were printed: %v", got[0])
	}
	if got[1]["src"] != "2001:db8::1" || got[1]["proto"] != "udp" {
		t.Errorf("second event = %v", got[1])
	}
	if !strings.Contains(errOut, "4 lines: 2 knock events") {
		t.Errorf("summary on stderr = %q", errOut)
	}
}

// TestParsePrograms checks that parse counts a record in another
// program's message as "program", takes it with --program, and refuses a
// name no syslog tag has.
func TestParsePrograms(t *testing.T) {
	in := "Nov 22 12:00:01 fw ulogport: 7000 192.0.2.7\nNov 22 12:00:01 fw sshd[42]: Invalid user 7000 192.0.2.7\n"
	if code, out, errOut := runArgs(t, in, "parse"); code != 0 || out != "" || !strings.Contains(errOut, "2 lines: 0 knock events, 2 unrecognized") {
		t.Errorf("exit %d, out %q, summary %q", code, out, errOut)
	}
	kernel := "Nov 22 12:00:01 fw fwkern: knock IN=eth0 OUT= SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0\n"
	if code, out, errOut := runArgs(t, kernel, "parse", "-f", "netfilter"); code != 0 || out != "" || !strings.Contains(errOut, "1 lines: 0 knock events, 1 program") {
		t.Errorf("renamed kernel: exit %d, out %q, summary %q", code, out, errOut)
	}
	if code, out, errOut := runArgs(t, kernel, "parse", "-f", "netfilter", "--program", "fwkern"); code != 0 || !strings.Contains(out, `"dport":7000`) {
		t.Errorf("renamed kernel with --program: exit %d, out %q, summary %q", code, out, errOut)
	}
	code, out, errOut := runArgs(t, in, "parse", "--program", "ulogport")
	if code != 0 || !strings.Contains(out, `"src":"192.0.2.7"`) || !strings.Contains(errOut, "2 lines: 1 knock events, 1 unrecognized") {
		t.Errorf("--program ulogport: exit %d, out %q, summary %q", code, out, errOut)
	}
	if code, _, errOut := runArgs(t, in, "parse", "--program", "sshd[42]"); code != 2 || !strings.Contains(errOut, "sshd[42]") {
		t.Errorf("--program sshd[42]: exit %d, %q", code, errOut)
	}
}

func TestKnockdConfRunsAsIs(t *testing.T) {
	// stdin ends, so the daemon stops by itself once the door has opened.
	knocks := "7000 192.0.2.7\n8000 192.0.2.7\n9000 192.0.2.7\n"
	code, _, errOut := runArgs(t, knocks, "-c", "../../examples/knockd.conf", "-i", "-", "--dry-run", "-g", filepath.Join(t.TempDir(), "log"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`msg="knock sequence complete" door=openSSH src=192.0.2.7`,
		`command="/usr/sbin/iptables -A INPUT -s 192.0.2.7 -p tcp --dport 22 -j ACCEPT"`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("log lacks %s:\n%s", want, errOut)
		}
	}
}

func TestFlags(t *testing.T) {
	if code, out, _ := runArgs(t, "", "-V"); code != 0 || !strings.HasPrefix(out, "portknockd ") {
		t.Errorf("-V: exit %d, %q", code, out)
	}
	if code, _, errOut := runArgs(t, "", "--no-such-flag"); code != 2 || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("unknown flag: exit %d, %q", code, errOut)
	}
	if code, out, _ := runArgs(t, "", "-h"); code != 0 || !strings.Contains(out, "--dry-run") {
		t.Errorf("-h: exit %d, %q", code, out)
	}
	if code, _, errOut := runArgs(t, "", "-c", "/nonexistent/portknockd.toml"); code != 1 || !strings.Contains(errOut, "/nonexistent/portknockd.toml") {
		t.Errorf("missing config: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runArgs(t, "", "-c", "../../examples/knockd.conf"); code != 1 || !strings.Contains(errOut, "no inputs") {
		t.Errorf("knockd.conf without -i: exit %d, %q", code, errOut)
	}
}
