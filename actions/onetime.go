package actions

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"

	"portknock/sequence"
)

// OneTimeFile is a knockd one_time_sequences file: one sequence per line,
// such as "2222:udp,3333:tcp,4444", each usable once. Lines starting with
// '#' are comments or sequences already used. It implements
// sequence.OneTimeSequences.
//
// A sequence is marked used the way knockd does it, by overwriting the first
// byte of its line with '#', so the same file can go back to knockd and an
// administrator can read what is left with any editor.
//
// The file is read once, when opened; later edits by hand are not seen until
// it is opened again. Methods may be called from any goroutine, but the
// matcher's single goroutine is the intended user.
type OneTimeFile struct {
	path string
	log  *slog.Logger

	mu sync.Mutex
	f  *os.File
	// writeErr is why the file could not be opened for writing; Consume
	// returns it, so that a read-only file still serves its current
	// sequence but can never be used twice.
	writeErr error
	lines    []oneTimeLine // unused, parsable lines, in file order
	next     int           // index of the current line in lines
}

// oneTimeLine is one unused sequence and where its line starts.
type oneTimeLine struct {
	offset int64
	number int
	steps  []sequence.Step
}

var _ sequence.OneTimeSequences = (*OneTimeFile)(nil)

// OpenOneTime opens and reads a one-time sequence file. Lines that do not
// parse are skipped with a warning naming the line, not fatal: one typo must
// not disable the door. A file that cannot be written is still opened, and
// the error comes from Consume, the moment it matters.
func OpenOneTime(path string, logger *slog.Logger) (*OneTimeFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	var writeErr error
	if err != nil {
		writeErr = err
		if f, err = os.Open(path); err != nil {
			return nil, fmt.Errorf("one-time sequences: %w", err)
		}
	}
	o, err := newOneTimeFile(f, path, writeErr, logger)
	if err != nil {
		f.Close()
		return nil, err
	}
	return o, nil
}

func newOneTimeFile(f *os.File, path string, writeErr error, logger *slog.Logger) (*OneTimeFile, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return nil, fmt.Errorf("one-time sequences: %w", err)
	}
	o := &OneTimeFile{path: path, log: logger, f: f, writeErr: writeErr}
	var offset int64
	for number := 1; len(data) > 0; number++ {
		line := data
		rest := []byte(nil)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, rest = data[:i], data[i+1:]
		}
		if steps, ok := o.parseLine(line, number); ok {
			o.lines = append(o.lines, oneTimeLine{offset: offset, number: number, steps: steps})
		}
		offset += int64(len(data) - len(rest))
		data = rest
	}
	if len(o.lines) == 0 {
		o.log.Warn("one-time sequence file has no unused sequence", "path", path)
	}
	return o, nil
}

// parseLine returns the sequence on an unused line. Comment, used and blank
// lines are skipped silently; anything else that does not parse is logged.
func (o *OneTimeFile) parseLine(line []byte, number int) ([]sequence.Step, bool) {
	text := string(bytes.TrimSpace(line))
	if text == "" || text[0] == '#' {
		return nil, false
	}
	steps, err := sequence.ParseSteps(text)
	if err == nil && len(steps) > sequence.MaxSteps {
		err = fmt.Errorf("%d knocks, at most %d allowed", len(steps), sequence.MaxSteps)
	}
	if err != nil {
		o.log.Warn("one-time sequence line skipped", "path", o.path, "line", number, "err", err)
		return nil, false
	}
	return steps, true
}

// Path returns the file's path.
func (o *OneTimeFile) Path() string { return o.path }

// Current returns the first unused sequence, or ok=false when all are
// used. The slice is the caller's.
func (o *OneTimeFile) Current() ([]sequence.Step, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.next >= len(o.lines) {
		return nil, false
	}
	return slices.Clone(o.lines[o.next].steps), true
}

// Remaining returns how many unused sequences are left.
func (o *OneTimeFile) Remaining() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.lines) - o.next
}

// Consume marks the current sequence used in the file and syncs it to disk
// before moving on, so that a crash right after can never make the
// sequence valid again. On error the current sequence stays current.
func (o *OneTimeFile) Consume() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return fmt.Errorf("one-time sequences %s: file closed", o.path)
	}
	if o.next >= len(o.lines) {
		return fmt.Errorf("one-time sequences %s: no unused sequence left", o.path)
	}
	if o.writeErr != nil {
		return fmt.Errorf("one-time sequences %s: cannot mark sequence used: %w", o.path, o.writeErr)
	}
	line := o.lines[o.next]
	if _, err := o.f.WriteAt([]byte{'#'}, line.offset); err != nil {
		return fmt.Errorf("one-time sequences %s: marking line %d used: %w", o.path, line.number, err)
	}
	if err := o.f.Sync(); err != nil {
		return fmt.Errorf("one-time sequences %s: syncing line %d: %w", o.path, line.number, err)
	}
	o.lines[o.next].steps = nil
	o.next++
	return nil
}

// Close releases the file. Current keeps answering from memory; Consume
// fails.
func (o *OneTimeFile) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return errors.New("one-time sequences " + o.path + ": already closed")
	}
	err := o.f.Close()
	o.f = nil
	return err
}
