package keyfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"portknock/sealed"
)

func TestWriteKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "door.key")
	k, err := sealed.NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeUmask0(path, k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode() != 0o600 {
		t.Errorf("key file mode %v; want -rw-------", fi.Mode())
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != k {
		t.Error("the key read back differs from the key written")
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("# portknock sealed-door key")) {
		t.Errorf("key file lacks its comment header:\n%s", data)
	}
}

// TestWriteKeyFileNeverOverwrites: an existing file, even an empty one or a
// symbolic link (dangling or not), is left as it was.
func TestWriteKeyFileNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	k, _ := sealed.NewKey(nil)
	existing := filepath.Join(dir, "existing")
	empty := filepath.Join(dir, "empty")
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link")
	dangling := filepath.Join(dir, "dangling")
	for path, content := range map[string]string{existing: "old key\n", empty: "", target: "target\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{existing, empty, link, dangling} {
		err := Write(path, k)
		if err == nil || !strings.Contains(err.Error(), path+" already exists") || !strings.Contains(err.Error(), "never overwritten") {
			t.Errorf("Write(%s) = %v; want a refusal naming the file", path, err)
		}
	}
	for path, want := range map[string]string{existing: "old key\n", empty: "", target: "target\n"} {
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Errorf("%s now holds %q; want %q", path, got, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !os.IsNotExist(err) {
		t.Errorf("Write created the dangling link's target (%v)", err)
	}
}

func TestWriteKeyFileNoDirectory(t *testing.T) {
	k, _ := sealed.NewKey(nil)
	path := filepath.Join(t.TempDir(), "missing", "door.key")
	if err := Write(path, k); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Write into a missing directory = %v; want an error naming %s", err, path)
	}
}

func TestReadKeyFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	dir := t.TempDir()
	good := "# a comment\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr string // "" for success
	}{
		{name: "0600", content: good, mode: 0o600},
		{name: "0400", content: good, mode: 0o400},
		{name: "0700", content: good, mode: 0o700},
		{name: "0620 (group may write, not read)", content: good, mode: 0o620},
		{name: "0640", content: good, mode: 0o640, wantErr: "mode 0640: its group or others can read the key, which must stay secret; fix: chmod 600 "},
		{name: "0604", content: good, mode: 0o604, wantErr: "mode 0604: "},
		{name: "0644", content: good, mode: 0o644, wantErr: "mode 0644: "},
		{name: "0444", content: good, mode: 0o444, wantErr: "mode 0444: "},
		{name: "not a key", content: "hello\n", mode: 0o600, wantErr: "not standard base64"},
		{name: "empty", content: "", mode: 0o600, wantErr: "no key line"},
		{name: "too big", content: "#" + strings.Repeat("x", 64<<10) + "\n" + good, mode: 0o600, wantErr: "larger than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			k, err := Read(path)
			if tt.wantErr == "" {
				if err != nil || k != vectorKey() {
					t.Fatalf("Read = %v; want the vector key", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Read = %v; want an error naming %s and containing %q", err, path, tt.wantErr)
			}
			if strings.Contains(tt.wantErr, "chmod") && !strings.HasSuffix(err.Error(), "chmod 600 "+path) {
				t.Fatalf("Read = %v; want it to end with the fix, chmod 600 %s", err, path)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("Read(a directory) = %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(dir, "missing")
		if _, err := Read(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("Read(missing) = %v", err)
		}
	})
	t.Run("link to a private file", func(t *testing.T) {
		target := filepath.Join(dir, "0600")
		link := filepath.Join(dir, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		// A link's own mode is 0777; what counts is the file read.
		if k, err := Read(link); err != nil || k != vectorKey() {
			t.Fatalf("Read(link) = %v", err)
		}
	})
}

// vectorKey is the key of docs/sealed.md's test vectors: 0x00 … 0x1f.
func vectorKey() sealed.Key {
	var k sealed.Key
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

// TestReadHidesTheKey: an error about a key file never repeats what it
// holds, and a missing file is fs.ErrNotExist.
func TestReadHidesTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	// A key of the wrong length: the error must not echo it.
	if err := os.WriteFile(path, []byte("c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Read(path)
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("Read: %v", err)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a missing file: %v", err)
	}
}
