package actions

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"portknock/internal/logtest"
	"portknock/journal"
)

// memJournal is a Journal in memory that remembers what it was told and
// how many commands had run when each open was recorded.
type memJournal struct {
	mu      sync.Mutex
	fake    *fakeExec
	nextID  uint64
	pending map[uint64]journal.Record
	// callsAtAdd is len(fake.calls) when each Add came.
	callsAtAdd []int
	extends    []time.Duration // new due times, since epoch
	done       []uint64
	syncs      int
	failAdd    error
}

func newMemJournal(fake *fakeExec) *memJournal {
	return &memJournal{fake: fake, nextID: 1, pending: map[uint64]journal.Record{}}
}

func (j *memJournal) Add(r journal.Record) (uint64, error) {
	n := len(j.fake.got())
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failAdd != nil {
		return 0, j.failAdd
	}
	j.callsAtAdd = append(j.callsAtAdd, n)
	r.ID = j.nextID
	j.nextID++
	j.pending[r.ID] = r
	return r.ID, nil
}

func (j *memJournal) Extend(id uint64, due time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.extends = append(j.extends, due.Sub(epoch))
	r := j.pending[id]
	r.Due = due
	j.pending[id] = r
	return nil
}

func (j *memJournal) Done(id uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.done = append(j.done, id)
	delete(j.pending, id)
	return nil
}

func (j *memJournal) Sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.syncs++
	return nil
}

func (j *memJournal) snapshot() (pending []journal.Record, done []uint64, extends []time.Duration, callsAtAdd []int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range j.pending {
		pending = append(pending, r)
	}
	return pending, slices.Clone(j.done), slices.Clone(j.extends), slices.Clone(j.callsAtAdd)
}

// startJournaled starts a harness whose Runner writes to a memJournal.
func startJournaled(t *testing.T, doors []Door, opts Options, setup func(*memJournal)) (*harness, *memJournal) {
	fake := &fakeExec{}
	j := newMemJournal(fake)
	if setup != nil {
		setup(j)
	}
	opts.Journal = j
	logs := logtest.New()
	opts.Logger = logs.Logger()
	r := NewRunner(doors, opts)
	r.exec = fake.exec
	return runHarness(t, r, fake, logs), j
}

// startRestored starts a harness whose Runner has restored recs from a
// memJournal that holds them.
func startRestored(t *testing.T, doors []Door, opts Options, recs ...journal.Record) (*harness, *memJournal) {
	fake := &fakeExec{}
	j := newMemJournal(fake)
	for _, r := range recs {
		j.pending[r.ID] = r
	}
	opts.Journal = j
	logs := logtest.New()
	opts.Logger = logs.Logger()
	r := NewRunner(doors, opts)
	r.exec = fake.exec
	r.Restore(recs)
	return runHarness(t, r, fake, logs), j
}

// runHarness starts Run on a Runner built by the test.
func runHarness(t *testing.T, r *Runner, fake *fakeExec, logs *logtest.Capture) *harness {
	ctx, stop := context.WithCancel(t.Context())
	h := &harness{t: t, r: r, fake: fake, logs: logs, done: make(chan error, 1), stop: stop}
	go func() { h.done <- r.Run(ctx) }()
	return h
}

func TestRunnerJournalsBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, j := startJournaled(t, []Door{sshDoor}, Options{}, nil)
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		pending, _, _, callsAtAdd := j.snapshot()
		if !slices.Equal(callsAtAdd, []int{0}) {
			t.Fatalf("journal Add came after %v commands, want one Add before any command", callsAtAdd)
		}
		if len(pending) != 1 || pending[0].Door != "ssh" || pending[0].Src != netip.MustParseAddr("192.0.2.1") ||
			pending[0].Stop.Shell != "close 192.0.2.1" || pending[0].Due.Sub(epoch) != 10*time.Second {
			t.Fatalf("journal holds %+v, want the substituted close due at 10s", pending)
		}
		h.sleepTo(10 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{10 * time.Second, "close 192.0.2.1"})
		pending, done, _, _ := j.snapshot()
		if len(pending) != 0 || !slices.Equal(done, []uint64{1}) {
			t.Errorf("after the close: pending %+v, done %v", pending, done)
		}
		if j.syncs == 0 {
			t.Error("Done was never synced")
		}
		h.shutdown()
	})
}

func TestRunnerRefusesUnjournaledOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		full := errors.New("journal /x/closes.journal: write: no space left on device")
		h, _ := startJournaled(t, []Door{sshDoor}, Options{}, func(j *memJournal) { j.failAdd = full })
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(time.Minute)
		h.wantCalls()
		refused := h.logs.Find("open refused: its close could not be recorded in state_dir")
		if len(refused) != 1 || refused[0].Attrs["src"] != "192.0.2.1" || refused[0].Attrs["door"] != "ssh" ||
			refused[0].Attrs["err"] != full.Error() || refused[0].Level != slog.LevelError {
			t.Errorf("refusal log = %+v", refused)
		}
		if s := h.r.Stats(); s.Refused != 1 || s.PendingCloses != 0 {
			t.Errorf("stats %+v, want Refused 1 and nothing pending", s)
		}
		// A door without a timed close needs no journal and still opens.
		h.r.SetDoors([]Door{{Name: "bell", Start: Command{Shell: "ring %IP%"}}})
		h.r.Open(knock("bell", "192.0.2.1"))
		synctest.Wait()
		h.wantCalls(call{time.Minute, "ring 192.0.2.1"})
		h.shutdown()
	})
}

func TestRunnerRestore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		recs := []journal.Record{
			{ID: 7, Door: "ssh", Src: netip.MustParseAddr("192.0.2.1"), Due: epoch.Add(-time.Hour), Stop: Command{Shell: "close 192.0.2.1"}},
			{ID: 8, Door: "gone", Src: netip.MustParseAddr("2001:db8::2"), Due: epoch.Add(5 * time.Second), Stop: Command{Argv: []string{"close6", "2001:db8::2"}}},
		}
		h, j := startRestored(t, []Door{sshDoor}, Options{}, recs...)

		synctest.Wait()
		// The overdue close runs at once; the door that no longer exists
		// closes with the command it was opened with.
		h.wantCalls(call{0, "close 192.0.2.1"})
		// A knock for a door that no longer exists opens nothing.
		h.sleepTo(2 * time.Second)
		h.r.Open(knock("gone", "2001:db8::2"))
		synctest.Wait()
		if len(h.logs.Find("match for unknown door ignored")) != 1 {
			t.Errorf("knock for a removed door: %s", h.logs.Dump())
		}
		h.sleepTo(5 * time.Second)
		h.wantCalls(call{0, "close 192.0.2.1"}, call{5 * time.Second, "close6 2001:db8::2"})
		_, done, _, _ := j.snapshot()
		slices.Sort(done)
		if !slices.Equal(done, []uint64{7, 8}) {
			t.Errorf("done %v, want 7 and 8", done)
		}
		restored := h.logs.Find("pending close restored from journal")
		if len(restored) != 2 || restored[0].Attrs["overdue"] != "true" || restored[1].Attrs["overdue"] != "false" {
			t.Errorf("restore log %+v", restored)
		}
		h.shutdown()
	})
}

func TestRunnerRestoredOpenExtends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := journal.Record{ID: 3, Door: "ssh", Src: netip.MustParseAddr("192.0.2.1"), Due: epoch.Add(5 * time.Second), Stop: Command{Shell: "close 192.0.2.1"}}
		h, j := startRestored(t, []Door{sshDoor}, Options{}, rec)
		h.sleepTo(2 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(12*time.Second - time.Nanosecond)
		h.wantCalls()
		h.sleepTo(12 * time.Second)
		h.wantCalls(call{12 * time.Second, "close 192.0.2.1"})
		_, _, extends, _ := j.snapshot()
		if !slices.Equal(extends, []time.Duration{12 * time.Second}) {
			t.Errorf("journal extensions %v, want [12s]", extends)
		}
		h.shutdown()
	})
}

func TestRunnerKeepOpenOnExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, j := startJournaled(t, []Door{sshDoor}, Options{KeepOpenOnExit: true}, nil)
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		h.shutdown()
		h.wantCalls(call{0, "open 192.0.2.1"})
		pending, done, _, _ := j.snapshot()
		if len(pending) != 1 || len(done) != 0 {
			t.Errorf("journal after exit: pending %+v, done %v; want the close kept", pending, done)
		}
		if len(h.logs.Find("door left open at exit, closed by the next start")) != 1 {
			t.Errorf("no log line for the door left open:\n%s", h.logs.Dump())
		}
	})
}

func TestRunnerReknockPolicies(t *testing.T) {
	for _, c := range []struct {
		policy Reknock
		want   []call
	}{
		{ReknockExtend, []call{{0, "open 192.0.2.1"}, {14 * time.Second, "close 192.0.2.1"}}},
		{ReknockRerun, []call{{0, "open 192.0.2.1"}, {4 * time.Second, "open 192.0.2.1"}, {14 * time.Second, "close 192.0.2.1"}}},
		{ReknockIgnore, []call{{0, "open 192.0.2.1"}, {10 * time.Second, "close 192.0.2.1"}}},
	} {
		t.Run(string(c.policy), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := sshDoor
				d.Reknock = c.policy
				h := startHarness(t, []Door{d}, Options{})
				h.r.Open(knock("ssh", "192.0.2.1"))
				h.sleepTo(4 * time.Second)
				h.r.Open(knock("ssh", "192.0.2.1"))
				h.sleepTo(20 * time.Second)
				h.wantCalls(c.want...)
				if s := h.r.Stats(); s.PendingCloses != 0 {
					t.Errorf("pending closes %d after the close", s.PendingCloses)
				}
				h.shutdown()
			})
		})
	}
}

// TestRunnerJournalFile runs a Runner on a real journal and reads the file
// back as the next start would.
func TestRunnerJournalFile(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		jl, err := journal.Open(dir, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if recs := jl.Restored(); len(recs) != 0 {
			t.Fatalf("Open restored %v from a new journal", recs)
		}
		defer jl.Close()
		h := startHarness(t, []Door{sshDoor}, Options{Journal: jl, KeepOpenOnExit: true})
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.r.Open(knock("ssh", "192.0.2.2"))
		h.sleepTo(3 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		h.shutdown()
	})
	jl, err := journal.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer jl.Close()
	recs := jl.Restored()
	got := map[string]time.Duration{}
	for _, r := range recs {
		got[r.Src.String()+" "+r.Stop.Shell] = r.Due.Sub(epoch)
	}
	want := map[string]time.Duration{"192.0.2.1 close 192.0.2.1": 13 * time.Second, "192.0.2.2 close 192.0.2.2": 10 * time.Second}
	if len(got) != len(want) || got["192.0.2.1 close 192.0.2.1"] != want["192.0.2.1 close 192.0.2.1"] || got["192.0.2.2 close 192.0.2.2"] != want["192.0.2.2 close 192.0.2.2"] {
		t.Errorf("journal after exit: %v, want %v", got, want)
	}
}

// TestRunnerRestoredRerunThenShutdown: a restored door re-knocked with
// reknock = "rerun", whose start is still queued behind a busy worker at
// shutdown, was opened by the earlier run: its close must still run.
func TestRunnerRestoredRerunThenShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := sshDoor
		d.Reknock = ReknockRerun
		hang := Door{Name: "hang", Start: Command{Shell: "hang %IP%"}}
		rec := journal.Record{ID: 3, Door: "ssh", Src: netip.MustParseAddr("192.0.2.1"), Due: epoch.Add(50 * time.Second), Stop: Command{Shell: "close 192.0.2.1"}}
		h, j := startRestored(t, []Door{d, hang}, Options{MaxConcurrent: 1}, rec)
		h.fake.setSlow("hang 192.0.2.9", 25*time.Second)
		h.r.Open(knock("hang", "192.0.2.9"))
		synctest.Wait()
		h.r.Open(knock("ssh", "192.0.2.1")) // rerun, queued behind hang
		h.sleepTo(2 * time.Second)
		h.shutdown()
		h.wantCalls(call{0, "hang 192.0.2.9"}, call{2 * time.Second, "close 192.0.2.1"})
		if pending, done, _, _ := j.snapshot(); len(pending) != 0 || !slices.Equal(done, []uint64{3}) {
			t.Errorf("journal: pending %v, done %v; want record 3 done", pending, done)
		}
	})
}

// TestRunnerRestoreDuplicates: two records for one pair (a close given up
// and then a reopen, or a crash between a reopen's record and the end of
// the close before it) both close, since each may undo a start of its
// own. Once the earlier has closed, a knock runs the start again rather
// than only extending an open that close may have undone.
func TestRunnerRestoreDuplicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := netip.MustParseAddr("192.0.2.1")
		stop := Command{Shell: "close 192.0.2.1"}
		recs := []journal.Record{
			{ID: 4, Door: "ssh", Src: src, Due: epoch.Add(3 * time.Second), Stop: stop},
			{ID: 5, Door: "ssh", Src: src, Due: epoch.Add(8 * time.Second), Stop: stop},
		}
		h, j := startRestored(t, []Door{sshDoor}, Options{}, recs...)
		h.sleepTo(5 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(30 * time.Second)
		h.wantCalls(call{3 * time.Second, "close 192.0.2.1"}, call{5 * time.Second, "open 192.0.2.1"}, call{15 * time.Second, "close 192.0.2.1"})
		_, done, extends, _ := j.snapshot()
		slices.Sort(done)
		if !slices.Equal(done, []uint64{4, 5}) || !slices.Equal(extends, []time.Duration{15 * time.Second}) {
			t.Errorf("journal: done %v, extends %v; want 4 and 5 done, the reopen's close moved to 15s", done, extends)
		}
		h.shutdown()
	})
}

// TestRunnerRestoreClockBehind: a record due far beyond its door's
// cmd_timeout means the clock now reads earlier than when it was written
// (no RTC at boot, a step back): the close runs within cmd_timeout, not
// when the clock catches up. Records without For keep their due time.
func TestRunnerRestoreClockBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		recs := []journal.Record{
			{ID: 1, Door: "ssh", Src: netip.MustParseAddr("192.0.2.1"), Due: epoch.Add(24 * time.Hour), For: 10 * time.Second, Stop: Command{Shell: "close 192.0.2.1"}},
			{ID: 2, Door: "ssh", Src: netip.MustParseAddr("192.0.2.2"), Due: epoch.Add(7 * time.Second), For: 10 * time.Second, Stop: Command{Shell: "close 192.0.2.2"}},
			{ID: 3, Door: "ssh", Src: netip.MustParseAddr("192.0.2.3"), Due: epoch.Add(time.Minute), Stop: Command{Shell: "close 192.0.2.3"}},
		}
		h, j := startRestored(t, []Door{sshDoor}, Options{}, recs...)
		h.sleepTo(2 * time.Minute)
		h.wantCalls(call{7 * time.Second, "close 192.0.2.2"}, call{10 * time.Second, "close 192.0.2.1"}, call{time.Minute, "close 192.0.2.3"})
		if pending, _, _, _ := j.snapshot(); len(pending) != 0 {
			t.Errorf("journal still holds %+v after every close ran", pending)
		}
		if w := h.logs.Find("pending close due later than its door stays open; the clock was behind; closing within cmd_timeout"); len(w) != 1 || w[0].Attrs["src"] != "192.0.2.1" {
			t.Errorf("clock warning %+v", w)
		}
		h.shutdown()
	})
}
