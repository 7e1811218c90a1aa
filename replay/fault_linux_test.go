package replay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"portknock/internal/netnstest"
	"portknock/sealed"
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

// TestFullStateDir: with the file system full, Use fails with an error
// naming the cache (the matcher then refuses the open); once space is
// back it works again, and the file holds no torn line.
func TestFullStateDir(t *testing.T) {
	mnt := tmpfs(t, "256k")
	clk := &clock{t: t0}
	c := open(t, mnt, clk)
	if err := c.Use(ct(0), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	filler := fill(t, mnt)
	var useErr error
	n := 1
	for ; n < 200; n++ { // a few lines may still fit in the last page
		if useErr = c.Use(ct(n), t0.Add(time.Hour)); useErr != nil {
			break
		}
	}
	if !errors.Is(useErr, unix.ENOSPC) || !strings.Contains(useErr.Error(), FileName) {
		t.Fatalf("Use on a full file system: %v; want ENOSPC naming the cache", useErr)
	}
	if err := c.Use(ct(n), t0.Add(time.Hour)); err == nil || err == sealed.ReasonReplay {
		t.Fatalf("the refused block, again while full: %v; want a write error", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := c.Use(ct(n), t0.Add(time.Hour)); err != nil {
		t.Fatalf("Use after space came back: %v", err)
	}
	c.Close()
	r := parse(mustRead(t, filepath.Join(mnt, FileName)))
	if len(r.used) != n+1 || len(r.damaged) != 0 || r.torn != nil {
		t.Errorf("file after the fault: %d blocks, %v damaged, torn %v; want %d blocks, nothing damaged", len(r.used), r.damaged, r.torn, n+1)
	}
}

// TestReadOnlyStateDir: on a read-only file system Open reads the cache
// (its blocks are still refused) and says it cannot write; Use fails, so
// nothing opens without being recorded.
func TestReadOnlyStateDir(t *testing.T) {
	mnt := tmpfs(t, "256k")
	clk := &clock{t: t0}
	c := open(t, mnt, clk)
	if err := c.Use(ct(1), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	remount(t, mnt, unix.MS_RDONLY)
	c, err := Open(mnt, Options{Now: clk.now})
	if c == nil || !errors.Is(err, unix.EROFS) {
		t.Fatalf("Open read-only: %v, %v; want a cache and EROFS", c, err)
	}
	if err := c.Use(ct(1), t0.Add(time.Hour)); err != sealed.ReasonReplay {
		t.Errorf("a used block on a read-only cache: %v, want ReasonReplay", err)
	}
	if err := c.Use(ct(2), t0.Add(time.Hour)); !errors.Is(err, unix.EROFS) {
		t.Errorf("Use on a read-only cache: %v, want EROFS", err)
	}
	c.Close()
}
