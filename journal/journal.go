package journal

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"portknock/internal/filetrust"
	"portknock/internal/statefile"
)

// FileName is the journal's name inside the state directory.
const FileName = "closes.journal"

// maxFileSize bounds what Open reads: far beyond any real journal (a pending
// close is about 200 bytes), so that a wrong file cannot exhaust memory.
const maxFileSize = 256 << 20

// compactSlack is how many more lines than pending records the file may hold
// before it is rewritten: each close leaves three or so lines behind.
const compactSlack = 1024

// ErrInUse is returned (wrapped) by Open when another process holds the
// state directory: two daemons sharing one journal would run each other's
// closes and drop each other's records.
var ErrInUse = errors.New("in use by another portknockd")

// Journal is the open journal of one state directory. Its methods are safe
// for concurrent use.
type Journal struct {
	dir, path string
	log       *slog.Logger

	mu     sync.Mutex
	f      *os.File // opened for appending; nil until a write succeeds
	lock   *os.File // holds the state directory's lock; nil until it exists
	locked bool
	closed bool
	// damaged holds lines Open could not read and could not yet copy
	// aside: the journal is not rewritten (which would drop them) until
	// they are safe.
	damaged []Damage
	nextID  uint64
	pending map[uint64]Record
	lines   int // lines in the file, for compaction
	// dirty is set when a write or sync failed: the file may end in part of
	// a line, and fsync's failure may have dropped earlier pages, so the
	// next write rewrites the whole file from pending first.
	dirty bool
	// unsynced is set when lines were written without fsync (Extend, Done).
	unsynced bool
	// restored are the records Open read; damage is what it could not
	// read (nil when none). Neither changes after Open.
	restored []Record
	damage   *DamageError
	// writeErr is the latest write's failure, nil after a success.
	writeErr error
}

// Open opens (creating as needed) the journal in dir. dir is created mode
// 0700 and the journal mode 0600: its lines name who may reach which
// service.
//
// Open returns either a Journal or an error. The error means the caller
// cannot know what doors are open and must not go on: dir or anything in it
// is not to be trusted (see CheckDir), an existing journal cannot be read,
// dir is not a directory, or another process holds dir (ErrInUse). The
// returned Journal holds a lock on dir until Close.
//
// A journal that opened may still be degraded, which its methods report
// and the caller should log:
//
//   - Damage: damaged lines were skipped (and copied to a file next to the
//     journal, if that could be written);
//   - WriteErr: the journal cannot be written (read-only or full file
//     system, permissions): the pending closes can still be run, but Add
//     fails, so no door with a timed close opens, until a later write
//     succeeds.
//
// Restored returns the closes still pending from earlier runs. Open
// rewrites the journal from what it read, which both drops finished
// records and proves the directory is writable now.
func Open(dir string, log *slog.Logger) (*Journal, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// "/var/lib/portknockd/" names the same directory, and its parent
	// must be found as that of "/var/lib/portknockd".
	dir = filepath.Clean(dir)
	if err := CheckDir(dir, uint32(os.Geteuid())); err != nil {
		return nil, err
	}
	j := &Journal{dir: dir, path: filepath.Join(dir, FileName), log: log, pending: make(map[uint64]Record)}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Created by the rewrite below, or by a later write if that fails.
	case err != nil:
		return nil, fmt.Errorf("state_dir: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("state_dir %s: not a directory", dir)
	case fi.Mode().Perm()&0o077 != 0:
		log.Warn("state_dir is open to other users; 0700 is expected", "dir", dir, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}

	// Lock before reading: what another daemon is writing is not ours to
	// replay. A directory that cannot be created yet is locked by the first
	// write that creates it.
	if err := j.prepareDirLocked(); errors.Is(err, ErrInUse) {
		return nil, err
	} else if err != nil {
		j.writeErr = err
	} else {
		j.removeTemps()
	}
	data, err := readLimited(j.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		j.unlock()
		return nil, fmt.Errorf("state_dir: reading journal: %w", err)
	}
	records, damaged, maxID := replay(data)
	j.nextID = maxID + 1
	j.restored = records
	for _, r := range records {
		j.pending[r.ID] = r
	}
	if len(damaged) > 0 {
		j.damage = j.setAside(damaged)
		if j.damage.SetAside == "" {
			// Reported once, by Damage; the first write that
			// succeeds sets them aside before it rewrites the journal.
			j.damaged = damaged
			j.dirty = true
			return j, nil
		}
	}
	if err := j.rewriteLocked(); err != nil {
		j.dirty = true
		j.writeErr = err
	}
	return j, nil
}

// Restored returns the closes Open found pending from earlier runs, oldest
// ID first. The slice is the caller's.
func (j *Journal) Restored() []Record {
	return slices.Clone(j.restored)
}

// Damage reports the damaged lines Open skipped, and where they were copied
// (or why they could not be); nil when the journal read clean.
func (j *Journal) Damage() *DamageError {
	return j.damage
}

// WriteErr reports why the journal cannot be written, as last found: by
// Open, or by the latest write (Add, Extend, Done, Sync). It is nil once a
// write has succeeded. While it is not nil, Add may fail, and the doors
// with a timed close stay shut.
func (j *Journal) WriteErr() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.writeErr
}

// Read returns the closes pending in dir's journal and its damaged lines
// without changing anything, for tools that only look. A missing journal
// has nothing pending. Read does not judge whether dir may be trusted: a
// tool that looks runs nothing from it, and says what CheckDir finds
// itself.
func Read(dir string) ([]Record, []Damage, error) {
	data, err := readLimited(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	recs, damaged, _ := replay(data)
	return recs, damaged, nil
}

// CheckDir judges the state directory and everything in it (see package
// filetrust) for a daemon running as uid: the directory and every one above
// it, then each entry, the journal, lines set aside and whatever else is
// kept there. It is the one place that decides whether state_dir may be
// believed, which matters because the journal holds commands the daemon
// runs as itself at its next start: whoever can write them there gets them
// run.
//
// A state_dir that does not exist yet is fine when the directories that
// will hold it are. Every problem found is returned, joined.
func CheckDir(dir string, uid uint32) error {
	err := filetrust.CheckAs(dir, filetrust.State, uid)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing in it to judge
	}
	if err != nil {
		return stateDirError(err)
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, syscall.ENOTDIR) {
		return nil // Open says so, in its own words
	}
	if err != nil {
		return fmt.Errorf("state_dir: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if err := filetrust.CheckExisting(filepath.Join(dir, e.Name()), filetrust.State, uid); err != nil {
			errs = append(errs, stateDirError(err))
		}
	}
	return errors.Join(errs...)
}

// stateDirError says which setting each of err's problems is about.
func stateDirError(err error) error {
	var errs []error
	for _, e := range filetrust.Split(err) {
		errs = append(errs, fmt.Errorf("state_dir: %w", e))
	}
	return errors.Join(errs...)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d MiB, not a journal", path, maxFileSize>>20)
	}
	return data, nil
}

// DamageError reports the damaged lines found by Open and where they were
// copied.
type DamageError struct {
	// Path is the journal.
	Path string
	// Damaged lists the lines that could not be read.
	Damaged []Damage
	// SetAside is the file holding copies of those lines, empty if it
	// could not be written.
	SetAside string
	// Err is why the copy could not be written, nil when SetAside is set.
	Err error
}

// Error names the journal, how many lines were damaged and the first of
// them, and where they were copied (or why they could not be).
func (e *DamageError) Error() string {
	first := e.Damaged[0]
	msg := fmt.Sprintf("%s: %d damaged line(s) skipped (first: line %d: %s)", e.Path, len(e.Damaged), first.Line, first.Reason)
	if e.SetAside != "" {
		return msg + "; copied to " + e.SetAside
	}
	return fmt.Sprintf("%s; could not set them aside: %v", msg, e.Err)
}

// setAside copies damaged lines to a new file next to the journal, so that
// nothing is destroyed that an administrator might want to read, and the
// journal itself can be rewritten clean.
func (j *Journal) setAside(damaged []Damage) *DamageError {
	e := &DamageError{Path: j.path, Damaged: damaged}
	var buf []byte
	for _, d := range damaged {
		buf = fmt.Appendf(buf, "# line %d: %s\n", d.Line, d.Reason)
		buf = append(buf, d.Text...)
		buf = append(buf, '\n')
	}
	f, err := os.CreateTemp(j.dir, FileName+".damaged-")
	if err == nil {
		_, err = f.Write(buf)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			e.SetAside = f.Name()
		} else {
			os.Remove(f.Name())
		}
	}
	e.Err = err
	return e
}

// Add records a new pending close, durably: when Add returns nil the record
// is on stable storage, and a crash from then on cannot lose the close. It
// assigns and returns r's ID. An error means the record may not survive a
// crash; the caller must not open the door.
func (j *Journal) Add(r Record) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return 0, errors.New("journal is closed")
	}
	r.ID = j.nextID
	b, err := encode(openLine(r))
	if err != nil {
		return 0, err
	}
	// The ID is used up even if the write fails: part of the line may be
	// on disk, and no later record may share its ID.
	j.nextID++
	if err := j.appendLocked(b, true); err != nil {
		return 0, err
	}
	j.pending[r.ID] = r
	return r.ID, nil
}

// Extend records a new due time for a pending close. It does not wait for
// stable storage: if the line is lost, a restart closes the door at its
// earlier time, which is safe.
func (j *Journal) Extend(id uint64, due time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	r, ok := j.pending[id]
	if !ok || j.closed {
		return nil
	}
	b, err := encode(line{Op: opExtend, ID: id, Due: due.UTC()})
	if err != nil {
		return err
	}
	r.Due = due
	j.pending[id] = r
	return j.appendLocked(b, false)
}

// Done records that a close has run (or has been given up). It does not
// wait for stable storage; Sync does. If the line is lost, a restart runs
// the close once more.
func (j *Journal) Done(id uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.pending[id]; !ok || j.closed {
		return nil
	}
	delete(j.pending, id)
	b, _ := encode(line{Op: opDone, ID: id}) // no time: cannot fail
	return j.appendLocked(b, false)
}

// Sync puts every line written so far on stable storage.
func (j *Journal) Sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil || j.closed || !j.unsynced {
		return nil
	}
	if err := j.f.Sync(); err != nil {
		j.dirty = true
		j.writeErr = fmt.Errorf("journal: %w", err)
		return j.writeErr
	}
	j.unsynced = false
	return nil
}

// Pending returns the number of pending closes.
func (j *Journal) Pending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending)
}

// Close syncs and closes the journal. Pending records stay in the file for
// the next Open.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	defer j.unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Sync()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.f = nil
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// appendLocked writes one line, first rewriting the file if an earlier
// failure may have left it torn or if it has grown too long. Its outcome
// is what WriteErr reports.
func (j *Journal) appendLocked(b []byte, sync bool) error {
	j.writeErr = j.writeLocked(b, sync)
	return j.writeErr
}

func (j *Journal) writeLocked(b []byte, sync bool) error {
	if j.dirty || j.lines > 2*len(j.pending)+compactSlack {
		if err := j.rewriteLocked(); err != nil {
			return err
		}
	}
	if _, err := j.f.Write(b); err != nil {
		j.dirty = true
		return fmt.Errorf("journal: %w", err)
	}
	j.lines++
	if !sync {
		j.unsynced = true
		return nil
	}
	if err := j.f.Sync(); err != nil {
		j.dirty = true
		return fmt.Errorf("journal: %w", err)
	}
	j.unsynced = false
	return nil
}

// rewriteLocked replaces the journal with one open line per pending record,
// through a synced temporary file renamed over it, then opens it for
// appending. On failure the old file and j.f are left as they were.
func (j *Journal) rewriteLocked() error {
	records := make([]Record, 0, len(j.pending))
	for _, r := range j.pending {
		records = append(records, r)
	}
	slices.SortFunc(records, func(a, b Record) int { return cmp.Compare(a.ID, b.ID) })
	if err := j.prepareDirLocked(); err != nil {
		return err
	}
	if len(j.damaged) > 0 {
		de := j.setAside(j.damaged)
		if de.SetAside == "" {
			return de
		}
		j.log.Warn("damaged journal lines set aside", "file", de.SetAside, "lines", len(j.damaged))
		j.damaged = nil
	}
	var buf []byte
	for _, r := range records {
		// Every pending record was encoded once already.
		b, _ := encode(openLine(r))
		buf = append(buf, b...)
	}
	if err := statefile.Replace(j.dir, j.path, FileName+".tmp-", buf); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if err := statefile.SyncDir(j.dir); err != nil {
		// The rename may not be durable; keep appending to the old file
		// would be wrong too, so treat it as a failed write and retry.
		j.dirty = true
		return fmt.Errorf("journal %s: syncing directory: %w", j.path, err)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		j.dirty = true
		return fmt.Errorf("journal: %w", err)
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f = f
	j.lines = len(records)
	j.dirty = false
	j.unsynced = false
	return nil
}

// prepareDirLocked creates the state directory if it is missing, making
// each new directory entry durable, and takes its lock.
func (j *Journal) prepareDirLocked() error {
	if j.locked {
		return nil
	}
	var created []string
	for d := j.dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) || d == filepath.Dir(d) {
			break
		}
		created = append(created, d)
	}
	if len(created) > 0 {
		// Parents as any directory, the state directory itself private.
		if err := os.MkdirAll(filepath.Dir(j.dir), 0o755); err != nil {
			return fmt.Errorf("state_dir: %w", err)
		}
		if err := os.Mkdir(j.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("state_dir: %w", err)
		}
		// A journal fsynced inside a directory whose own entry is lost
		// by a power cut is lost with it.
		for _, d := range created {
			if err := statefile.SyncDir(filepath.Dir(d)); err != nil {
				return fmt.Errorf("state_dir: syncing %s: %w", filepath.Dir(d), err)
			}
		}
	}
	l, err := lockDir(j.dir)
	if err != nil {
		return err
	}
	j.lock, j.locked = l, true
	return nil
}

func (j *Journal) unlock() {
	if j.lock != nil {
		j.lock.Close()
	}
	j.lock, j.locked = nil, false
}

// removeTemps deletes temporary files a rewrite left when the daemon died
// in the middle of it; under the lock they can be no one else's.
func (j *Journal) removeTemps() {
	ents, _ := os.ReadDir(j.dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), FileName+".tmp-") {
			continue
		}
		t := filepath.Join(j.dir, e.Name())
		if err := os.Remove(t); err != nil {
			j.log.Warn("removing a leftover temporary journal", "file", t, "err", err)
		}
	}
}
