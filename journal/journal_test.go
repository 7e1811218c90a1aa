package journal

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portknock/command"
)

var t0 = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

func rec(door, src string, due time.Time) Record {
	return Record{
		Door: door,
		Src:  netip.MustParseAddr(src),
		Due:  due,
		Stop: command.Command{Shell: "nft delete element inet fw knock4 { " + src + " }"},
	}
}

// openAll opens the journal in dir and returns, beside it, what it
// restored and its degraded states joined into one error; it checks Open's
// contract of a journal or an error, never both.
func openAll(dir string) (*Journal, []Record, error) {
	j, err := Open(dir, nil)
	if (j == nil) == (err == nil) {
		return j, nil, fmt.Errorf("Open returned journal %v and error %v: want exactly one", j != nil, err)
	}
	if j == nil {
		return nil, nil, err
	}
	var errs []error
	if de := j.Damage(); de != nil {
		errs = append(errs, de)
	}
	if werr := j.WriteErr(); werr != nil {
		errs = append(errs, werr)
	}
	return j, j.Restored(), errors.Join(errs...)
}

func mustOpen(t *testing.T, dir string) (*Journal, []Record) {
	t.Helper()
	j, recs, err := openAll(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j, recs
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	j, recs := mustOpen(t, dir)
	if len(recs) != 0 {
		t.Fatalf("fresh journal has %d records", len(recs))
	}
	a := rec("ssh", "192.0.2.7", t0.Add(30*time.Second))
	b := rec("web", "2001:db8::7", t0.Add(time.Minute))
	b.Stop = command.Command{Argv: []string{"/usr/sbin/nft", "delete", "element", "inet", "fw", "knock6", "{ 2001:db8::7 }"}}
	c := rec("ssh", "192.0.2.8", t0.Add(40*time.Second))
	a.For = 30 * time.Second
	var ids []uint64
	for _, r := range []Record{a, b, c} {
		id, err := j.Add(r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] == 0 || ids[1] != ids[0]+1 || ids[2] != ids[1]+1 {
		t.Fatalf("ids %v, want increasing from 1", ids)
	}
	if err := j.Extend(ids[1], t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := j.Done(ids[2]); err != nil {
		t.Fatal(err)
	}
	// Done and Extend for unknown IDs are no-ops.
	if err := j.Done(999); err != nil {
		t.Fatal(err)
	}
	if err := j.Extend(999, t0); err != nil {
		t.Fatal(err)
	}
	if got := j.Pending(); got != 2 {
		t.Fatalf("Pending = %d, want 2", got)
	}
	// No Close: the next Open must read what a killed daemon left.
	j.crash()
	j2, got, err := openAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	a.ID, b.ID = ids[0], ids[1]
	b.Due = t0.Add(5 * time.Minute)
	want := []Record{a, b}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !equal(got[i], want[i]) {
			t.Errorf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// A new record's ID is above every ID in the file it was read from, so
	// a stale line can never name it.
	id, err := j2.Add(rec("ssh", "192.0.2.9", t0))
	if err != nil {
		t.Fatal(err)
	}
	if id <= ids[2] {
		t.Errorf("id after reopen = %d, want > %d", id, ids[2])
	}
}

func equal(a, b Record) bool {
	return a.ID == b.ID && a.Door == b.Door && a.Src == b.Src && a.Due.Equal(b.Due) && a.For == b.For &&
		a.Stop.Shell == b.Stop.Shell && strings.Join(a.Stop.Argv, "\x00") == strings.Join(b.Stop.Argv, "\x00")
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "portknockd")
	j, _ := mustOpen(t, dir+"/") // as a configuration may spell it
	if _, err := j.Add(rec("ssh", "192.0.2.7", t0)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("state_dir mode %04o, want 0700", got)
	}
	// A parent it had to create is an ordinary directory: private
	// parents would lock other users out of their own subdirectories.
	if fi, err := os.Stat(filepath.Dir(dir)); err != nil || fi.Mode().Perm()&0o055 == 0 {
		t.Errorf("parent of state_dir: %v, %v; want it readable by others (umask permitting)", fi.Mode(), err)
	}
	fi, err = os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("journal mode %04o, want 0600", got)
	}
}

func TestNotADirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openAll(file); err == nil {
		t.Fatal("Open on a regular file succeeded")
	}
}

// TestDamaged writes a journal with every kind of damage between good
// lines: each damaged line is reported and copied aside, every good record
// still comes back, and the journal is clean afterwards.
func TestDamaged(t *testing.T) {
	dir := t.TempDir()
	good1 := rec("ssh", "192.0.2.1", t0)
	good1.ID = 1
	good2 := rec("ssh", "192.0.2.2", t0)
	good2.ID = 2
	good3 := rec("web", "192.0.2.3", t0)
	good3.ID = 7
	flipped := enc(openLine(rec("ssh", "192.0.2.66", t0)))
	flipped[20] ^= 0x20
	badOp := enc(line{Op: "frobnicate", ID: 3})
	noDoor := enc(line{Op: opOpen, ID: 4, Src: netip.MustParseAddr("192.0.2.4"), Due: t0, Shell: "x"})
	var data []byte
	data = append(data, enc(openLine(good1))...)
	data = append(data, flipped...)                       // line 2
	data = append(data, "garbage that is no record\n"...) // line 3
	data = append(data, enc(openLine(good2))...)
	data = append(data, badOp...)  // line 5
	data = append(data, noDoor...) // line 6
	data = append(data, "\n"...)   // blank: ignored
	data = append(data, enc(openLine(good3))...)
	data = append(data, enc(line{Op: opDone, ID: 2})...)
	torn := enc(openLine(rec("ssh", "192.0.2.9", t0)))
	data = append(data, torn[:len(torn)/2]...) // line 10, cut by a crash
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	j, recs, err := openAll(dir)
	if err != nil {
		var de *DamageError
		if !errors.As(err, &de) {
			t.Fatalf("Open: %v, want a *DamageError", err)
		}
		var lines []int
		for _, d := range de.Damaged {
			lines = append(lines, d.Line)
		}
		if want := []int{2, 3, 5, 6, 10}; !slicesEqual(lines, want) {
			t.Errorf("damaged lines %v, want %v", lines, want)
		}
		if de.SetAside == "" {
			t.Fatalf("damage not set aside: %v", err)
		}
		aside, rerr := os.ReadFile(de.SetAside)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if !bytes.Contains(aside, []byte("garbage that is no record")) || !bytes.Contains(aside, torn[:len(torn)/2]) {
			t.Errorf("set-aside file lacks the damaged lines:\n%s", aside)
		}
		if !strings.Contains(err.Error(), "5 damaged line(s)") || !strings.Contains(err.Error(), de.SetAside) {
			t.Errorf("message %q should count the lines and name the copy", err)
		}
	} else {
		t.Fatal("Open reported no damage")
	}
	if j == nil {
		t.Fatal("Open returned no journal with a damage report")
	}
	defer j.Close()
	if len(recs) != 2 || !equal(recs[0], good1) || !equal(recs[1], good3) {
		t.Fatalf("records %+v, want ids 1 and 7", recs)
	}
	// The journal was rewritten clean: a second open finds no damage.
	j.Close()
	_, recs2, err := openAll(dir)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if len(recs2) != 2 {
		t.Fatalf("second Open: %d records, want 2", len(recs2))
	}
	id, err := j.Add(rec("x", "192.0.2.10", t0))
	if err == nil || id != 0 {
		t.Errorf("Add on a closed journal = %d, %v; want an error", id, err)
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCompaction checks that a long-running journal does not grow without
// bound: after many opens and closes the file holds about the pending
// records only.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	j, _ := mustOpen(t, dir)
	keep, err := j.Add(rec("ssh", "192.0.2.1", t0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		id, err := j.Add(rec("ssh", netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}).String(), t0))
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Extend(id, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := j.Done(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	j.crash()
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte{'\n'}); n > 2+compactSlack+2 {
		t.Errorf("journal has %d lines for 1 pending record", n)
	}
	_, recs, err := openAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].ID != keep {
		t.Fatalf("after compaction: %+v, want only id %d", recs, keep)
	}
}

// TestInUse: a second Open of a state directory in use fails with ErrInUse
// and touches nothing; once the first is closed the directory is free.
func TestInUse(t *testing.T) {
	dir := t.TempDir()
	j, _ := mustOpen(t, dir)
	if _, err := j.Add(rec("ssh", "192.0.2.1", t0)); err != nil {
		t.Fatal(err)
	}
	j2, recs, err := openAll(dir)
	if j2 != nil || recs != nil || !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open = %v, %v, %v; want nil and ErrInUse naming %s", j2, recs, err, dir)
	}
	if _, err := j.Add(rec("ssh", "192.0.2.2", t0)); err != nil {
		t.Fatalf("Add after a refused second Open: %v", err)
	}
	j.Close()
	j3, recs, err := openAll(dir)
	if err != nil || len(recs) != 2 {
		t.Fatalf("Open after Close: %d records, %v", len(recs), err)
	}
	j3.Close()
}

// TestLeftoverTemps: a rewrite's temporary file left by a crash is removed
// by the next Open; other files in the directory are not.
func TestLeftoverTemps(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, FileName+".tmp-12345")
	other := filepath.Join(dir, FileName+".damaged-1")
	for _, p := range []string{tmp, other} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustOpen(t, dir)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover %s: %v, want removed", tmp, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("%s: %v, want kept", other, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	r := rec("ssh", "192.0.2.1", t0)
	r.ID = 1
	good := enc(openLine(r))
	good = good[:len(good)-1]
	for _, c := range []struct {
		name string
		line string
	}{
		{"empty", ""},
		{"short", "0000"},
		{"no space", strings.Replace(string(good), " ", "_", 1)},
		{"bad hex", "zzzzzzzz" + string(good[8:])},
		{"trailing data", withCRC(`{"op":"done","id":1} {"op":"done","id":2}`)},
		{"no id", withCRC(`{"op":"done"}`)},
		{"extend without due", withCRC(`{"op":"extend","id":1}`)},
		{"both shell and argv", withCRC(`{"op":"open","id":1,"door":"d","src":"192.0.2.1","due":"2026-11-22T04:00:00Z","shell":"x","argv":["y"]}`)},
		{"neither shell nor argv", withCRC(`{"op":"open","id":1,"door":"d","src":"192.0.2.1","due":"2026-11-22T04:00:00Z"}`)},
		{"bad for", withCRC(`{"op":"open","id":1,"door":"d","src":"192.0.2.1","due":"2026-11-22T04:00:00Z","for":"soon","shell":"x"}`)},
		{"negative for", withCRC(`{"op":"open","id":1,"door":"d","src":"192.0.2.1","due":"2026-11-22T04:00:00Z","for":"-1s","shell":"x"}`)},
		{"bad src", withCRC(`{"op":"open","id":1,"door":"d","src":"192.0.2.300","due":"2026-11-22T04:00:00Z","shell":"x"}`)},
	} {
		if _, err := decode([]byte(c.line)); err == nil {
			t.Errorf("%s: decode(%q) succeeded", c.name, c.line)
		}
	}
	if _, err := decode(good); err != nil {
		t.Errorf("decode(good) = %v", err)
	}
	// A newer version's field is not damage: after a downgrade its
	// records must still close their doors.
	if l, err := decode([]byte(withCRC(`{"op":"open","id":1,"door":"d","src":"192.0.2.1","due":"2026-11-22T04:00:00Z","shell":"x","later":{"a":1}}`))); err != nil || l.Door != "d" {
		t.Errorf("decode with an unknown field = %+v, %v", l, err)
	}
}

func withCRC(body string) string { return string(checksummed([]byte(body))) }

// enc encodes a line that is known to encode.
func enc(l line) []byte {
	b, err := encode(l)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzReplay(f *testing.F) {
	var seed []byte
	seed = append(seed, enc(openLine(rec("ssh", "192.0.2.1", t0)))...)
	seed = append(seed, enc(line{Op: opExtend, ID: 1, Due: t0.Add(time.Minute)})...)
	seed = append(seed, enc(line{Op: opDone, ID: 1})...)
	f.Add(seed)
	f.Add([]byte("00000000 {}\n"))
	f.Add([]byte("\n\n\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, damaged, maxID := replay(data)
		seen := make(map[uint64]bool)
		for _, r := range recs {
			if r.ID == 0 || r.ID > maxID || seen[r.ID] {
				t.Fatalf("bad id %d (max %d) in %+v", r.ID, maxID, recs)
			}
			seen[r.ID] = true
			if !r.Src.IsValid() || r.Door == "" {
				t.Fatalf("incomplete record %+v", r)
			}
			// What replay returns must survive a rewrite unchanged.
			l, err := decode(bytes.TrimSuffix(enc(openLine(r)), []byte{'\n'}))
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", r, err)
			}
			if l.ID != r.ID || l.Door != r.Door || l.Src != r.Src || !l.Due.Equal(r.Due) {
				t.Fatalf("re-encoding %+v gave %+v", r, l)
			}
		}
		for _, d := range damaged {
			if d.Line < 1 || d.Reason == "" {
				t.Fatalf("bad damage entry %+v", d)
			}
		}
	})
}
