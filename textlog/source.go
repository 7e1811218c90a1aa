package textlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"portknock/input"
	"portknock/internal/filetrust"
	"portknock/sequence"
)

// Source is one text input: stdin, a FIFO or a file, read line by line,
// every line parsed, every knock handed on. Set the fields, then call Run
// once; a Source must not be copied after that.
type Source struct {
	// Name identifies the input in events and logs.
	Name string
	// Path is "-" for stdin, or the path of a FIFO or a regular file.
	Path string
	// Parser decides which lines are knocks.
	Parser Parser
	// MaxLine is the longest line parsed, in bytes; DefaultMaxLine if 0.
	MaxLine int
	// Now stamps events, since text formats do not reliably carry a usable
	// time; time.Now if nil.
	Now func() time.Time
	// Logger receives skipped lines (debug) and source life-cycle notes;
	// slog.Default() if nil.
	Logger *slog.Logger

	// Stdin is what Path "-" reads; os.Stdin if nil.
	Stdin *os.File

	lc      lineCounters
	events  atomic.Uint64
	dropped atomic.Uint64
	skipped [reasonCount]atomic.Uint64
}

var _ input.Input = (*Source)(nil)

// Stats returns the source's counters so far: Read counts every line,
// overlong ones included (as skipped with ReasonTooLong). It is safe to
// call while Run is running.
func (s *Source) Stats() input.Stats {
	st := input.Stats{Unit: "lines", Events: s.events.Load(), Dropped: s.dropped.Load()}
	for r := range s.skipped {
		st.Skipped[r] = s.skipped[r].Load()
	}
	tooLong := s.lc.tooLong.Load()
	st.Skipped[ReasonTooLong] += tooLong
	st.Read = s.lc.lines.Load() + tooLong
	return st
}

// Run reads lines, parses each and calls emit for every event, stamped with
// Time = Now() and Input = Name: knocks are timed by when they are read,
// since a line's own timestamp may lack a year, a zone or precision. A
// Source waits for emit to take each event (input.Wait): a pipe or a file
// just slows down, and nothing is lost. Lines that are not events are
// counted per Reason and logged at debug level; they are never fatal.
//
// What ends Run depends on Path:
//   - "-" (stdin): EOF or ctx ending. Reading from a pipe, FIFO or terminal
//     is interrupted when ctx ends; the daemon decides what EOF means.
//   - a FIFO: only ctx ending. Writers may come and go; Run keeps reading
//     whatever the next one writes.
//   - a regular file: only ctx ending. The file is followed from its end
//     across truncation and rotation; lines already in it are history.
//
// A FIFO or file path that does not exist yet is waited for, and then
// followed from its start (see follower).
//
// Run returns nil in all these cases, and an error when the input cannot
// be opened or read, or when a FIFO or file (or a followed file's successor
// after rotation) may not be trusted (see CheckInput). Errors do not name
// the input: the caller does.
func (s *Source) Run(ctx context.Context, emit input.Emit) error {
	if !s.Parser.Format.valid() {
		return fmt.Errorf("unknown format %d", s.Parser.Format)
	}
	maxLen := s.MaxLine
	if maxLen <= 0 {
		maxLen = DefaultMaxLine
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("input", s.Name)

	var ev sequence.Event
	handle := func(line []byte) {
		_, r := s.Parser.Parse(line, &ev)
		if r != ReasonNone {
			s.skipped[r].Add(1)
			if log.Enabled(ctx, slog.LevelDebug) {
				log.Debug("line is not a knock", "reason", r.String(), "line", quoteLine(line))
			}
			return
		}
		ev.Time = now()
		ev.Input = s.Name
		if emit(&ev, input.Wait) {
			s.events.Add(1)
		} else {
			s.dropped.Add(1) // the daemon is stopping
		}
	}

	r := &reader{maxLen: maxLen, c: &s.lc, fn: handle, log: log}
	var err error
	if s.Path == "-" {
		in := s.Stdin
		if in == nil {
			in = os.Stdin
		}
		err = r.stdin(ctx, in)
	} else {
		err = r.path(ctx, s.Path)
	}
	if err != nil && ctx.Err() != nil {
		return nil // failures caused by the shutdown are not failures
	}
	return err
}

// quoteLine renders a skipped line for a log, shortened because the line
// may be up to MaxLine bytes of junk.
func quoteLine(line []byte) string {
	const keep = 256
	if len(line) > keep {
		return fmt.Sprintf("%q…", line[:keep])
	}
	return fmt.Sprintf("%q", line)
}

// reader holds what the per-kind loops share.
type reader struct {
	maxLen int
	c      *lineCounters
	fn     func([]byte)
	log    *slog.Logger
	br     *bufio.Reader
}

// read reads f to EOF (or ctx ending) through the shared buffer.
func (r *reader) read(ctx context.Context, f *os.File) error {
	if r.br == nil {
		r.br = newLineBuffer(f, r.maxLen)
	} else {
		r.br.Reset(f)
	}
	return readLinesFrom(ctx, f, r.br, r.maxLen, r.c, r.fn)
}

func (r *reader) stdin(ctx context.Context, in *os.File) error {
	f, release, err := pollable(in)
	if err != nil {
		return err
	}
	defer release()
	if err := r.read(ctx, f); err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	if ctx.Err() == nil {
		r.log.Info("end of stdin")
	}
	return nil
}

// CheckInput judges whether a daemon running as uid may believe the FIFO or
// file at path: whoever can write to it can knock from any address. It must
// be owned by root or uid and not writable by group or others, nor may any
// directory on the way to it be (see package filetrust). Stdin ("-") is
// whatever the daemon's parent gave it, and is not judged; nor is a missing
// file, which the opening reports.
func CheckInput(path string, uid uint32) error {
	if path == "-" {
		return nil
	}
	role := filetrust.Config
	if fi, err := os.Stat(path); err == nil && fi.Mode()&fs.ModeNamedPipe != 0 {
		// The daemon opens a FIFO for writing too (see fifo), so the
		// fix gives it to the daemon's user.
		role = filetrust.State
	}
	return filetrust.CheckExisting(path, role, uid)
}

func (r *reader) path(ctx context.Context, path string) error {
	if err := CheckInput(path, uint32(os.Geteuid())); err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r.file(ctx, path) // a log not written yet is waited for
	}
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeNamedPipe != 0:
		return r.fifo(ctx, path)
	case fi.Mode().IsRegular():
		return r.file(ctx, path)
	}
	return fmt.Errorf("%s is neither a FIFO nor a regular file (%v)", path, fi.Mode().Type())
}

// file follows a log file from its end until ctx ends (see follower).
func (r *reader) file(ctx context.Context, path string) error {
	fl, err := openFollower(ctx.Done(), path, r.log)
	if err != nil {
		return err
	}
	defer fl.Close()
	if r.br == nil {
		r.br = newLineBuffer(fl, r.maxLen)
	}
	err = readLinesFrom(ctx, fl, r.br, r.maxLen, r.c, r.fn)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("following: %w", err) // err names the path
	}
	return nil
}

// fifo reads a FIFO until ctx ends. It opens the FIFO for reading and
// writing, which Linux and the BSDs allow and which never blocks. Holding a
// write end itself, the daemon never sees end-of-file when a writer goes
// away, so writers come and go without a reopen. A reader that closed and
// reopened at each end-of-file would drop whatever a new writer wrote in
// between: the pipe's buffer goes when its last descriptor closes. The
// price is that an unterminated last line of a writer that vanished is
// joined to the next writer's first line, which then fails to parse and is
// counted.
func (r *reader) fifo(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// The path may have been replaced since it was checked.
	if fi, err := f.Stat(); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		return fmt.Errorf("%s is no longer a FIFO", path)
	}
	if err := r.read(ctx, f); err != nil && ctx.Err() == nil {
		return err // names the path
	}
	return nil
}
