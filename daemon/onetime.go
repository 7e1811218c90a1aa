package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"

	"portknock/internal/filetrust"
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
// The file is read when opened and again by each Consume, which then serves
// the file's sequences as they are: edits by hand are seen from the next
// sequence on. Consume also checks whether the file was replaced (an editor
// saving by rename) or rewritten in place so that the line has moved, and
// then marks the consumed sequence wherever it now is, or fails. Whoever can
// write the file chooses the knocks that open the door, so it is judged (see
// CheckOneTime) when opened and again by each Consume. Methods may
// be called from any goroutine, but the matcher's single goroutine is the
// intended user.
type OneTimeFile struct {
	path string
	log  *slog.Logger

	mu sync.Mutex
	f  *os.File
	// writeErr is why the file could not be opened for writing; Consume
	// returns it, so that a read-only file still serves its current
	// sequence but can never be used twice.
	writeErr error
	// lines are the unused, parsable lines, in file order; the first is
	// the current sequence.
	lines []oneTimeLine
}

// oneTimeLine is one unused sequence and where its line starts.
type oneTimeLine struct {
	offset int64
	number int
	// text is the line as read, without its newline: Consume compares it
	// with what is at offset now, to see whether the file has changed.
	text  []byte
	steps []sequence.Step
}

// consumeAttempts bounds how often Consume starts over because the file
// was replaced again while it was being marked.
const consumeAttempts = 3

var _ sequence.OneTimeSequences = (*OneTimeFile)(nil)

// OpenOneTime opens and reads a one-time sequence file. Lines that do not
// parse are skipped with a warning naming the line, not fatal: one typo must
// not disable the door. A file that cannot be written is still opened, and
// the error comes from Consume, the moment it matters. A file the daemon may
// not trust (see CheckOneTime) is refused.
func OpenOneTime(path string, logger *slog.Logger) (*OneTimeFile, error) {
	if err := CheckOneTime(path, uint32(os.Geteuid())); err != nil {
		return nil, fmt.Errorf("one-time sequences: %w", err)
	}
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

// CheckOneTime judges whether a daemon running as uid may believe the
// one-time sequence file at path: whoever can write it chooses the knocks
// that open the door. It must be owned by root or uid and not writable by
// group or others, nor may any directory on the way to it be (see package
// filetrust). A missing file is left to the opening to report.
func CheckOneTime(path string, uid uint32) error {
	return filetrust.CheckExisting(path, filetrust.State, uid)
}

// ReadOneTime returns the unused sequences of a one-time sequence file, in
// file order, for tools that only look: it neither opens the file for
// writing nor judges who may have written it (portknockd check does that
// with CheckOneTime, to report every problem at once).
func ReadOneTime(path string) ([][]sequence.Step, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("one-time sequences: %w", err)
	}
	o, err := newOneTimeFile(f, path, errors.New("opened to read only"), nil)
	if err != nil {
		f.Close()
		return nil, err
	}
	defer o.Close()
	return o.Unused(), nil
}

func newOneTimeFile(f *os.File, path string, writeErr error, logger *slog.Logger) (*OneTimeFile, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	data, err := readAll(f)
	if err != nil {
		return nil, fmt.Errorf("one-time sequences: %w", err)
	}
	o := &OneTimeFile{path: path, log: logger, f: f, writeErr: writeErr}
	o.lines = o.parse(data)
	if len(o.lines) == 0 {
		o.log.Warn("one-time sequence file has no unused sequence", "path", path)
	}
	return o, nil
}

// readAll reads f from its start, whatever its file offset.
func readAll(f *os.File) ([]byte, error) {
	return io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
}

// parse returns the unused, parsable lines of data, in file order.
func (o *OneTimeFile) parse(data []byte) []oneTimeLine {
	var lines []oneTimeLine
	var offset int64
	for number := 1; len(data) > 0; number++ {
		line := data
		rest := []byte(nil)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, rest = data[:i], data[i+1:]
		}
		if steps, ok := o.parseLine(line, number); ok {
			lines = append(lines, oneTimeLine{offset: offset, number: number, text: line, steps: steps})
		}
		offset += int64(len(data) - len(rest))
		data = rest
	}
	return lines
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
	if len(o.lines) == 0 {
		return nil, false
	}
	return slices.Clone(o.lines[0].steps), true
}

// Unused returns every unused sequence, in file order: the firewall must
// log all of their ports, not only the current sequence's.
func (o *OneTimeFile) Unused() [][]sequence.Step {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([][]sequence.Step, len(o.lines))
	for i, l := range o.lines {
		out[i] = slices.Clone(l.steps)
	}
	return out
}

// Remaining returns how many unused sequences are left.
func (o *OneTimeFile) Remaining() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.lines)
}

// Consume marks the current sequence used in the file and syncs it to disk
// before moving on, so that a crash right after can never make the
// sequence valid again. On error the current sequence stays current, and
// the caller must not act on the match.
//
// The mark goes to the file now at the path, on the line now holding the
// sequence: an administrator may have edited the file since it was read.
// Consume checks that the open file still is the one at the path (device
// and inode) and that the line is still where it was read. If not, it
// marks every unused line of the file at the path holding the sequence
// (more than one would be ambiguous, and each left would make the sequence
// usable again). If no unused line holds the sequence any more, Consume
// fails: nothing shows it used, and opening on it would not be safe. After
// a successful Consume, Current serves the file's first unused sequence as
// read by Consume.
func (o *OneTimeFile) Consume() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return fmt.Errorf("one-time sequences %s: file closed", o.path)
	}
	if len(o.lines) == 0 {
		return fmt.Errorf("one-time sequences %s: no unused sequence left", o.path)
	}
	cur := o.lines[0]
	for range consumeAttempts {
		done, err := o.consume(cur)
		if err != nil || done {
			return err
		}
	}
	return fmt.Errorf("one-time sequences %s: file keeps being replaced; sequence of line %d not marked used", o.path, cur.number)
}

// consume makes one attempt at marking cur used. It reports done=false,
// with no error, when the file at the path was replaced while it was being
// marked, so that the mark may have gone to the old file: the caller then
// tries again on the new one.
func (o *OneTimeFile) consume(cur oneTimeLine) (done bool, err error) {
	// Judged again each time, as the file is read again: what serves
	// the next sequence must be as trustworthy as what was opened.
	if err := CheckOneTime(o.path, uint32(os.Geteuid())); err != nil {
		return false, fmt.Errorf("one-time sequences: sequence of line %d not marked used: %w", cur.number, err)
	}
	same, err := o.sameFile()
	if err != nil {
		return false, fmt.Errorf("one-time sequences %s: file changed since it was read: %w", o.path, err)
	}
	if !same {
		// Replaced, as editors save by rename: marking the old inode
		// would be lost, and the sequence valid again after a restart.
		f, err := os.OpenFile(o.path, os.O_RDWR, 0)
		if err != nil {
			return false, fmt.Errorf("one-time sequences %s: file was replaced and cannot be opened for writing: %w", o.path, err)
		}
		o.f.Close()
		o.f, o.writeErr = f, nil
	}
	if o.writeErr != nil {
		return false, fmt.Errorf("one-time sequences %s: cannot mark sequence used: %w", o.path, o.writeErr)
	}
	data, err := readAll(o.f)
	if err != nil {
		return false, fmt.Errorf("one-time sequences %s: reading before marking line %d used: %w", o.path, cur.number, err)
	}

	fresh := o.parse(data)
	marked := func(l oneTimeLine) bool { return l.offset == cur.offset }
	changed := !same || !lineAt(data, cur)
	if changed {
		marked = func(l oneTimeLine) bool { return slices.Equal(l.steps, cur.steps) }
	}
	var targets []oneTimeLine
	for _, l := range fresh {
		if marked(l) {
			targets = append(targets, l)
		}
	}
	if len(targets) == 0 {
		return false, fmt.Errorf("one-time sequences %s: file changed since it was read, and the sequence of line %d is no longer an unused line in it; not marking anything", o.path, cur.number)
	}
	for _, l := range targets {
		if _, err := o.f.WriteAt([]byte{'#'}, l.offset); err != nil {
			return false, fmt.Errorf("one-time sequences %s: marking line %d used: %w", o.path, l.number, err)
		}
	}
	if err := o.f.Sync(); err != nil {
		return false, fmt.Errorf("one-time sequences %s: syncing line %d: %w", o.path, targets[0].number, err)
	}
	if same, err := o.sameFile(); err != nil || !same {
		// Replaced between the check and the write: start over. If
		// the path is gone, the next attempt reports it.
		return false, nil
	}

	if changed {
		numbers := make([]int, len(targets))
		for i, l := range targets {
			numbers[i] = l.number
		}
		o.log.Warn("one-time sequence file changed since it was read; read it again", "path", o.path,
			"replaced", !same, "marked_lines", numbers)
	}
	// What follows is the file as read just now, so that other edits
	// (sequences appended, lines removed) are seen from here on too.
	o.lines = slices.DeleteFunc(fresh, marked)
	return true, nil
}

// sameFile reports whether the open file still is the file at the path.
func (o *OneTimeFile) sameFile() (bool, error) {
	held, err := o.f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(o.path)
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
}

// lineAt reports whether the line l read earlier still starts at its offset
// in data, unchanged.
func lineAt(data []byte, l oneTimeLine) bool {
	if l.offset > int64(len(data)) || (l.offset > 0 && data[l.offset-1] != '\n') {
		return false
	}
	line := data[l.offset:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	return bytes.Equal(line, l.text)
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
