//go:build unix

package textlog

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portknock/input"
	"portknock/internal/filetrust"
	"portknock/sequence"
)

// wantRefused runs s and expects Run to refuse it at once for a problem at
// path, without reading a line.
func wantRefused(t *testing.T, s *Source, path, fix string) {
	t.Helper()
	err := s.Run(context.Background(), func(*sequence.Event, input.Mode) bool { t.Error("event from a refused input"); return true })
	var te *filetrust.Error
	if !errors.As(err, &te) || te.At != path {
		t.Fatalf("Run = %v, want a trust error about %s", err, path)
	}
	// The daemon names the input; the error itself names the path.
	if !strings.HasPrefix(err.Error(), s.Path+": ") || !strings.HasSuffix(err.Error(), "fix: "+fix) {
		t.Errorf("Run = %v, want the path first and the fix %q", err, fix)
	}
}

func TestSourceRefusesWorldWritableFIFO(t *testing.T) {
	path := mkfifo(t)
	if err := os.Chmod(path, 0o622); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, &Source{Name: "fifo", Path: path}, path, "chmod go-w "+path)
	if err := CheckInput(path, uint32(os.Geteuid())); err == nil {
		t.Error("CheckInput accepts a FIFO others can write")
	}
}

func TestSourceRefusesFIFOOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	path := mkfifo(t)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, &Source{Name: "fifo", Path: path}, path, "chown root:root "+path)
}

func TestSourceRefusesUntrustedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kern.log")
	appendTo(t, path, "7000 192.0.2.7\n")
	if err := os.Chmod(path, 0o664); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, &Source{Name: "file", Path: path}, path, "chmod go-w "+path)

	// A trusted file in a directory anyone can write to is refused too.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, &Source{Name: "file", Path: path}, dir, "chmod go-w "+dir)
}

// TestSourceStdinNotJudged: "-" is what the daemon was given, not a file
// it chose to believe.
func TestSourceStdinNotJudged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lines")
	appendTo(t, path, "7000 192.0.2.7\n")
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &Source{Name: "stdin", Path: "-", Stdin: f}
	events, done := run(t, context.Background(), s)
	expect(t, events, done, knock("stdin", "192.0.2.7", 7000, sequence.TCP))
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Run = %v, want nil at EOF", err)
	}
	if err := CheckInput("-", uint32(os.Geteuid())); err != nil {
		t.Errorf("CheckInput(-) = %v", err)
	}
}

// TestSourceRotatedToUntrustedFile: the file a rotation puts in place is
// judged as the first was, and the input fails rather than read it.
func TestSourceRotatedToUntrustedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kern.log")
	appendTo(t, path, "")
	rec := newRecorder()
	s := &Source{Name: "file", Path: path, Logger: slog.New(rec)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, done := run(t, ctx, s)
	rec.waitFor(t, followingFile)
	appendTo(t, path, "7001 192.0.2.1\n")
	expect(t, events, done, knock("file", "192.0.2.1", 7001, sequence.TCP))

	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	// Made untrusted before it gets its name, so that no poll sees it
	// trusted.
	tmp := path + ".new"
	appendTo(t, tmp, "7002 192.0.2.1\n")
	if err := os.Chmod(tmp, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	err := waitErr(t, done)
	var te *filetrust.Error
	if !errors.As(err, &te) || te.At != path || !strings.Contains(err.Error(), "after rotation") {
		t.Fatalf("Run = %v, want a trust error about the rotated file", err)
	}
	select {
	case ev := <-events:
		t.Errorf("event read from the untrusted file: %+v", ev)
	default:
	}
}
