package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portknock/config"
	"portknock/nftset"
)

func TestDoorsWithoutClose(t *testing.T) {
	start := config.Command{Shell: "true"}
	set := nftset.Ref{Family: nftset.FamilyInet, Table: "fw", Set: "knock"}
	cfg := &config.Config{Doors: []config.Door{
		{Name: "start-only", StartCommand: start, CmdTimeout: time.Second},
		{Name: "timed", StartCommand: start, StopCommand: start, CmdTimeout: time.Second},
		{Name: "at-exit", StartCommand: start, StopCommand: start},
		{Name: "set", NFTSet: set, CmdTimeout: time.Second},
		{Name: "set-forever", NFTSet: set},
	}}
	got := DoorsWithoutClose(cfg)
	want := []string{
		`door "start-only" has no close: no stop_command and no nft_set, so what its start_command opens stays open`,
		`door "at-exit" has no timed close: cmd_timeout is 0, so its stop_command runs only when portknockd stops`,
		`door "set-forever" has no timed close: cmd_timeout is 0, so its set elements never time out`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("DoorsWithoutClose =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckStateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("judging directories for another user needs root to make them theirs")
	}
	const other = 65534
	base := t.TempDir()
	mine := filepath.Join(base, "mine")
	theirs := filepath.Join(base, "theirs")
	file := filepath.Join(base, "file")
	for _, d := range []string{mine, theirs} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(theirs, other, other); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		uid  uint32
		want string // "" for no warning
	}{
		{mine, 0, ""},
		{theirs, other, ""},
		{mine, other, "state_dir " + mine + " is not writable by uid 65534, whom the daemon runs as"},
		{filepath.Join(theirs, "state"), other, "state_dir " + filepath.Join(theirs, "state") + " does not exist yet; the daemon makes it"},
		{filepath.Join(mine, "state"), other, "state_dir " + filepath.Join(mine, "state") + " does not exist, and uid 65534 cannot make it in " + mine},
		{filepath.Join(base, "no", "state"), 0, "state_dir " + filepath.Join(base, "no", "state") + " does not exist, nor does " + filepath.Join(base, "no")},
		{file, 0, "state_dir " + file + " is not a directory"},
	} {
		err := CheckStateDir(tc.dir, tc.uid)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckStateDir(%s, %d) = %v, want nil", tc.dir, tc.uid, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("CheckStateDir(%s, %d) = %v, want %q…", tc.dir, tc.uid, err, tc.want)
		}
	}
}
