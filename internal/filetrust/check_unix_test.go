//go:build unix

package filetrust

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"portknock/internal/netnstest"
)

// nobody is the other user of the root-only tests.
const nobody = 65534

// mkfile writes a file and gives it exactly mode, whatever the umask.
func mkfile(t *testing.T, path string, mode fs.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chmod(t, path, mode)
	return path
}

func mkdir(t *testing.T, path string, mode fs.FileMode) string {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	chmod(t, path, mode)
	return path
}

func chmod(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) string {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// only returns the single *Error in err, failing the test otherwise.
func only(t *testing.T, err error) *Error {
	t.Helper()
	errs := trustErrors(err)
	if len(errs) != 1 {
		t.Fatalf("got %d trust errors, want 1: %v", len(errs), err)
	}
	return errs[0]
}

func trustErrors(err error) []*Error {
	var out []*Error
	if e, ok := err.(*Error); ok {
		return []*Error{e}
	}
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range u.Unwrap() {
			out = append(out, trustErrors(e)...)
		}
	}
	return out
}

func TestCheckModes(t *testing.T) {
	dir := t.TempDir()
	uid := uint32(os.Geteuid())

	for _, mode := range []fs.FileMode{0o600, 0o644, 0o640, 0o400} {
		if err := Check(mkfile(t, filepath.Join(dir, "ok"+mode.String()), mode), Config); err != nil {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}

	bad := mkfile(t, filepath.Join(dir, "bad.toml"), 0o666)
	e := only(t, Check(bad, Config))
	if e.Path != bad || e.At != bad || e.As != Config || e.Problems != GroupWrite|OtherWrite || e.UID != uid {
		t.Errorf("0666 file: %+v", e)
	}
	if !strings.Contains(e.Error(), "mode 0666") || !strings.HasSuffix(e.Error(), "fix: chmod go-w "+bad) {
		t.Errorf("0666 file: %v", e)
	}

	key := mkfile(t, filepath.Join(dir, "door.key"), 0o640)
	if e := only(t, Check(key, Secret)); e.Problems != GroupRead || !strings.HasSuffix(e.Error(), "chmod 600 "+key) {
		t.Errorf("0640 key: %v", e)
	}
	if err := Check(key, Config); err != nil {
		t.Errorf("0640 file read as configuration: %v", err)
	}

	// A relative path is judged, and reported, as the absolute one.
	t.Chdir(dir)
	if e := only(t, Check("bad.toml", Config)); e.Path != bad {
		t.Errorf("relative path reported as %q, want %q", e.Path, bad)
	}
}

func TestCheckDirectories(t *testing.T) {
	dir := t.TempDir()

	open := mkdir(t, filepath.Join(dir, "open"), 0o777)
	f := mkfile(t, filepath.Join(open, "x.toml"), 0o644)
	e := only(t, Check(f, Config))
	if e.At != open || e.As != Parent || e.Path != f || !strings.Contains(e.Error(), "directory "+open+" above it") ||
		!strings.HasSuffix(e.Error(), "fix: chmod go-w "+open) {
		t.Errorf("file in a 0777 directory: %v", e)
	}

	// A sticky directory is fine to pass through, as /tmp is...
	sticky := mkdir(t, filepath.Join(dir, "sticky"), 0o777|fs.ModeSticky)
	if err := Check(mkfile(t, filepath.Join(sticky, "x.toml"), 0o644), Config); err != nil {
		t.Errorf("file in a sticky directory: %v", err)
	}
	// ...but not as the state directory itself.
	if e := only(t, Check(sticky, State)); e.At != sticky || e.As != State {
		t.Errorf("sticky state_dir: %v", e)
	}
	if err := Check(mkdir(t, filepath.Join(dir, "state"), 0o700), State); err != nil {
		t.Errorf("0700 state_dir: %v", err)
	}

	// Every problem on the way is reported, not only the first.
	inner := mkdir(t, filepath.Join(open, "inner"), 0o775)
	g := mkfile(t, filepath.Join(inner, "y.toml"), 0o666)
	errs := trustErrors(Check(g, Config))
	if len(errs) != 3 || errs[0].At != open || errs[1].At != inner || errs[2].At != g {
		t.Errorf("three problems on the way: %v", errs)
	}

	// A file whose name runs through something not a directory.
	plain := mkfile(t, filepath.Join(dir, "plain"), 0o644)
	if err := Check(filepath.Join(plain, "sub"), Config); !errors.Is(err, syscall.ENOTDIR) || len(trustErrors(err)) != 0 {
		t.Errorf("path through a file: %v", err)
	}
}

func TestCheckMissing(t *testing.T) {
	dir := t.TempDir()
	// Missing below trusted directories: the caller may create it.
	err := Check(filepath.Join(dir, "state", "closes.journal"), State)
	if !errors.Is(err, fs.ErrNotExist) || len(trustErrors(err)) != 0 {
		t.Errorf("missing state file: %v", err)
	}
	// Missing below an untrusted directory: the distrust is the news.
	open := mkdir(t, filepath.Join(dir, "open"), 0o777)
	err = Check(filepath.Join(open, "state"), State)
	if errors.Is(err, fs.ErrNotExist) || only(t, err).At != open {
		t.Errorf("missing state_dir under a 0777 directory: %v", err)
	}
	// CheckExisting lets the first pass and reports the second.
	uid := uint32(os.Geteuid())
	if err := CheckExisting(filepath.Join(dir, "state", "closes.journal"), State, uid); err != nil {
		t.Errorf("CheckExisting of a missing state file: %v", err)
	}
	if err := CheckExisting(filepath.Join(open, "state"), State, uid); err == nil || only(t, err).At != open {
		t.Errorf("CheckExisting of a missing state_dir under a 0777 directory: %v", err)
	}
}

func TestCheckSymlinks(t *testing.T) {
	dir := t.TempDir()
	real := mkdir(t, filepath.Join(dir, "real"), 0o755)
	good := mkfile(t, filepath.Join(real, "good.toml"), 0o644)
	bad := mkfile(t, filepath.Join(real, "bad.toml"), 0o666)

	if err := Check(symlink(t, good, filepath.Join(dir, "abs.toml")), Config); err != nil {
		t.Errorf("absolute symlink to a trusted file: %v", err)
	}
	if err := Check(symlink(t, "real/./good.toml", filepath.Join(dir, "rel.toml")), Config); err != nil {
		t.Errorf("relative symlink to a trusted file: %v", err)
	}
	link := symlink(t, "real/bad.toml", filepath.Join(dir, "tobad.toml"))
	if e := only(t, Check(link, Config)); e.At != bad || e.As != Config || e.Path != link {
		t.Errorf("symlink to a 0666 file: %v", e)
	}
	// The target is judged where the link leads, even through "..".
	open := mkdir(t, filepath.Join(dir, "open"), 0o777)
	mkfile(t, filepath.Join(open, "c.toml"), 0o644)
	up := symlink(t, "../open/c.toml", filepath.Join(real, "up.toml"))
	if e := only(t, Check(up, Config)); e.At != open || e.As != Parent {
		t.Errorf("symlink up into a 0777 directory: %v", e)
	}
	// A directory reached through a symlink to "..".
	parent := symlink(t, "..", filepath.Join(real, "parent"))
	if err := Check(parent, State); err != nil {
		t.Errorf("symlink to the parent directory: %v", err)
	}
	if e := only(t, Check(filepath.Join(real, "parent", "open", "c.toml"), Config)); e.At != open {
		t.Errorf("path through a symlink to ..: %v", e)
	}

	loop := symlink(t, "loop", filepath.Join(dir, "loop"))
	if err := Check(loop, Config); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("symlink loop: %v", err)
	}
	dangling := symlink(t, "nowhere", filepath.Join(dir, "dangling"))
	if err := Check(dangling, Config); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dangling symlink: %v", err)
	}
}

func TestCheckOwnersAsRoot(t *testing.T) {
	netnstest.RequireRoot(t, "changing a file's owner")
	dir := t.TempDir()
	chown := func(path string) string {
		t.Helper()
		if err := os.Lchown(path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		return path
	}

	theirs := chown(mkfile(t, filepath.Join(dir, "theirs.toml"), 0o644))
	e := only(t, Check(theirs, Config))
	if e.At != theirs || e.Problems != Owner || e.Stat.UID != nobody || e.UID != 0 || e.User != "root" {
		t.Errorf("nobody's file: %+v", e)
	}
	if !strings.Contains(e.Error(), "uid 65534") || !strings.HasSuffix(e.Error(), "fix: chown root:root "+theirs) {
		t.Errorf("nobody's file: %v", e)
	}
	// The same file is trusted by a daemon running as its owner.
	if err := CheckAs(theirs, Config, nobody); err != nil {
		t.Errorf("nobody's file judged as nobody: %v", err)
	}
	// Root's files are trusted by any daemon.
	if err := CheckAs(mkfile(t, filepath.Join(dir, "roots.toml"), 0o644), Config, nobody); err != nil {
		t.Errorf("root's file judged as nobody: %v", err)
	}
	// The fix for a file the daemon writes gives it to the daemon's user.
	other := chown(mkfile(t, filepath.Join(dir, "ots"), 0o600))
	if e := only(t, CheckAs(other, State, 1)); !strings.HasSuffix(e.Error(), "fix: chown daemon: "+other) && !strings.HasSuffix(e.Error(), "fix: chown 1 "+other) {
		t.Errorf("state file of another user: %v", e)
	}

	// A directory of another user on the way.
	sub := chown(mkdir(t, filepath.Join(dir, "sub"), 0o755))
	f := mkfile(t, filepath.Join(sub, "x.toml"), 0o644)
	if e := only(t, Check(f, Config)); e.At != sub || e.As != Parent || e.Problems != Owner {
		t.Errorf("file in nobody's directory: %v", e)
	}

	// A symlink planted by another user in a sticky directory, leading
	// to one of root's files: the link is the problem.
	sticky := mkdir(t, filepath.Join(dir, "tmp"), 0o777|fs.ModeSticky)
	roots := mkfile(t, filepath.Join(dir, "shadow"), 0o600)
	planted := chown(symlink(t, roots, filepath.Join(sticky, "portknockd.toml")))
	e = only(t, Check(planted, Config))
	if e.At != planted || e.As != Link || !strings.HasSuffix(e.Error(), "fix: chown -h root:root "+planted) {
		t.Errorf("planted symlink: %v", e)
	}
	// A missing name in a sticky directory someone else could take is
	// fine until they do: then it is theirs, and refused.
	if err := Check(filepath.Join(sticky, "state"), State); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing state_dir in a sticky directory: %v", err)
	}
	taken := chown(mkdir(t, filepath.Join(sticky, "state"), 0o700))
	if e := only(t, Check(taken, State)); e.At != taken || e.Problems != Owner {
		t.Errorf("state_dir taken by another user: %v", e)
	}
}
