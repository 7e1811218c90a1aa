package replay

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"portknock/sealed"
	"portknock/sequence"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is a wall clock a test sets.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func ct(i int) [sealed.BlockSize]byte {
	var c [sealed.BlockSize]byte
	c[0], c[1], c[15] = byte(i>>8), byte(i), 0xaa
	return c
}

func open(t *testing.T, dir string, clk *clock) *Cache {
	t.Helper()
	c, err := Open(dir, Options{Now: clk.now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestUseOnceAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	c := open(t, dir, clk)
	if err := c.Use(ct(1), t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.Use(ct(1), t0.Add(10*time.Minute)); err != sealed.ReasonReplay {
		t.Fatalf("second Use: %v, want ReasonReplay", err)
	}
	if err := c.Use(ct(2), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// No Close: every Use is durable on return, as after a kill -9.
	clk.set(t0.Add(5 * time.Minute))
	c2 := open(t, dir, clk)
	if err := c2.Use(ct(1), t0.Add(10*time.Minute)); err != sealed.ReasonReplay {
		t.Errorf("after a restart: %v, want ReasonReplay", err)
	}
	// ct(2) expired at t0+1m and is forgotten.
	if n := c2.Len(); n != 1 {
		t.Errorf("%d blocks kept after expiry, want 1", n)
	}
	if err := c2.Use(ct(2), t0.Add(20*time.Minute)); err != nil {
		t.Errorf("an expired block is refused: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestClockStepBackKeepsBlocks: expiry follows the block's own time, so a
// wall clock stepped back keeps blocks longer, never shorter.
func TestClockStepBackKeepsBlocks(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	c := open(t, dir, clk)
	if err := c.Use(ct(1), t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, at := range []time.Time{t0.Add(-time.Hour), t0.Add(10 * time.Minute)} {
		clk.set(at)
		c := open(t, dir, clk)
		if err := c.Use(ct(1), t0.Add(10*time.Minute)); err != sealed.ReasonReplay {
			t.Errorf("at %v: %v, want ReasonReplay", at, err)
		}
		c.Close()
	}
	clk.set(t0.Add(10*time.Minute + time.Second))
	if n := open(t, dir, clk).Len(); n != 0 {
		t.Errorf("%d blocks kept after until passed, want 0", n)
	}
}

func TestUntilRoundsUp(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	c := open(t, dir, clk)
	if err := c.Use(ct(1), t0.Add(time.Minute+time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	clk.set(t0.Add(time.Minute + time.Second))
	if n := open(t, dir, clk).Len(); n != 1 {
		t.Errorf("a block kept until 1m0.001s was forgotten at 1m1s")
	}
}

// TestTornLastLine: a crash in the middle of an append leaves a line
// without its newline, whose block never opened anything: it is dropped,
// the lines before it are kept, and nothing is held back.
func TestTornLastLine(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	c := open(t, dir, clk)
	if err := c.Use(ct(1), t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	line := useLine(ct(2), t0.Add(10*time.Minute).Unix())
	f.Write(line[:len(line)/2])
	f.Close()
	c2 := open(t, dir, clk)
	if err := c2.Use(ct(1), t0.Add(10*time.Minute)); err != sealed.ReasonReplay {
		t.Errorf("the block before the torn line: %v, want ReasonReplay", err)
	}
	if err := c2.Use(ct(2), t0.Add(10*time.Minute)); err != nil {
		t.Errorf("the torn line's block: %v, want it accepted", err)
	}
}

// TestDamageHoldsEveryBlock: a damaged line may have been any used block,
// so every block is refused until any it could have been has expired; the
// hold survives a restart and ends on time.
func TestDamageHoldsEveryBlock(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	c := open(t, dir, clk)
	for i := range 3 {
		if err := c.Use(ct(i), t0.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	path := filepath.Join(dir, FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.IndexByte(data, '\n') + 20 // in the second line's block
	data[i] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	clk.set(t0.Add(time.Minute))
	c2, err := Open(dir, Options{Now: clk.now})
	var de *DamageError
	if c2 == nil || !errors.As(err, &de) {
		t.Fatalf("Open = %v, %v; want a cache and a DamageError", c2, err)
	}
	wantHold := t0.Add(time.Minute + DefaultHold)
	if !de.Hold.Equal(wantHold) || de.Damaged[0].Line != 2 || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("DamageError %v; want line 2's checksum, hold until %v", err, wantHold)
	}
	var he *HoldError
	if err := c2.Use(ct(100), t0.Add(11*time.Minute)); !errors.As(err, &he) || !he.Until.Equal(wantHold) {
		t.Errorf("Use during the hold: %v; want a HoldError until %v", err, wantHold)
	}
	if err := c2.Use(ct(0), t0.Add(10*time.Minute)); err != sealed.ReasonReplay {
		t.Errorf("a readable block during the hold: %v, want ReasonReplay", err)
	}
	c2.Close()
	// A restart before the hold ends keeps holding, though the damaged
	// line is gone from the rewritten file.
	clk.set(wantHold.Add(-time.Second))
	c3, err := Open(dir, Options{Now: clk.now})
	if err != nil {
		t.Fatalf("reopening: %v; want the damage set aside by the rewrite", err)
	}
	if err := c3.Use(ct(100), t0.Add(40*time.Minute)); !errors.As(err, &he) {
		t.Errorf("Use after a restart during the hold: %v; want a HoldError", err)
	}
	clk.set(wantHold.Add(time.Second))
	if err := c3.Use(ct(100), t0.Add(40*time.Minute)); err != nil {
		t.Errorf("Use after the hold: %v", err)
	}
	c3.Close()
	s, err := Read(dir, clk.now())
	if err != nil || s.Kept != 1 || !s.Hold.IsZero() || s.Damaged != 0 {
		t.Errorf("Read = %+v, %v; want one block kept, no hold, no damage", s, err)
	}
}

func TestDamagedLines(t *testing.T) {
	good := string(useLine(ct(1), t0.Unix()+600))
	for _, tc := range []struct {
		name, line, reason string
	}{
		{"garbage", "hello world\n", "not a replay cache line"},
		{"bad checksum field", "zzzzzzzz use\n", "bad checksum field"},
		{"checksum", "00000000" + good[8:], "checksum mismatch"},
		{"unknown record", string(checksummed([]byte("open 1 2"))), "unknown record"},
		{"short block", string(checksummed([]byte("use 00ff 12"))), "bad block"},
		{"bad hex", string(checksummed([]byte("use " + strings.Repeat("zz", 16) + " 12"))), "bad block"},
		{"bad time", string(checksummed([]byte("use " + strings.Repeat("00", 16) + " soon"))), "bad time"},
		{"bad hold", string(checksummed([]byte("hold soon"))), "bad time"},
		{"extra field", string(checksummed([]byte("hold 1 2"))), "unknown record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := parse([]byte(good + tc.line + good))
			if len(r.damaged) != 1 || r.damaged[0].Line != 2 || r.damaged[0].Reason != tc.reason || len(r.used) != 1 {
				t.Errorf("parse = %+v; want line 2 damaged (%s) and the good block read", r, tc.reason)
			}
		})
	}
}

// TestUnreadableCacheStopsOpen: when the file exists but cannot be read,
// which blocks were used is unknown, and Open refuses.
func TestUnreadableCacheStopsOpen(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, FileName), 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir, Options{})
	if c != nil || err == nil {
		t.Fatalf("Open = %v, %v; want it refused", c, err)
	}
}

// TestNotWritableRefusesUntilHealed: a state_dir that cannot be written
// (here: not there yet) gives a usable cache whose Use fails, and works
// once it can be written, without a restart.
func TestNotWritableRefusesUntilHealed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	clk := &clock{t: t0}
	c, err := Open(dir, Options{Now: clk.now})
	if c == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open = %v, %v; want a cache and the write's error", c, err)
	}
	defer c.Close()
	if err := c.Use(ct(1), t0.Add(time.Minute)); err == nil || err == sealed.ReasonReplay {
		t.Fatalf("Use with nowhere to write: %v; want an error", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.Use(ct(1), t0.Add(time.Minute)); err != nil {
		t.Fatalf("Use once writable: %v", err)
	}
	if err := c.Use(ct(1), t0.Add(time.Minute)); err != sealed.ReasonReplay {
		t.Errorf("second Use: %v", err)
	}
}

// TestFailedWriteRewrites: after a failed append the file may end in part
// of a line; the next Use rewrites it from what is known.
func TestFailedWriteRewrites(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	c := open(t, dir, clk)
	if err := c.Use(ct(1), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	c.f.Close() // the next write fails
	if err := c.Use(ct(2), t0.Add(time.Minute)); err == nil {
		t.Fatal("Use on a closed file succeeded")
	}
	if err := c.Use(ct(2), t0.Add(time.Minute)); err != nil {
		t.Fatalf("Use after the failure: %v", err)
	}
	c.Close()
	r := parse(mustRead(t, filepath.Join(dir, FileName)))
	if len(r.used) != 2 || len(r.damaged) != 0 || r.torn != nil {
		t.Errorf("file after the failure: %+v; want both blocks, nothing damaged", r)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCompaction: the file is rewritten once it holds many more lines than
// blocks kept, dropping the expired ones.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	c := open(t, dir, clk)
	for i := range 3 * compactSlack {
		at := t0.Add(time.Duration(i) * time.Second)
		clk.set(at)
		if err := c.Use(ct(i), at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	lines := bytes.Count(mustRead(t, filepath.Join(dir, FileName)), []byte{'\n'})
	if lines > compactSlack+200 {
		t.Errorf("%d lines for %d blocks kept", lines, c.Len())
	}
	if n := c.Len(); n > compactSlack+100 {
		t.Errorf("%d blocks kept in memory; expired ones are not pruned", n)
	}
}

func TestLeftoverTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, FileName+".tmp-123")
	if err := os.WriteFile(tmp, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	open(t, dir, &clock{t: t0})
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover temporary file: %v", err)
	}
}

func TestMemory(t *testing.T) {
	clk := &clock{t: t0}
	c := NewMemory(Options{Now: clk.now})
	if err := c.Use(ct(1), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.Use(ct(1), t0.Add(time.Minute)); err != sealed.ReasonReplay {
		t.Fatalf("second Use: %v", err)
	}
	for i := range 3 * compactSlack {
		clk.set(t0.Add(time.Duration(i) * time.Second))
		if err := c.Use(ct(i+2), clk.now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n > compactSlack+10 {
		t.Errorf("%d blocks kept in memory", n)
	}
}

func TestRoundTrip(t *testing.T) {
	var data []byte
	want := map[[sealed.BlockSize]byte]int64{}
	for i := range 100 {
		want[ct(i)] = int64(i) * 1000
		data = append(data, useLine(ct(i), int64(i)*1000)...)
	}
	data = append(data, holdLine(12345)...)
	r := parse(data)
	if len(r.damaged) != 0 || r.hold != 12345 || fmt.Sprint(r.used) != fmt.Sprint(want) {
		t.Errorf("round trip: %+v", r)
	}
	if len(useLine(ct(1), t0.Unix())) != 57 {
		t.Errorf("a line is %d bytes, want 57: %q", len(useLine(ct(1), t0.Unix())), useLine(ct(1), t0.Unix()))
	}
}

func TestDefaultHold(t *testing.T) {
	if DefaultHold != 2*sequence.MaxSealedSkew {
		t.Errorf("DefaultHold %v", DefaultHold)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(useLine(ct(1), 1767225600))
	f.Add(append(holdLine(1), useLine(ct(2), -5)...))
	f.Add([]byte("00000000 use\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := parse(data)
		// What parse read, written again, reads back the same.
		var again []byte
		if r.hold != 0 {
			again = holdLine(r.hold)
		}
		for c, u := range r.used {
			again = append(again, useLine(c, u)...)
		}
		r2 := parse(again)
		if len(r2.damaged) != 0 || r2.hold != r.hold || fmt.Sprint(r2.used) != fmt.Sprint(r.used) {
			t.Fatalf("rewrite of %q reads back as %+v", data, r2)
		}
	})
}

// TestUntrustedCacheStopsOpen: a cache others may write to could hold
// anything, or lack what it should: Open refuses it.
func TestUntrustedCacheStopsOpen(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, &clock{t: t0}).Close()
	path := filepath.Join(dir, FileName)
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir, Options{})
	if c != nil || err == nil || !strings.Contains(err.Error(), "not trusted") || !strings.Contains(err.Error(), "chmod go-w "+path) {
		t.Fatalf("Open = %v, %v; want it refused as untrusted", c, err)
	}
}
