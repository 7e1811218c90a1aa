// Package replay keeps the replay cache of sealed doors: the ciphertexts of
// the blocks that opened a door, each until it could no longer pass any
// door's skew check, so that a sniffed set of knocks opens nothing when it
// is sent again (see docs/sealed.md).
//
// The cache is a file in state_dir, beside the close journal and under the
// same lock, which its caller holds (journal.Open takes it). Each line is
// one used block and when it may be forgotten, or a hold (below), and
// carries a CRC-32C of its body like the journal's lines:
//
//	1a2b3c4d use 28d9578fc3cb47abe70ad0936ffc075c 1767226200
//	5e6f7081 hold 1767226800
//
// A block is written and fsynced before Use returns, and the matcher
// reports its door's match only after that, so a crash right after an
// opening can never let the same knocks open the door again. Expired lines
// are dropped when the file is rewritten (through a temporary file and a
// rename), at every Open and whenever it has grown well past the blocks
// still kept.
//
// Damage is judged as an attacker would use it. The last line without its
// newline is an append cut short by a crash: its block never opened a
// door, since Use had not returned, so it is dropped. Any other line that
// cannot be read may have been a used block, and which one cannot be
// known; dropping it could let that block open its door again. So the
// cache then refuses every block — every sealed door stays shut — until
// any block such a line could hold has expired: Options.Hold from the
// moment the damage was found. The hold is itself written to the file, so
// a restart does not lift it. Removing the file lifts it at once, at the
// risk it guards against.
package replay

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"portknock/internal/filetrust"
	"portknock/internal/statefile"
	"portknock/sealed"
	"portknock/sequence"
)

// FileName is the cache's name in the state directory.
const FileName = "sealed.replay"

// maxFileSize bounds what Open reads: a line is 57 bytes, and only blocks
// that opened a door in the last minutes are kept, so a real cache is
// tiny; a wrong file must not exhaust memory.
const maxFileSize = 64 << 20

// compactSlack is how many uses pass between looks for expired blocks,
// and how many more lines than kept blocks the file may hold before it is
// rewritten.
const compactSlack = 1024

// Options configure a Cache.
type Options struct {
	// Now is the wall clock, which decides when a block may be forgotten;
	// time.Now when nil.
	Now func() time.Time
	// Logger receives the warnings of Open. Nil discards them.
	Logger *slog.Logger
	// Hold is how long a damaged cache refuses every block; DefaultHold
	// when zero.
	Hold time.Duration
}

// DefaultHold is the longest a block may be kept after it was used: it is
// used at most sequence.MaxSealedSkew after its own time, and kept until
// that long after it.
const DefaultHold = 2 * sequence.MaxSealedSkew

// Cache is the replay cache of one state directory. Its methods are safe
// for concurrent use. It implements sequence.ReplayCache.
type Cache struct {
	dir, path string // "" for a cache in memory only
	now       func() time.Time

	mu   sync.Mutex
	f    *os.File // opened for appending; nil until a write succeeds
	used map[[sealed.BlockSize]byte]int64
	// hold, when after now (Unix seconds), refuses every block: the file
	// was damaged.
	hold  int64
	lines int // lines in the file, or uses in memory
	// nextPrune is the value of lines at which expired blocks are next
	// looked for.
	nextPrune int
	// dirty is set when a write or a sync failed, or Open could not
	// rewrite the file: it may end in part of a line, or lack lines
	// believed written, so the next Use rewrites it whole first.
	dirty  bool
	closed bool
}

// Open reads the cache in dir and returns it ready for Use, with expired
// blocks dropped. dir should exist: the journal creates it.
//
// Open returns a nil Cache only when an existing file cannot be read, or is
// not to be trusted (see package filetrust: owned by root or the daemon's
// user, and no one else may write to it or to a directory above it):
// which blocks were used is then unknown, and the caller must not go on. Any
// other error comes with a usable Cache and should be logged:
//
//   - a *DamageError: lines could not be read, and every block is refused
//     until the hold it names has passed;
//   - a failure to write (read-only or full file system, permissions):
//     Use fails, and so no sealed door opens, until a later write
//     succeeds.
func Open(dir string, opts Options) (*Cache, error) {
	dir = filepath.Clean(dir)
	c := newCache(opts)
	c.dir, c.path = dir, filepath.Join(dir, FileName)
	hold := opts.Hold
	if hold <= 0 {
		hold = DefaultHold
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The journal has judged state_dir already; the cache is judged
	// again here, as it may be opened by a reload long after.
	if err := filetrust.Check(c.path, filetrust.State); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("replay cache: %w", err)
	}
	c.removeTemps(log)
	data, err := readLimited(c.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("replay cache: %w", err)
	}
	now := c.now().Unix()
	r := parse(data)
	for ct, until := range r.used {
		if until >= now {
			c.used[ct] = until
		}
	}
	c.hold = r.hold
	if r.torn != nil {
		log.Warn("replay cache: last line cut short by a crash; dropped (its block opened nothing)", "file", c.path, "line", r.torn.Line)
	}
	var errs []error
	if len(r.damaged) > 0 {
		c.hold = max(c.hold, now+int64(hold/time.Second))
		errs = append(errs, &DamageError{Path: c.path, Damaged: r.damaged, Hold: time.Unix(c.hold, 0)})
	}
	if c.hold < now {
		c.hold = 0
	}
	// Rewriting now drops what expired and proves the file writable.
	if err := c.rewriteLocked(); err != nil {
		c.dirty = true
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// NewMemory returns a cache kept in memory only, for a daemon that writes
// nothing (a dry run).
func NewMemory(opts Options) *Cache { return newCache(opts) }

func newCache(opts Options) *Cache {
	c := &Cache{now: opts.Now, used: make(map[[sealed.BlockSize]byte]int64)}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// DamageError reports the lines Open could not read, and the hold they put
// on every sealed door.
type DamageError struct {
	Path    string
	Damaged []Damage
	// Hold is when blocks are accepted again.
	Hold time.Time
}

// Error names the file, the first damaged line, and the hold.
func (e *DamageError) Error() string {
	first := e.Damaged[0]
	return fmt.Sprintf("%s: %d damaged line(s) (first: line %d: %s); every sealed block is refused until %s, "+
		"as a damaged line may have held a block that would otherwise open again (remove the file to lift this sooner, at that risk)",
		e.Path, len(e.Damaged), first.Line, first.Reason, e.Hold.UTC().Format(time.RFC3339))
}

// HoldError is Use's refusal while the cache holds every block back after
// damage.
type HoldError struct {
	Path  string
	Until time.Time
}

// Error says until when, and why.
func (e *HoldError) Error() string {
	return fmt.Sprintf("replay cache %s was damaged: every sealed block is refused until %s", e.Path, e.Until.UTC().Format(time.RFC3339))
}

// Use records ct as used until the wall clock passes until, and returns
// once that is on stable storage. It returns sealed.ReasonReplay when ct
// was used before and is still kept, a *HoldError while a damaged cache
// refuses every block, and any other error when ct could not be recorded
// for sure; in every such case the block must not open a door.
func (c *Cache) Use(ct [sealed.BlockSize]byte, until time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("replay cache is closed")
	}
	if _, ok := c.used[ct]; ok {
		return sealed.ReasonReplay
	}
	now := c.now().Unix()
	if c.hold >= now {
		return &HoldError{Path: c.path, Until: time.Unix(c.hold, 0)}
	}
	u := until.Unix()
	if until.Nanosecond() != 0 {
		u++ // kept at least until until
	}
	if c.lines >= c.nextPrune {
		c.pruneLocked(now)
		c.nextPrune = c.lines + compactSlack
	}
	if c.path == "" {
		c.used[ct] = u
		c.lines++
		return nil
	}
	if c.dirty || c.lines > 2*len(c.used)+compactSlack {
		if err := c.rewriteLocked(); err != nil {
			c.dirty = true
			return err
		}
		c.nextPrune = c.lines + compactSlack
	}
	if _, err := c.f.Write(useLine(ct, u)); err != nil {
		c.dirty = true
		return fmt.Errorf("replay cache: %w", err)
	}
	c.lines++
	if err := c.f.Sync(); err != nil {
		// The line may or may not be on disk: the block is refused, and
		// the next Use rewrites the file from what is known.
		c.dirty = true
		return fmt.Errorf("replay cache: %w", err)
	}
	c.used[ct] = u
	return nil
}

// Len returns how many blocks are kept.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.used)
}

// Close closes the file. Every block is on stable storage already.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

// pruneLocked forgets expired blocks. It runs once per compactSlack uses,
// so that its cost is spread and the map stays bounded by the blocks used
// in the last minutes.
func (c *Cache) pruneLocked(now int64) {
	for ct, until := range c.used {
		if until < now {
			delete(c.used, ct)
		}
	}
	if c.hold < now {
		c.hold = 0
	}
}

// rewriteLocked replaces the file with the blocks kept and the hold,
// through a synced temporary file renamed over it, then opens it for
// appending. On failure the old file and c.f are left as they were.
func (c *Cache) rewriteLocked() error {
	var buf []byte
	if c.hold != 0 {
		buf = append(buf, holdLine(c.hold)...)
	}
	for ct, until := range c.used {
		buf = append(buf, useLine(ct, until)...)
	}
	if err := statefile.Replace(c.dir, c.path, FileName+".tmp-", buf); err != nil {
		return fmt.Errorf("replay cache %s: %w", c.path, err)
	}
	if err := statefile.SyncDir(c.dir); err != nil {
		return fmt.Errorf("replay cache %s: syncing directory: %w", c.path, err)
	}
	f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	if c.f != nil {
		c.f.Close()
	}
	c.f = f
	c.lines = len(c.used)
	if c.hold != 0 {
		c.lines++
	}
	c.nextPrune = c.lines + compactSlack
	c.dirty = false
	return nil
}

// removeTemps deletes temporary files a rewrite left when the daemon died
// in the middle of it; under the state_dir's lock they can be no one
// else's.
func (c *Cache) removeTemps(log *slog.Logger) {
	ents, _ := os.ReadDir(c.dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), FileName+".tmp-") {
			continue
		}
		t := filepath.Join(c.dir, e.Name())
		if err := os.Remove(t); err != nil {
			log.Warn("removing a leftover temporary replay cache", "file", t, "err", err)
		}
	}
}

// Summary is what Read finds in a cache.
type Summary struct {
	// Kept is the number of blocks not yet expired.
	Kept int
	// Hold, when not zero, is when a damaged cache accepts blocks again.
	Hold time.Time
	// Damaged is the number of lines that cannot be read, a torn last
	// line not included.
	Damaged int
}

// Read summarises the cache in dir at now without changing anything, for
// tools that only look. A missing cache is empty.
func Read(dir string, now time.Time) (Summary, error) {
	data, err := readLimited(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return Summary{}, nil
	}
	if err != nil {
		return Summary{}, err
	}
	r := parse(data)
	var s Summary
	for _, until := range r.used {
		if until >= now.Unix() {
			s.Kept++
		}
	}
	if r.hold >= now.Unix() {
		s.Hold = time.Unix(r.hold, 0)
	}
	s.Damaged = len(r.damaged)
	return s, nil
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
		return nil, fmt.Errorf("%s: larger than %d MiB, not a replay cache", path, maxFileSize>>20)
	}
	return data, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksummed renders a line: eight hex digits of the CRC-32C of body, a
// space, body, a newline.
func checksummed(body []byte) []byte {
	out := make([]byte, 0, 10+len(body))
	out = fmt.Appendf(out, "%08x ", crc32.Checksum(body, castagnoli))
	out = append(out, body...)
	return append(out, '\n')
}

func useLine(ct [sealed.BlockSize]byte, until int64) []byte {
	body := make([]byte, 0, 64)
	body = append(body, "use "...)
	body = hex.AppendEncode(body, ct[:])
	body = append(body, ' ')
	body = strconv.AppendInt(body, until, 10)
	return checksummed(body)
}

func holdLine(until int64) []byte {
	return checksummed(strconv.AppendInt([]byte("hold "), until, 10))
}

// Damage is one line of a cache that could not be read.
type Damage struct {
	// Line is the line number in the file, from 1.
	Line int
	// Reason says what is wrong with it.
	Reason string
}

// parsed is what parse found in a file.
type parsed struct {
	used    map[[sealed.BlockSize]byte]int64
	hold    int64
	damaged []Damage
	torn    *Damage // the last line, without its newline
}

// parse reads a whole cache file. A block listed twice is kept until the
// later of its times.
func parse(data []byte) parsed {
	r := parsed{used: make(map[[sealed.BlockSize]byte]int64)}
	for n := 1; len(data) > 0; n++ {
		raw, rest, found := bytes.Cut(data, []byte{'\n'})
		data = rest
		if !found {
			r.torn = &Damage{Line: n, Reason: "cut short (no newline)"}
			break
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		if err := r.line(raw); err != nil {
			r.damaged = append(r.damaged, Damage{Line: n, Reason: err.Error()})
		}
	}
	return r
}

// line reads one line without its newline. Any error means the line is
// damaged: never guessed at.
func (r *parsed) line(b []byte) error {
	if len(b) < 10 || b[8] != ' ' {
		return errors.New("not a replay cache line")
	}
	want, err := strconv.ParseUint(string(b[:8]), 16, 32)
	if err != nil {
		return errors.New("bad checksum field")
	}
	body := b[9:]
	if crc32.Checksum(body, castagnoli) != uint32(want) {
		return errors.New("checksum mismatch")
	}
	f := strings.Split(string(body), " ")
	switch {
	case len(f) == 3 && f[0] == "use":
		var ct [sealed.BlockSize]byte
		if len(f[1]) != 2*sealed.BlockSize {
			return errors.New("bad block")
		}
		if _, err := hex.Decode(ct[:], []byte(f[1])); err != nil {
			return errors.New("bad block")
		}
		until, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return errors.New("bad time")
		}
		r.used[ct] = max(r.used[ct], until)
	case len(f) == 2 && f[0] == "hold":
		until, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return errors.New("bad time")
		}
		r.hold = max(r.hold, until)
	default:
		return errors.New("unknown record")
	}
	return nil
}

var _ sequence.ReplayCache = (*Cache)(nil)
