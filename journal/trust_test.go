package journal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portknock/internal/filetrust"
)

// pendingIn leaves a journal with one pending close in dir, as a crashed
// daemon would.
func pendingIn(t *testing.T, dir string) {
	t.Helper()
	j, _ := mustOpen(t, dir)
	if _, err := j.Add(rec("ssh", "192.0.2.7", t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	j.crash()
}

// refused asserts that Open refuses dir for a problem at the given path,
// returning no journal and none of its closes.
func refused(t *testing.T, dir, at string) {
	t.Helper()
	j, recs, err := openAll(dir)
	if j != nil || recs != nil {
		j.Close()
		t.Fatalf("Open of an untrusted state_dir returned a journal and %d closes", len(recs))
	}
	var te *filetrust.Error
	if !errors.As(err, &te) || te.At != at {
		t.Fatalf("Open: %v, want a trust error about %s", err, at)
	}
	if !strings.HasPrefix(err.Error(), "state_dir: ") || !strings.Contains(err.Error(), "fix: ") {
		t.Errorf("Open: %v", err)
	}
	if err := CheckDir(dir, uint32(os.Geteuid())); err == nil {
		t.Errorf("CheckDir accepts what Open refuses")
	}
}

func TestOpenRefusesUntrustedStateDir(t *testing.T) {
	t.Run("state_dir writable by others", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		pendingIn(t, dir)
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, dir)
	})
	t.Run("journal writable by others", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		pendingIn(t, dir)
		journal := filepath.Join(dir, FileName)
		if err := os.Chmod(journal, 0o622); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, journal)
	})
	t.Run("another file in state_dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		pendingIn(t, dir)
		other := filepath.Join(dir, "replay.cache")
		if err := os.WriteFile(other, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(other, 0o666); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, other)
	})
	t.Run("directory above writable by others", func(t *testing.T) {
		above := filepath.Join(t.TempDir(), "above")
		dir := filepath.Join(above, "state")
		pendingIn(t, dir)
		if err := os.Chmod(above, 0o777); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, above)
	})
	t.Run("missing state_dir in a directory writable by others", func(t *testing.T) {
		above := filepath.Join(t.TempDir(), "above")
		if err := os.Mkdir(above, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(above, 0o777); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(above, "state")
		refused(t, dir, above)
		if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("refused state_dir was created: %v", err)
		}
	})
}

func TestCheckDirTrusted(t *testing.T) {
	uid := uint32(os.Geteuid())
	dir := filepath.Join(t.TempDir(), "state")
	if err := CheckDir(dir, uid); err != nil {
		t.Errorf("missing state_dir: %v", err)
	}
	pendingIn(t, dir)
	if err := CheckDir(dir, uid); err != nil {
		t.Errorf("state_dir as Open leaves it: %v", err)
	}
	// Readable by others is allowed (and warned about by Open).
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(dir, uid); err != nil {
		t.Errorf("0755 state_dir: %v", err)
	}
}

// TestStateDirOfAnotherUser is the attack: a journal in a state_dir that
// another user owns names commands the daemon would run as itself.
func TestStateDirOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	const nobody = 65534
	t.Run("state_dir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		pendingIn(t, dir)
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, dir)
		// The same directory is the daemon's own when it runs as nobody.
		if err := CheckDir(dir, nobody); err != nil {
			t.Errorf("judged as its owner: %v", err)
		}
	})
	t.Run("journal", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		pendingIn(t, dir)
		journal := filepath.Join(dir, FileName)
		if err := os.Chown(journal, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		refused(t, dir, journal)
	})
}
