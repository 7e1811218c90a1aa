package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portknock/config"
	"portknock/internal/filetrust"
	"portknock/internal/netnstest"
	"portknock/internal/testpki"
	"portknock/journal"
)

const nobody = 65534

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string) {
	t.Helper()
	if err := os.Chown(path, nobody, nobody); err != nil {
		t.Fatal(err)
	}
}

// wantTrustError asserts that err is a trust error about path.
func wantTrustError(t *testing.T, what string, err error, path string) {
	t.Helper()
	var te *filetrust.Error
	if !errors.As(err, &te) || te.At != path || !strings.Contains(err.Error(), "fix: ") {
		t.Fatalf("%s: %v, want a trust error about %s", what, err, path)
	}
}

// leftJournal leaves in dir a journal with one overdue close, as a daemon
// killed with a door open would; the close runs stop.
func leftJournal(t *testing.T, dir string, stop ...string) {
	t.Helper()
	j, err := journal.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Add(journal.Record{
		Door: "ssh",
		Src:  netip.MustParseAddr("192.0.2.66"),
		Due:  time.Now().Add(-time.Hour),
		Stop: config.Command{Argv: stop},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestJournalInUntrustedStateDirNeverRuns is the attack the checks are for:
// a journal names commands the daemon runs as itself at its next start, so
// one that someone else could have written must never run.
func TestJournalInUntrustedStateDirNeverRuns(t *testing.T) {
	for _, tc := range []struct {
		name    string
		root    bool
		spoil   func(t *testing.T, dir string)
		blameAt func(dir string) string
	}{
		{"state_dir writable by others", false,
			func(t *testing.T, dir string) { chmod(t, dir, 0o777) },
			func(dir string) string { return dir }},
		{"journal writable by others", false,
			func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, journal.FileName), 0o666) },
			func(dir string) string { return filepath.Join(dir, journal.FileName) }},
		{"state_dir owned by nobody", true,
			func(t *testing.T, dir string) { chown(t, dir) },
			func(dir string) string { return dir }},
		{"journal owned by nobody", true,
			func(t *testing.T, dir string) { chown(t, filepath.Join(dir, journal.FileName)) },
			func(dir string) string { return filepath.Join(dir, journal.FileName) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				netnstest.RequireRoot(t, "changing a file's owner")
			}
			tmp := t.TempDir()
			state := filepath.Join(tmp, "state")
			marker := filepath.Join(tmp, "stop-command-ran")
			leftJournal(t, state, "touch", marker)
			tc.spoil(t, state)

			cfg := doorConfig(t, mkfifo(t, "input"), mkfifo(t, "signal"), "")
			cfg.Daemon.StateDir = state
			var logs syncBuffer
			d, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err == nil {
				run(t, d).stop(t)
				t.Fatal("daemon started on an untrusted state_dir")
			}
			wantTrustError(t, "New", err, tc.blameAt(state))
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the untrusted journal's stop command ran (%v); log:\n%s", err, logs.String())
			}
			if strings.Contains(logs.String(), "192.0.2.66") {
				t.Errorf("the untrusted journal's close was read:\n%s", logs.String())
			}
		})
	}
}

// TestJournalOfOurOwnRuns is the control for the test above: the same
// journal, trusted, has its overdue close run at start.
func TestJournalOfOurOwnRuns(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	leftJournal(t, state, "sh", "-c", "echo close from the journal > "+sig)
	cfg := doorConfig(t, mkfifo(t, "input"), sig, "")
	cfg.Daemon.StateDir = state
	d, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, d)
	expect(t, ch, "close from the journal")
	r.stop(t)
}

func TestStartRefusesUntrustedInputs(t *testing.T) {
	t.Run("FIFO anyone can write", func(t *testing.T) {
		in := mkfifo(t, "input")
		chmod(t, in, 0o622)
		_, err := New(doorConfig(t, in, mkfifo(t, "signal"), ""), Options{})
		wantTrustError(t, "New", err, in)
		if !strings.Contains(err.Error(), "input text:") {
			t.Errorf("error does not name the input: %v", err)
		}
	})
	t.Run("extra input from the command line", func(t *testing.T) {
		extra := mkfifo(t, "extra")
		chmod(t, extra, 0o666)
		_, err := New(doorConfig(t, mkfifo(t, "input"), mkfifo(t, "signal"), ""), Options{
			ExtraInputs: []config.Input{{Type: config.InputText, Path: extra, Format: "auto"}},
		})
		wantTrustError(t, "New", err, extra)
	})
	t.Run("one-time sequence file", func(t *testing.T) {
		ots := filepath.Join(t.TempDir(), "web.seq")
		if err := os.WriteFile(ots, []byte("1000,2000\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		chmod(t, ots, 0o666)
		cfg := doorConfig(t, mkfifo(t, "input"), mkfifo(t, "signal"), fmt.Sprintf(`
[[door]]
name = "web"
one_time_sequences = %q
start_command = "true"
`, ots))
		_, err := New(cfg, Options{})
		wantTrustError(t, "New", err, ots)
	})
}

// TestReloadRefusesUntrustedConfig: a configuration file that has become
// writable by others, or another user's, is refused at SIGHUP, and the
// running doors stay.
func TestReloadRefusesUntrustedConfig(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	path := filepath.Join(t.TempDir(), "portknockd.toml")
	write := func(doors string) {
		t.Helper()
		src := fmt.Sprintf(`
[[input]]
type = "text"
path = %q
format = "simple"
%s`, in, doors)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	door := func(name, port string) string {
		return fmt.Sprintf(`
[[door]]
name = %q
sequence = [%q]
start_command = ["sh", "-c", "echo open %%DOOR%% %%IP%% > %s"]
`, name, port, sig)
	}
	write(door("ssh", "7000"))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	d := start(t, cfg, Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Load:   func() (*config.Config, error) { return config.Load(path) },
	})
	ctx := context.Background()

	refuse := func(what string) {
		t.Helper()
		wantTrustError(t, "Reload of "+what, d.Reload(ctx), path)
		if !strings.Contains(logs.String(), "reload failed; keeping the running configuration") {
			t.Errorf("refused reload not logged:\n%s", logs.String())
		}
		// The running door still opens; the file's new door does not.
		writeLines(t, in, "8000 192.0.2.8", "7000 192.0.2.7")
		expect(t, ch, "open ssh 192.0.2.7")
	}
	write(door("ssh", "7000") + door("web", "8000"))
	chmod(t, path, 0o666)
	refuse("a 0666 file")
	if os.Geteuid() == 0 {
		chmod(t, path, 0o644)
		chown(t, path)
		refuse("nobody's file")
		if err := os.Chown(path, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	chmod(t, path, 0o600)
	if err := d.Reload(ctx); err != nil {
		t.Fatalf("Reload of the file made trusted again: %v", err)
	}
	writeLines(t, in, "8000 192.0.2.8")
	expect(t, ch, "open web 192.0.2.8")
}

// TestStartRefusesUntrustedTLSFiles: a TLS syslog input's key, certificate
// and client CAs are judged like every file the daemon believes, the key
// as a secret.
func TestStartRefusesUntrustedTLSFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		root  bool
		spoil func(t *testing.T, s *testpki.Cert, ca string) (path, want string)
	}{
		{"client CA writable by others", false, func(t *testing.T, s *testpki.Cert, ca string) (string, string) {
			chmod(t, ca, 0o666)
			return ca, "tls_client_ca: " + ca + ": not trusted"
		}},
		{"certificate in a directory others can write", false, func(t *testing.T, s *testpki.Cert, ca string) (string, string) {
			dir := filepath.Dir(s.CertFile)
			chmod(t, dir, 0o777)
			return dir, "tls_cert: " + s.CertFile + ": not trusted: directory " + dir
		}},
		{"key of another user", true, func(t *testing.T, s *testpki.Cert, ca string) (string, string) {
			chown(t, s.KeyFile)
			return s.KeyFile, "tls_key: " + s.KeyFile + ": not trusted: owned by nobody (uid 65534), mode 0600"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				netnstest.RequireRoot(t, "changing a file's owner")
			}
			pki := t.TempDir()
			ca := testpki.NewCA(t, pki, "test")
			server := ca.Server(t, "server")
			at, want := tc.spoil(t, server, ca.CertFile)
			cfg, err := config.Parse(filepath.Join(t.TempDir(), "t.toml"), []byte(fmt.Sprintf(`
[daemon]
state_dir = %q
[[input]]
type = "syslog"
network = "tls"
listen = "127.0.0.1:0"
tls_cert = %q
tls_key = %q
tls_client_ca = %q
[[door]]
name = "ssh"
sequence = ["7000"]
start_command = "true"
`, t.TempDir(), server.CertFile, server.KeyFile, ca.CertFile)))
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(cfg, Options{})
			if d != nil {
				run(t, d).stop(t)
			}
			wantTrustError(t, "New", err, at)
			if !strings.Contains(err.Error(), "input syslog:tls:127.0.0.1:0: "+want) {
				t.Errorf("New: %v, want %q", err, want)
			}
		})
	}
}
