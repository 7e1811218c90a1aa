package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"portknock/config"
)

// writeConfig writes a configuration of one door with a timed close and
// the given extra TOML, owned and moded as the daemon wants it.
func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "portknockd.toml")
	src := "[daemon]\nstate_dir = \"" + filepath.Join(dir, "state") + "\"\n" + extra + `
[[door]]
name = "ssh"
sequence = ["7000", "9000", "8000"]
start_command = "true"
stop_command = "true"
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSignalsLogged: SIGINT and SIGTERM are each logged by name before the
// stop they cause; SIGHUP reloads and does not stop.
func TestSignalsLogged(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(signalName(sig), func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime}))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sigs := make(chan os.Signal, 2)
			sigs <- syscall.SIGHUP
			sigs <- sig
			reloads := 0
			done := make(chan struct{})
			go func() {
				defer close(done)
				handleSignals(ctx, sigs, log, cancel, func() { reloads++ })
			}()
			<-done // ends only once stop has cancelled ctx
			if reloads != 1 {
				t.Errorf("reloads = %d, want 1", reloads)
			}
			want := `level=INFO msg="signal received; shutting down" signal=` + signalName(sig) + "\n"
			if buf.String() != want {
				t.Errorf("log = %q, want %q", buf.String(), want)
			}
		})
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// TestSyslogUnavailable: without a syslog daemon (no /dev/log) the logger
// says so once and logs on, instead of stopping the start.
func TestSyslogUnavailable(t *testing.T) {
	var stderr bytes.Buffer
	dial := func() (io.WriteCloser, error) { return nil, errors.New("Unix syslog delivery error") }
	log, closeLog, err := newLogger(&stderr, config.Daemon{UseSyslog: true}, slog.LevelInfo, false, dial)
	if err != nil {
		t.Fatalf("newLogger: %v", err)
	}
	defer closeLog()
	log.Info("after")
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `level=WARN msg="cannot log to syslog; logging without it" err="Unix syslog delivery error"`) ||
		!strings.Contains(lines[1], "msg=after") {
		t.Errorf("stderr = %q, want one warning, then the log going on", lines)
	}
}

// TestStartErrorsBeforeStarted: an input that cannot bind or open stops
// the start before "portknockd started" is logged, with the input named
// once and the cause as the system gives it.
func TestStartErrorsBeforeStarted(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.LocalAddr().String()
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		extra string
		args  []string
		want  string
	}{
		{"port in use", "[[input]]\ntype = \"syslog\"\nlisten = \"" + addr + "\"\nformat = \"simple\"\n", nil,
			`err="input syslog:udp:` + addr + `: listen udp ` + addr + `: bind: address already in use"`},
		{"directory", "", []string{"-i", dir},
			`err="input text:` + dir + `: ` + dir + ` is neither a FIFO nor a regular file (d---------)"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, tc.extra)
			code, _, errOut := runArgs(t, "", append([]string{"-c", cfg}, tc.args...)...)
			if code != exitFail {
				t.Errorf("exit %d, want %d", code, exitFail)
			}
			if !strings.Contains(errOut, `level=ERROR msg="cannot start" `+tc.want) {
				t.Errorf("log lacks the error %s:\n%s", tc.want, errOut)
			}
			if strings.Contains(errOut, "portknockd started") {
				t.Errorf("started logged for a daemon that could not start:\n%s", errOut)
			}
		})
	}
}

// TestInputSpecsRefused: a bad -i stops the daemon before anything is
// read, and check refuses it in the same words.
func TestInputSpecsRefused(t *testing.T) {
	cfg := writeConfig(t, "")
	for _, spec := range []string{"text:netfliter:/var/log/kern.log", "nflog:5,x", "syslog:udp:127.0.0.1:514"} {
		t.Run(spec, func(t *testing.T) {
			_, perr := config.ParseInputSpec(spec)
			if perr == nil {
				t.Fatalf("%s accepted", spec)
			}
			want := "-i " + spec + ": " + perr.Error() + "\n"
			code, _, errOut := runArgs(t, "", "-c", cfg, "-i", spec)
			if code != exitUsage || errOut != "portknockd: "+want {
				t.Errorf("daemon: exit %d, %q; want %d, %q", code, errOut, exitUsage, "portknockd: "+want)
			}
			code, _, errOut = runArgs(t, "", "check", "-c", cfg, "-i", spec)
			if code != exitUsage || errOut != "portknockd check: "+want {
				t.Errorf("check: exit %d, %q; want %d, %q", code, errOut, exitUsage, "portknockd check: "+want)
			}
		})
	}
}

// TestCheckWarnings: check says which doors never close, that a
// knockd.conf needs -i, that a followed file is not there yet, and when
// state_dir cannot be used by the daemon's user.
func TestCheckWarnings(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "not-yet.log")
	knockd := filepath.Join(dir, "knockd.conf")
	if err := os.WriteFile(knockd, []byte("[openSSH]\n\tsequence = 7000,8000,9000\n\tcommand = /bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "")
	code, _, errOut := runArgs(t, "", "check", "-c", knockd)
	if code != exitOK {
		t.Errorf("knockd.conf: exit %d:\n%s", code, errOut)
	}
	for _, w := range []string{
		"warning: " + knockd + ": no inputs: add an [[input]] to the configuration or use -i",
		`warning: door "openSSH" has no close: no stop_command and no nft_set, so what its start_command opens stays open`,
	} {
		if !strings.Contains(errOut, w) {
			t.Errorf("knockd.conf: check lacks %q:\n%s", w, errOut)
		}
	}

	code, _, errOut = runArgs(t, "", "check", "-c", cfg, "-i", missing)
	if code != exitOK {
		t.Errorf("missing file: exit %d:\n%s", code, errOut)
	}
	want := "warning: input text:" + missing + ": stat " + missing + ": no such file or directory; the daemon waits for it\n"
	if !strings.Contains(errOut, want) {
		t.Errorf("check lacks %q:\n%s", want, errOut)
	}
	if strings.Contains(errOut, "no inputs") || strings.Contains(errOut, "has no close") {
		t.Errorf("check warns of what is there:\n%s", errOut)
	}

	if os.Geteuid() != 0 {
		t.Skip("judging state_dir for another user needs root to make it")
	}
	state := filepath.Join(filepath.Dir(cfg), "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runArgs(t, "", "check", "-c", cfg, "-i", "-", "--user", "65534")
	want = "warning: state_dir " + state + " is not writable by uid 65534, whom the daemon runs as"
	if !strings.Contains(errOut, want) {
		t.Errorf("check --user 65534 (exit %d) lacks %q:\n%s", code, want, errOut)
	}
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	_, _, errOut = runArgs(t, "", "check", "-c", cfg, "-i", "-", "--user", "65534")
	want = "warning: state_dir " + state + " does not exist, and uid 65534 cannot make it in " + filepath.Dir(state)
	if !strings.Contains(errOut, want) {
		t.Errorf("check --user 65534 lacks %q:\n%s", want, errOut)
	}
}

// TestParseDebugReasons: parse -D names each skipped line's reason.
func TestParseDebugReasons(t *testing.T) {
	in := "7000 192.0.2.7\njunk\n0 192.0.2.7\n"
	code, _, errOut := runArgs(t, in, "parse", "-D", "-f", "simple")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "skipped line 2: unrecognized: \"junk\"\nskipped line 3: bad_port: \"0 192.0.2.7\"\n3 lines: 1 knock events, 1 unrecognized, 1 bad_port\n"
	if errOut != want {
		t.Errorf("stderr = %q, want %q", errOut, want)
	}
}
