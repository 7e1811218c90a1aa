package actions

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"portknock/internal/logtest"
	"portknock/journal"
)

// TestRunnerRerunOfRefusedOpen: a rerun re-knock while the first open
// waits for a worker must not run a start whose close the journal refused.
func TestRunnerRerunOfRefusedOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := sshDoor
		d.Reknock = ReknockRerun
		h, _ := startJournaled(t, []Door{d}, Options{}, func(j *memJournal) { j.failAdd = errors.New("no space left on device") })
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(time.Minute)
		h.shutdown()
		h.wantCalls() // refused, so nothing ran at all
	})
}

// TestRunnerRerunWaitsBehindBusyWorkers: a rerun start stuck in the queue
// past the close's time must still be followed by the close.
func TestRunnerRerunWaitsBehindBusyWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := sshDoor
		d.Reknock = ReknockRerun
		hang := Door{Name: "hang", Start: Command{Shell: "hang %IP%"}}
		h := startHarness(t, []Door{d, hang}, Options{MaxConcurrent: 1})
		h.fake.setSlow("hang 192.0.2.9", 25*time.Second)
		h.r.Open(knock("ssh", "192.0.2.1")) // open at 0, close due at 10s
		h.sleepTo(time.Second)
		h.r.Open(knock("hang", "192.0.2.9")) // the only worker, 1s to 26s
		h.sleepTo(2 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1")) // rerun: waits until 26s
		h.sleepTo(time.Minute)
		// The close comes 10s after the rerun was asked for, and after
		// the rerun's start: never before it.
		h.wantCalls(call{0, "open 192.0.2.1"}, call{time.Second, "hang 192.0.2.9"},
			call{26 * time.Second, "open 192.0.2.1"}, call{26 * time.Second, "close 192.0.2.1"})
		if s := h.r.Stats(); s.PendingCloses != 0 {
			t.Errorf("%d closes pending", s.PendingCloses)
		}
		h.shutdown()
	})
}

// TestRunnerSetFailureDoesNotRerunStart: a start that succeeded while its
// set add failed is not run again by a re-knock; the re-knock adds the set.
func TestRunnerSetFailureDoesNotRerunStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := sshDoor
		d.Set = set4
		sets := &fakeSets{failAdd: errors.New("set full")}
		h := startHarness(t, []Door{d}, Options{Sets: sets})
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(2 * time.Second)
		sets.mu.Lock()
		sets.failAdd = nil
		sets.mu.Unlock()
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(time.Minute)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{12 * time.Second, "close 192.0.2.1"})
		sets.want(t, call{2 * time.Second, "add inet fw knock4 192.0.2.1 10s"})
		h.shutdown()
	})
}

// TestRunnerStartFailureSkipsSet: when the start command fails, the set
// half of the open is not done either.
func TestRunnerStartFailureSkipsSet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := Door{Name: "ssh", Start: Command{Shell: "open %IP%"}, Set: set4, CmdTimeout: 10 * time.Second}
		h, sets := startWithSets(t, []Door{d}, Options{})
		h.fake.setFail("open 192.0.2.1")
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		sets.want(t)
		h.shutdown()
	})
}

// TestRunnerGiveUpKeepsJournalRecord: a close given up (here at shutdown)
// stays in the journal, so the next start tries it again.
func TestRunnerGiveUpKeepsJournalRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, j := startJournaled(t, []Door{sshDoor}, Options{}, nil)
		h.fake.setFail("close 192.0.2.1")
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(time.Second)
		h.shutdown()
		pending, done, _, _ := j.snapshot()
		if len(pending) != 1 || len(done) != 0 {
			t.Errorf("journal after a failed close: pending %+v, done %v; want the close kept", pending, done)
		}
		l := h.logs.Find("giving up on stop command; door may still be open")
		if len(l) != 1 || l[0].Attrs["then"] != "the next start tries again" {
			t.Errorf("give-up lines %+v", l)
		}
	})
}

// blockingJournal holds its lock across Add until released, as a journal
// does across a slow fsync.
type blockingJournal struct {
	*memJournal
	lock    chan struct{}
	release chan struct{}
}

func (b *blockingJournal) Add(r journal.Record) (uint64, error) {
	b.lock <- struct{}{}
	defer func() { <-b.lock }()
	if r.Src.String() == "192.0.2.2" {
		<-b.release
	}
	return b.memJournal.Add(r)
}

func (b *blockingJournal) Extend(id uint64, due time.Time) error {
	b.lock <- struct{}{}
	defer func() { <-b.lock }()
	return b.memJournal.Extend(id, due)
}

// TestRunnerOpenNeverWaitsForJournal: while one open's journal write is
// stuck, neither a re-knock (which extends in the journal) nor another
// knock waits for it: the matcher calls Open, and must never stall on a
// slow disk. The extension is written once the journal is free.
func TestRunnerOpenNeverWaitsForJournal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeExec{}
		bj := &blockingJournal{memJournal: newMemJournal(fake), lock: make(chan struct{}, 1), release: make(chan struct{})}
		logs := logtest.New()
		r := NewRunner([]Door{sshDoor}, Options{Journal: bj, Logger: logs.Logger()})
		r.exec = fake.exec
		h := runHarness(t, r, fake, logs)
		r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		r.Open(knock("ssh", "192.0.2.2")) // its Add blocks
		synctest.Wait()
		// The re-knock's extension waits for the journal's lock; the
		// re-knock itself, and an unrelated knock after it, must not.
		for _, src := range []string{"192.0.2.1", "192.0.2.3"} {
			done := make(chan struct{})
			go func() { r.Open(knock("ssh", src)); close(done) }()
			synctest.Wait()
			select {
			case <-done:
			default:
				t.Errorf("Open for %s waited for the journal", src)
			}
		}
		close(bj.release)
		synctest.Wait()
		if _, _, extends, _ := bj.snapshot(); !slices.Equal(extends, []time.Duration{10 * time.Second}) {
			t.Errorf("journal extensions %v, want the re-knock's [10s]", extends)
		}
		h.sleepTo(time.Second)
		got := h.fake.got()
		var opens []string
		for _, c := range got {
			if strings.HasPrefix(c.cmd, "open") {
				opens = append(opens, c.cmd)
			}
		}
		slices.Sort(opens)
		if !slices.Equal(opens, []string{"open 192.0.2.1", "open 192.0.2.2", "open 192.0.2.3"}) {
			t.Errorf("opens %v", opens)
		}
		h.shutdown()
	})
}
