package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portknock/config"
	"portknock/journal"
)

// TestRefusedReloadChangesNothing: a reload refused because the journal it
// needs cannot be opened leaves the running doors as they were: the new door
// does not answer, and the running door's one-time file still works.
func TestRefusedReloadChangesNothing(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	dir := t.TempDir()
	stateFile := filepath.Join(dir, "not-a-dir")
	ots := filepath.Join(dir, "web.seq")
	if err := os.WriteFile(ots, []byte("1000,2000\n3000,4000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stateFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf(`
[daemon]
state_dir = %q

[[input]]
type = "text"
path = %q
format = "simple"

[[door]]
name = "web"
one_time_sequences = %q
start_command = ["sh", "-c", "echo open %%DOOR%% %%IP%% > %s"]
`, stateFile, in, ots, sig)
	parse := func(src string) *config.Config {
		t.Helper()
		cfg, err := config.Parse(filepath.Join(dir, "test.toml"), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	first := parse(base)
	// The new door closes itself later, so it needs the journal, which
	// cannot live in a regular file.
	second := parse(base + fmt.Sprintf(`
[[door]]
name = "ssh"
sequence = ["7000", "8000"]
start_command = ["sh", "-c", "echo open %%DOOR%% %%IP%% > %s"]
stop_command = ["sh", "-c", "echo close %%DOOR%% %%IP%% > %s"]
cmd_timeout = "1h"
`, sig, sig))
	var logs syncBuffer
	d := start(t, first, Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Load:   func() (*config.Config, error) { return second, nil },
	})
	if err := d.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Reload = %v; want it refused for the state_dir", err)
	}
	// Matches are handed on in the order their lines arrive, so once the
	// web door has opened, an ssh match would already be in the log.
	writeLines(t, in, "7000 192.0.2.1", "8000 192.0.2.1", "1000 192.0.2.2", "2000 192.0.2.2")
	expect(t, ch, "open web 192.0.2.2")
	if strings.Contains(logs.String(), "door=ssh") {
		t.Errorf("the refused configuration's door answered:\n%s", logs.String())
	}
	data, err := os.ReadFile(ots)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "#000,2000\n3000,4000\n" {
		t.Errorf("one-time file after the knock: %q; want its first sequence marked used", data)
	}
}

// pendingClose leaves a close in stateDir's journal as a killed daemon
// would, reporting to sig when it runs.
func pendingClose(t *testing.T, stateDir, sig string, due time.Time) {
	t.Helper()
	j, err := journal.Open(stateDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Add(journal.Record{
		Door: "ssh",
		Src:  netip.MustParseAddr("192.0.2.9"),
		Due:  due,
		Stop: config.Command{Argv: []string{"sh", "-c", "echo close ssh 192.0.2.9 > " + sig}},
	}); err != nil {
		t.Fatal(err)
	}
}

// TestFailedStartRunsRestoredCloses: a start that fails after reading the
// journal (here a syslog port already taken) runs the closes it read,
// rather than leaving those doors open with no daemon to close them.
func TestFailedStartRunsRestoredCloses(t *testing.T) {
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	cfg := doorConfig(t, "-", sig, "")
	pendingClose(t, cfg.Daemon.StateDir, sig, time.Now().Add(time.Hour))

	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg.Inputs = append(cfg.Inputs, config.Input{Type: config.InputSyslog, Network: "udp", Listen: taken.LocalAddr().String(), Format: "simple"})
	var logs syncBuffer
	d, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if d != nil || err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("New = %v, %v; want it to fail binding %s", d, err, taken.LocalAddr())
	}
	expect(t, ch, "close ssh 192.0.2.9")
	recs, _, err := journal.Read(cfg.Daemon.StateDir)
	if err != nil || len(recs) != 0 {
		t.Errorf("journal after the failed start: %+v, %v; want no pending close", recs, err)
	}
	// The journal's lock went with the failed start.
	j, err := journal.Open(cfg.Daemon.StateDir, nil)
	if err != nil {
		t.Fatalf("journal after the failed start: %v", err)
	}
	j.Close()
}

// TestSecondDaemonRefused: a daemon whose state_dir is in use by another
// refuses to start, and leaves the first one's closes alone.
func TestSecondDaemonRefused(t *testing.T) {
	sig := mkfifo(t, "signal")
	cfg := doorConfig(t, "-", sig, "")
	first, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.abort) // built, never run: its journal lock is what matters
	_, err = New(cfg, Options{})
	if !errors.Is(err, journal.ErrInUse) || !strings.Contains(err.Error(), cfg.Daemon.StateDir) {
		t.Fatalf("second New: %v; want ErrInUse naming the state_dir", err)
	}
}

// TestReloadRestoresJournal: a reload that adds the first door with a
// timed close opens the journal, and takes on the closes an earlier run
// left there.
func TestReloadRestoresJournal(t *testing.T) {
	in := mkfifo(t, "input")
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	withClose := doorConfig(t, in, sig, "")
	noClose := *withClose
	noClose.Doors = []config.Door{withClose.Doors[0]}
	noClose.Doors[0].StopCommand = config.Command{}
	noClose.Doors[0].CmdTimeout = 0
	if _, err := os.Stat(withClose.Daemon.StateDir); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	d := start(t, &noClose, Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Load:   func() (*config.Config, error) { return withClose, nil },
	})
	// Written after the start, which found no journal and opened none.
	pendingClose(t, withClose.Daemon.StateDir, sig, time.Now().Add(-time.Minute))
	if err := d.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, "close ssh 192.0.2.9")
	if !strings.Contains(logs.String(), "pending close restored from journal") {
		t.Errorf("restore not logged:\n%s", logs.String())
	}
}
