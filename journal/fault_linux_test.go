package journal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"portknock/internal/netnstest"
)

// tmpfs mounts a small tmpfs of its own for the test, so that it can be
// filled up or made read-only without touching any other file system.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	netnstest.RequirePrivate(t, "mounts a tmpfs")
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// oneRecordOnTmpfs leaves a journal holding one pending close in a state
// directory on a tmpfs of the test's own, closed.
func oneRecordOnTmpfs(t *testing.T) (mnt, dir string) {
	t.Helper()
	mnt = tmpfs(t, "256k")
	dir = filepath.Join(mnt, "state")
	j, _ := mustOpen(t, dir)
	if _, err := j.Add(rec("ssh", "192.0.2.1", t0)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	return mnt, dir
}

// remount changes the tmpfs at mnt to flags (unix.MS_RDONLY or 0).
func remount(t *testing.T, mnt string, flags uintptr) {
	t.Helper()
	if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|flags, ""); err != nil {
		t.Fatalf("remount %s: %v", mnt, err)
	}
}

// fill writes to a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for i := 0; ; i++ {
		if i > 1<<16 {
			t.Fatal("file system never filled up")
		}
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			return path
		}
	}
}

// TestFullStateDir: with the file system full, Add fails with an error that
// says so (the runner then refuses the open), and once space is back the
// journal works again and holds no torn line.
func TestFullStateDir(t *testing.T) {
	dir := filepath.Join(tmpfs(t, "256k"), "state")
	j, _ := mustOpen(t, dir)
	first, err := j.Add(rec("ssh", "192.0.2.1", t0))
	if err != nil {
		t.Fatal(err)
	}
	filler := fill(t, filepath.Dir(dir))

	var addErr error
	for i := range 64 { // a few lines may still fit in the last block
		if _, addErr = j.Add(rec("ssh", "192.0.2.2", t0)); addErr != nil {
			break
		}
		if i == 63 {
			t.Fatal("Add kept succeeding on a full file system")
		}
	}
	if !errors.Is(addErr, unix.ENOSPC) || !strings.Contains(addErr.Error(), FileName) {
		t.Fatalf("Add on a full file system: %v; want ENOSPC naming the journal", addErr)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	last, err := j.Add(rec("ssh", "192.0.2.3", t0))
	if err != nil {
		t.Fatalf("Add after space came back: %v", err)
	}
	if err := j.Done(first); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	j.crash()
	j2, recs, err := openAll(dir)
	if err != nil {
		t.Fatalf("reopen: %v (the failed write must not leave damage)", err)
	}
	defer j2.Close()
	if len(recs) == 0 || recs[len(recs)-1].ID != last || recs[0].ID == first {
		t.Fatalf("records after the fault: %+v", recs)
	}
}

// TestReadOnlyStateDir: a state directory on a read-only file system still
// yields its pending closes (they can run), but Add fails, so no door with a
// timed close opens; once the file system is writable again, so is the
// journal. (A file system cannot be remounted read-only under a file open
// for writing, so the journal is closed and reopened around the remount, as
// a daemon restart would.)
func TestReadOnlyStateDir(t *testing.T) {
	mnt, dir := oneRecordOnTmpfs(t)
	remount(t, mnt, unix.MS_RDONLY)
	j, recs, err := openAll(dir)
	if !errors.Is(err, unix.EROFS) || j == nil {
		t.Fatalf("Open on a read-only file system: %v, %v; want a journal and EROFS", j, err)
	}
	defer j.Close()
	if len(recs) != 1 {
		t.Fatalf("Open on a read-only file system returned %d records, want the 1 pending", len(recs))
	}
	if _, err := j.Add(rec("ssh", "192.0.2.2", t0)); !errors.Is(err, unix.EROFS) {
		t.Fatalf("Add on a read-only file system: %v; want EROFS", err)
	}
	if err := j.Done(recs[0].ID); !errors.Is(err, unix.EROFS) {
		t.Fatalf("Done on a read-only file system: %v; want EROFS", err)
	}
	j.Close()

	remount(t, mnt, 0)
	j, recs, err = openAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if len(recs) != 1 {
		t.Fatalf("after remounting writable: %d records, want 1", len(recs))
	}
	if _, err := j.Add(rec("ssh", "192.0.2.3", t0)); err != nil {
		t.Fatalf("Add after remounting writable: %v", err)
	}
}

// TestMissingStateDirHeals: a state directory that cannot be created yet
// (its parent is read-only) is created by the first write that can.
func TestMissingStateDirHeals(t *testing.T) {
	mnt := tmpfs(t, "256k")
	remount(t, mnt, unix.MS_RDONLY)
	dir := filepath.Join(mnt, "state")
	j, recs, err := openAll(dir)
	if j == nil || !errors.Is(err, unix.EROFS) || len(recs) != 0 {
		t.Fatalf("Open under a read-only parent: %v, %d records, %v", j, len(recs), err)
	}
	defer j.Close()
	if _, err := j.Add(rec("ssh", "192.0.2.1", t0)); !errors.Is(err, unix.EROFS) {
		t.Fatalf("Add: %v, want EROFS", err)
	}
	remount(t, mnt, 0)
	if _, err := j.Add(rec("ssh", "192.0.2.1", t0)); err != nil {
		t.Fatalf("Add once writable: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state_dir after healing: %v, %v", fi, err)
	}
}

// TestDamageKeptUntilSetAside: damaged lines found while the state
// directory is read-only cannot be copied aside, so the journal is not
// rewritten (which would drop them); the first write once it is writable
// sets them aside first.
func TestDamageKeptUntilSetAside(t *testing.T) {
	mnt, dir := oneRecordOnTmpfs(t)
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("a line a disk mangled\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	remount(t, mnt, unix.MS_RDONLY)
	j, recs, err := openAll(dir)
	var de *DamageError
	if j == nil || !errors.As(err, &de) || de.SetAside != "" || len(recs) != 1 {
		t.Fatalf("Open read-only with damage: %v, %d records, %v", j, len(recs), err)
	}
	if n := strings.Count(err.Error(), "damaged line(s)"); n != 1 {
		t.Errorf("damage reported %d times: %v", n, err)
	}
	defer j.Close()
	remount(t, mnt, 0)
	if _, err := j.Add(rec("ssh", "192.0.2.2", t0)); err != nil {
		t.Fatalf("Add once writable: %v", err)
	}
	asides, _ := filepath.Glob(filepath.Join(dir, FileName+".damaged-*"))
	if len(asides) != 1 {
		t.Fatalf("set-aside files %v, want one", asides)
	}
	if b, err := os.ReadFile(asides[0]); err != nil || !strings.Contains(string(b), "a line a disk mangled") {
		t.Fatalf("set-aside file: %q, %v", b, err)
	}
	if _, dmg, err := Read(dir); err != nil || len(dmg) != 0 {
		t.Fatalf("journal after the rewrite: %d damaged, %v", len(dmg), err)
	}
}
