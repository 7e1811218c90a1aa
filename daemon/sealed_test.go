package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portknock/config"
	"portknock/replay"
	"portknock/sealed"
)

// sealedSetup is a configuration file with two sealed doors on base 40000
// (open, id 0; shut, id 1) and their key, reading knocks from a FIFO.
type sealedSetup struct {
	dir, cfg, in, sig, state string
	sealer                   *sealed.Sealer
}

func newSealedSetup(t *testing.T) *sealedSetup {
	t.Helper()
	s := &sealedSetup{dir: t.TempDir(), in: mkfifo(t, "input"), sig: mkfifo(t, "signal")}
	s.state = filepath.Join(s.dir, "state")
	s.cfg = filepath.Join(s.dir, "portknockd.toml")
	k, err := sealed.NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := k.MarshalText()
	if err := os.WriteFile(filepath.Join(s.dir, "door.key"), text, 0o600); err != nil {
		t.Fatal(err)
	}
	s.sealer = sealed.NewSealer(k)
	src := fmt.Sprintf(`
[daemon]
state_dir = "state"

[[input]]
type = "text"
path = %q
format = "simple"

[[door]]
name = "open"
sealed = { base = 40000, key_file = "door.key" }
start_command = ["sh", "-c", "echo open %%DOOR%% %%IP%% %%PROTO%% > %s"]

[[door]]
name = "shut"
sealed = { base = 40000, key_file = "door.key", id = 1 }
start_command = ["sh", "-c", "echo shut %%DOOR%% %%IP%% > %s"]
`, s.in, s.sig, s.sig)
	if err := os.WriteFile(s.cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *sealedSetup) load(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// knocks returns the 16 input lines of a block for door id, bound to src,
// made now.
func (s *sealedSetup) knocks(src string, id byte, nonce byte) []string {
	a := netip.MustParseAddr(src)
	ports := sealed.Ports(40000, s.sealer.Seal(time.Now(), [4]byte{nonce, 1, 2, 3}, a, id))
	lines := make([]string, len(ports))
	for i, p := range ports {
		lines[i] = fmt.Sprintf("%d/tcp %s", p, src)
	}
	return lines
}

func count(logs *syncBuffer, s string) int { return strings.Count(logs.String(), s) }

// TestSealedKnockOpensOnce: sixteen lines of a sealed block open the door
// whose id they carry; the same lines again open nothing and are logged as
// a replay, also by a daemon restarted on the same state_dir.
func TestSealedKnockOpensOnce(t *testing.T) {
	s := newSealedSetup(t)
	ch := signals(t, s.sig)
	logs, log := debugLogs(t)
	d := start(t, s.load(t), Options{Logger: log})

	lines := s.knocks("192.0.2.1", 0, 1)
	writeLines(t, s.in, lines...)
	expect(t, ch, "open open 192.0.2.1 tcp")
	writeLines(t, s.in, s.knocks("2001:db8::1", 1, 2)...)
	expect(t, ch, "shut shut 2001:db8::1")

	writeLines(t, s.in, lines...)
	waitLog(t, logs, `msg="sealed knock rejected" door=open src=192.0.2.1 input=text:`+s.in+` reason=replay`)
	if n := count(logs, `msg="knock sequence complete" door=open`); n != 1 {
		t.Fatalf("door opened %d times, want once", n)
	}
	if err := d.stop(t); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "msg=\"sealed totals\" knocks=48 checks=3 rejected_key=0 rejected_door=0 rejected_source=0 rejected_skew=0 rejected_replay=1 replay_errors=0")
	if fi, err := os.Stat(filepath.Join(s.state, replay.FileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("replay cache: %v, %v; want it in state_dir, mode 0600", fi, err)
	}

	// A new daemon on the same state_dir refuses the replay too.
	logs2, log2 := debugLogs(t)
	start(t, s.load(t), Options{Logger: log2})
	writeLines(t, s.in, lines...)
	waitLog(t, logs2, `msg="sealed knock rejected" door=open src=192.0.2.1 input=text:`+s.in+` reason=replay`)
	writeLines(t, s.in, s.knocks("192.0.2.1", 0, 3)...)
	expect(t, ch, "open open 192.0.2.1 tcp")
	if n := count(logs2, `msg="knock sequence complete"`); n != 1 {
		t.Errorf("restarted daemon opened %d times, want once (the fresh block)", n)
	}
}

// TestSealedRejectionsLogged: a block for another source and a set of
// noise are each logged once with their reason.
func TestSealedRejectionsLogged(t *testing.T) {
	s := newSealedSetup(t)
	logs, log := debugLogs(t)
	start(t, s.load(t), Options{Logger: log})
	// Made for 192.0.2.9, sent from 192.0.2.1: a NAT would do this.
	other := s.knocks("192.0.2.9", 0, 1)
	for i := range other {
		other[i] = strings.Replace(other[i], "192.0.2.9", "192.0.2.1", 1)
	}
	writeLines(t, s.in, other...)
	waitLog(t, logs, `msg="sealed knock rejected" door=open src=192.0.2.1 input=text:`+s.in+` reason=source`)
	var noise []string
	for i := range 16 {
		noise = append(noise, fmt.Sprintf("%d/tcp 198.51.100.7", 40000+256*i+i))
	}
	writeLines(t, s.in, noise...)
	waitLog(t, logs, `level=INFO msg="sealed knock rejected" range=40000-44095/tcp src=198.51.100.7 input=text:`+s.in+` reason=key`)
}

// TestSealedDamagedCacheRefuses: a replay cache with a damaged line
// refuses every sealed knock, with an ERROR naming door and source, while
// the hold lasts.
func TestSealedDamagedCacheRefuses(t *testing.T) {
	s := newSealedSetup(t)
	if err := os.Mkdir(s.state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.state, replay.FileName), []byte("a line a disk mangled\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs, log := debugLogs(t)
	start(t, s.load(t), Options{Logger: log})
	waitLog(t, logs, `level=ERROR msg="replay cache damaged; sealed doors refuse every knock until the hold ends"`)
	writeLines(t, s.in, s.knocks("192.0.2.1", 0, 1)...)
	waitLog(t, logs, `level=ERROR msg="cannot record the sealed block in the replay cache; not opening" door=open src=192.0.2.1`)
	if count(logs, "knock sequence complete") != 0 {
		t.Error("a sealed door opened while the damaged cache holds")
	}
}

// TestReloadAddsSealedDoor: a reload that brings the first sealed door
// opens the replay cache, and the door works.
func TestReloadAddsSealedDoor(t *testing.T) {
	s := newSealedSetup(t)
	ch := signals(t, s.sig)
	sealedCfg := s.load(t)
	plain := *sealedCfg
	plain.Doors = nil
	plain.Doors = append(plain.Doors, doorConfig(t, s.in, s.sig, "").Doors...)
	_, log := debugLogs(t)
	d := start(t, &plain, Options{Logger: log, Load: func() (*config.Config, error) { return sealedCfg, nil }})
	if err := d.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	writeLines(t, s.in, s.knocks("192.0.2.1", 0, 1)...)
	expect(t, ch, "open open 192.0.2.1 tcp")
}

// TestSealedDryRunKeepsCacheInMemory: a dry run writes nothing to
// state_dir, yet still refuses a replay.
func TestSealedDryRunKeepsCacheInMemory(t *testing.T) {
	s := newSealedSetup(t)
	var logs syncBuffer
	start(t, s.load(t), Options{DryRun: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	lines := s.knocks("192.0.2.1", 0, 1)
	writeLines(t, s.in, lines...)
	waitLog(t, &logs, `msg="knock sequence complete" door=open src=192.0.2.1`)
	writeLines(t, s.in, lines...)
	waitLog(t, &logs, "reason=replay")
	if _, err := os.Stat(s.state); err == nil {
		t.Error("a dry run created state_dir")
	}
}

// TestSealedDoorTimedClose: a sealed match is a match: its close is
// journaled, a re-knock with a new block extends it, and a clean stop runs
// it.
func TestSealedDoorTimedClose(t *testing.T) {
	s := newSealedSetup(t)
	data, err := os.ReadFile(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(string(data), `sealed = { base = 40000, key_file = "door.key" }`,
		`sealed = { base = 40000, key_file = "door.key" }
stop_command = ["sh", "-c", "echo close %DOOR% %IP% > `+s.sig+`"]
cmd_timeout = "1h"`, 1)
	if err := os.WriteFile(s.cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ch := signals(t, s.sig)
	logs, log := debugLogs(t)
	d := start(t, s.load(t), Options{Logger: log})
	writeLines(t, s.in, s.knocks("2001:db8::5", 0, 1)...)
	expect(t, ch, "open open 2001:db8::5 tcp")
	writeLines(t, s.in, s.knocks("2001:db8::5", 0, 2)...)
	waitLog(t, logs, `msg="re-knock extends open" door=open src=2001:db8::5`)
	done := make(chan error, 1)
	go func() { done <- d.stop(t) }()
	expect(t, ch, "close open 2001:db8::5")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
