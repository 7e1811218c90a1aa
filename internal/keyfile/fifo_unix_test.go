//go:build unix

package keyfile

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadFIFO: a FIFO named as a key file is refused at once, not waited
// on until something writes to it.
func TestReadFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "door.key")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Read(path)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("Read(a FIFO) = %v; want not a regular file", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read(a FIFO) still waits for a writer after 10 s")
	}
}
