package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portknock/internal/filetrust"
)

const trustSrc = "[[door]]\nname = \"ssh\"\nsequence = [\"7000\"]\nstart_command = \"true\"\n"

// writeConf writes a valid configuration with exactly the given mode.
func writeConf(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, "portknockd.toml")
	if err := os.WriteFile(path, []byte(trustSrc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadRefusesUntrustedFile(t *testing.T) {
	path := writeConf(t, t.TempDir(), 0o666)
	c, err := Load(path)
	var te *filetrust.Error
	if c != nil || !errors.As(err, &te) || te.At != path {
		t.Fatalf("Load of a 0666 file = %v, %v; want a trust error about it", c, err)
	}
	for _, want := range []string{path, "mode 0666", "fix: chmod go-w " + path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// ReadFile, for check, reads it anyway.
	if _, err := ReadFile(path); err != nil {
		t.Errorf("ReadFile: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("Load of the same file made 0644: %v", err)
	}
}

func TestLoadRefusesFileOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	path := writeConf(t, t.TempDir(), 0o644)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "uid 65534") ||
		!strings.Contains(err.Error(), "fix: chown root:root "+path) {
		t.Errorf("Load of nobody's file: %v", err)
	}
	if err := CheckFile(path, 65534); err != nil {
		t.Errorf("nobody's file judged for a daemon running as nobody: %v", err)
	}
}
