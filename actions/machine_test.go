package actions

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"portknock/journal"
	"portknock/nftset"
	"portknock/sequence"
)

// The machine is driven here directly, with a clock that is only a
// variable: no goroutine, no synctest, each step's effects checked.

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// onlySet is a door opened by an nftables set alone, beside sshDoor.
var onlySet = Door{Name: "set", Set: set4, CmdTimeout: 10 * time.Second}

func newTestMachine(queueCap int, doors ...Door) *machine {
	m := newMachine(queueCap, false)
	m.setDoors(doors)
	return m
}

// msgs returns the messages of the effects' log lines.
func msgs(fx effects) []string {
	var out []string
	for _, l := range fx.logs {
		out = append(out, l.msg)
	}
	return out
}

// attr returns a log line's attribute by key, formatted.
func attr(l logLine, key string) string {
	for i := 0; i+1 < len(l.attrs); i += 2 {
		if l.attrs[i] == key {
			return fmt.Sprint(l.attrs[i+1])
		}
	}
	return ""
}

// runStarts pops every queued start and reports it run at now, as a
// worker would with every command succeeding and every set add taking.
func runStarts(m *machine, now time.Time) []*startJob {
	var jobs []*startJob
	for {
		j, ok := m.nextStart()
		if !ok {
			return jobs
		}
		jobs = append(jobs, j)
		m.started(j, true, j.set != (nftset.Ref{}), j.set != (nftset.Ref{}), now.Add(j.setTimeout))
		m.startDone()
	}
}

func TestMachineOpenThenClose(t *testing.T) {
	m := newTestMachine(16, sshDoor)
	m.openMatch(t0, knock("ssh", "192.0.2.1"))
	fx := m.take()
	if !fx.work || m.queued() != 1 || m.inflight != 1 {
		t.Fatalf("after open: work %v, queued %d, inflight %d; want a queued start", fx.work, m.queued(), m.inflight)
	}
	jobs := runStarts(m, t0)
	if len(jobs) != 1 || jobs[0].start.Shell != "open 192.0.2.1" || jobs[0].e.stop.Shell != "close 192.0.2.1" {
		t.Fatalf("jobs = %+v", jobs)
	}
	if fx := m.take(); !fx.schedule {
		t.Error("start ran, but the schedule was not woken")
	}
	due, next := m.takeDue(t0.Add(10*time.Second - time.Nanosecond))
	if len(due) != 0 || !next.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("before the deadline: due %d, next %v", len(due), next)
	}
	due, next = m.takeDue(t0.Add(10 * time.Second))
	if len(due) != 1 || !next.IsZero() || due[0].state != stateClosing {
		t.Fatalf("at the deadline: due %d, next %v", len(due), next)
	}
	m.stopDone(t0.Add(10*time.Second), due[0], true)
	if len(m.open) != 0 || m.inflight != 0 {
		t.Errorf("after the close: %d open, %d in flight", len(m.open), m.inflight)
	}
}

func TestMachineReknock(t *testing.T) {
	tests := []struct {
		policy Reknock
		// queued is the start queued by the re-knock at 4s, if any.
		queued string
		due    time.Duration
		msg    string
	}{
		{ReknockExtend, "", 14 * time.Second, "re-knock extends open"},
		{"", "", 14 * time.Second, "re-knock extends open"},
		{ReknockRerun, "open 192.0.2.1", 14 * time.Second, "re-knock runs the start command again"},
		{ReknockIgnore, "", 10 * time.Second, "re-knock ignored, door already open"},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			d := sshDoor
			d.Reknock = tt.policy
			m := newTestMachine(16, d)
			m.openMatch(t0, knock("ssh", "192.0.2.1"))
			runStarts(m, t0)
			m.take()
			at := t0.Add(4 * time.Second)
			m.openMatch(at, knock("ssh", "192.0.2.1"))
			fx := m.take()
			if !slices.Contains(msgs(fx), tt.msg) {
				t.Errorf("logs %q, want %q", msgs(fx), tt.msg)
			}
			jobs := runStarts(m, at)
			var got string
			if len(jobs) > 0 {
				got = jobs[0].start.Shell
			}
			if got != tt.queued || len(jobs) > 1 {
				t.Errorf("re-knock queued %q (%d jobs), want %q", got, len(jobs), tt.queued)
			}
			if _, next := m.takeDue(at); !next.Equal(t0.Add(tt.due)) {
				t.Errorf("close due at %v, want %v", next.Sub(t0), tt.due)
			}
		})
	}
}

func TestMachineQueue(t *testing.T) {
	tests := []struct {
		name           string
		cap, idle, n   int
		dropped        uint64
		growthLogLines int
	}{
		{"within the queue", 4, 0, 4, 0, 0},
		{"one beyond", 4, 0, 5, 1, 0},
		{"idle workers take theirs", 4, 2, 6, 0, 0},
		{"a burst of 10⁴ all queued, growth logged once within a second", 1 << 16, 0, 10_000, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMachine(tt.cap, Door{Name: "x", Start: Command{Shell: "true"}})
			m.idle = tt.idle
			var fx effects
			for i := range tt.n {
				src := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
				m.openMatch(t0.Add(time.Duration(i)*time.Microsecond), knock("x", src.String()))
				more := m.take()
				fx.logs = append(fx.logs, more.logs...)
			}
			if m.dropped != tt.dropped {
				t.Errorf("dropped %d, want %d", m.dropped, tt.dropped)
			}
			refused, growing := 0, 0
			for _, l := range fx.logs {
				switch l.msg {
				case "command queue full, open refused":
					refused++
				case "command queue growing; starts run as workers free up":
					growing++
				}
			}
			if uint64(refused) != tt.dropped || growing != tt.growthLogLines {
				t.Errorf("%d refusals and %d growth lines logged, want %d and %d", refused, growing, tt.dropped, tt.growthLogLines)
			}
			if got := len(runStarts(m, t0)); uint64(got) != uint64(tt.n)-tt.dropped {
				t.Errorf("%d starts ran, want %d", got, uint64(tt.n)-tt.dropped)
			}
			if tt.growthLogLines > 0 && !slices.Contains(msgs(m.take()), "command queue drained") {
				t.Error("the queue drained without saying so")
			}
		})
	}
}

// TestMachineQueueGrowthRateLimited: while a queue grows, its depth is
// logged at most once a second.
func TestMachineQueueGrowthRateLimited(t *testing.T) {
	m := newTestMachine(1<<16, Door{Name: "x", Start: Command{Shell: "true"}})
	var lines []logLine
	// 3000 knocks a second for 3 seconds, nothing run meanwhile.
	for i := range 9000 {
		src := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		m.openMatch(t0.Add(time.Duration(i)*time.Second/3000), knock("x", src.String()))
		for _, l := range m.take().logs {
			if strings.HasPrefix(l.msg, "command queue growing") {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) < 3 || len(lines) > 4 {
		t.Fatalf("%d growth lines in 3 seconds, want 3 or 4", len(lines))
	}
	if attr(lines[0], "queued") != fmt.Sprint(queueLogDepth) || attr(lines[len(lines)-1], "queued") == attr(lines[0], "queued") {
		t.Errorf("growth lines %v: want the depth from %d on, growing", lines, queueLogDepth)
	}
}

// TestMachineSetExpiryLogsClose: a door closed by the kernel's timeout
// alone is logged closed when the timeout ends, and a refresh moves that.
func TestMachineSetExpiryLogsClose(t *testing.T) {
	m := newTestMachine(16, onlySet)
	m.openMatch(t0, knock("set", "192.0.2.1"))
	runStarts(m, t0)
	m.take()
	if _, next := m.takeDue(t0); !next.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("next = %v, want the element's expiry at 10s", next.Sub(t0))
	}
	// A re-knock at 4s refreshes the element.
	m.openMatch(t0.Add(4*time.Second), knock("set", "192.0.2.1"))
	runStarts(m, t0.Add(4*time.Second))
	m.take()
	if _, next := m.takeDue(t0.Add(10 * time.Second)); !next.Equal(t0.Add(14 * time.Second)) {
		t.Fatalf("after refresh next = %v, want 14s", next.Sub(t0))
	}
	if logs := msgs(m.take()); slices.Contains(logs, "closed") {
		t.Fatalf("closed at 10s despite the refresh: %q", logs)
	}
	m.takeDue(t0.Add(14 * time.Second))
	fx := m.take()
	if len(fx.logs) != 1 || fx.logs[0].msg != "closed" || attr(fx.logs[0], "door") != "set" ||
		attr(fx.logs[0], "src") != "192.0.2.1" || attr(fx.logs[0], "set") != set4.String() {
		t.Fatalf("logs at 14s = %+v, want one closed line with door, src and set", fx.logs)
	}
	if len(m.elems) != 0 {
		t.Errorf("%d elements left after expiry", len(m.elems))
	}
	// Open again: a new open, not a re-knock.
	m.openMatch(t0.Add(20*time.Second), knock("set", "192.0.2.1"))
	if jobs := runStarts(m, t0.Add(20*time.Second)); len(jobs) != 1 || jobs[0].refresh {
		t.Errorf("open after expiry: %+v, want one fresh open", jobs)
	}
}

// TestMachineSetWithStopLogsOneClose: a door with a stop command and a set
// is closed by the stop command; the element's expiry logs nothing more.
func TestMachineSetWithStopLogsOneClose(t *testing.T) {
	d := sshDoor
	d.Set = set4
	m := newTestMachine(16, d)
	m.openMatch(t0, knock("ssh", "192.0.2.1"))
	runStarts(m, t0)
	m.take()
	due, _ := m.takeDue(t0.Add(10 * time.Second))
	if len(due) != 1 || slices.Contains(msgs(m.take()), "closed") {
		t.Fatalf("due %d; the machine logged a close of its own", len(due))
	}
}

// TestMachineFailedAddUnmarks: an element the kernel did not take leaves
// the door shut, so the next knock opens afresh.
func TestMachineFailedAddUnmarks(t *testing.T) {
	m := newTestMachine(16, onlySet)
	m.openMatch(t0, knock("set", "192.0.2.1"))
	if el := m.elems[openKey{"set", netip.MustParseAddr("192.0.2.1")}]; el == nil || el.added {
		t.Fatalf("element while opening = %+v, want marked, not added", el)
	}
	j, _ := m.nextStart()
	m.started(j, true, true, false, time.Time{})
	m.takeDue(t0.Add(time.Hour))
	if len(m.elems) != 0 || slices.Contains(msgs(m.take()), "closed") {
		t.Errorf("failed add left %d elements or logged a close", len(m.elems))
	}
}

func TestMachineStopRetries(t *testing.T) {
	m := newTestMachine(16, sshDoor)
	m.journaled = true
	m.openMatch(t0, knock("ssh", "192.0.2.1"))
	j, _ := m.nextStart()
	rec, need := m.recordFor(j)
	if !need || rec.Stop.Shell != "close 192.0.2.1" || !rec.Due.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("record %+v, need %v", rec, need)
	}
	if !m.recorded(t0, j, rec, 7, nil) {
		t.Fatal("recorded refused a recorded close")
	}
	m.started(j, true, false, false, time.Time{})
	m.startDone()
	now := t0.Add(10 * time.Second)
	e := m.open[openKey{"ssh", netip.MustParseAddr("192.0.2.1")}]
	for i, delay := range stopRetryDelays {
		due, _ := m.takeDue(now)
		if len(due) != 1 {
			t.Fatalf("try %d: %d due", i+1, len(due))
		}
		if !m.stopDone(now, due[0], false) {
			t.Fatalf("try %d: not retried", i+1)
		}
		if _, next := m.takeDue(now); !next.Equal(now.Add(delay)) {
			t.Fatalf("retry %d at %v, want %v later", i+1, next.Sub(now), delay)
		}
		now = now.Add(delay)
	}
	due, _ := m.takeDue(now)
	if m.stopDone(now, due[0], false) || m.givenUp != 1 || len(m.open) != 0 || e.stopFailures != 4 {
		t.Fatalf("after the last try: given up %d, %d open, %d failures", m.givenUp, len(m.open), e.stopFailures)
	}
	// Given up with a journal: the record stays for the next start.
	if ids, _ := m.takeJournal(); len(ids) != 0 {
		t.Errorf("given-up close marked done in the journal: %v", ids)
	}
}

func TestMachineRecordFailureRefuses(t *testing.T) {
	m := newTestMachine(16, sshDoor)
	m.journaled = true
	m.openMatch(t0, knock("ssh", "192.0.2.1"))
	j, _ := m.nextStart()
	rec, _ := m.recordFor(j)
	if m.recorded(t0, j, rec, 0, errors.New("disk full")) {
		t.Fatal("open allowed although its close was not recorded")
	}
	if len(m.open) != 0 {
		t.Errorf("%d open after a refused open", len(m.open))
	}
}

// TestMachineReopenWhileClosing: a knock during the close is parked on it,
// and queued only once the close has finished.
func TestMachineReopenWhileClosing(t *testing.T) {
	m := newTestMachine(16, sshDoor)
	m.openMatch(t0, knock("ssh", "192.0.2.1"))
	runStarts(m, t0)
	now := t0.Add(10 * time.Second)
	due, _ := m.takeDue(now)
	m.openMatch(now, knock("ssh", "192.0.2.1"))
	if m.queued() != 0 || m.inflight != 1 {
		t.Fatalf("while closing: %d queued, %d in flight; want the reopen parked", m.queued(), m.inflight)
	}
	m.stopDone(now.Add(time.Second), due[0], true)
	if m.queued() != 1 || m.inflight != 1 || len(m.open) != 1 {
		t.Fatalf("after the close: %d queued, %d in flight, %d open; want the reopen queued", m.queued(), m.inflight, len(m.open))
	}
}

func TestMachineShutdown(t *testing.T) {
	tests := []struct {
		name      string
		keepOpen  bool
		pending   int
		liveElems int
	}{
		{"close everything", false, 2, 1},
		{"keep journaled closes and elements", true, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMachine(16, sshDoor, onlySet)
			m.journaled = true
			// One journaled open, one restored unjournaled... and one
			// start still queued, which must not run.
			m.openMatch(t0, knock("ssh", "192.0.2.1"))
			j, _ := m.nextStart()
			rec, _ := m.recordFor(j)
			m.recorded(t0, j, rec, 1, nil)
			m.started(j, true, false, false, time.Time{})
			m.startDone()
			m.restore(t0, []journal.Record{{Door: "ssh", Src: netip.MustParseAddr("192.0.2.2"), Due: t0.Add(time.Second), Stop: Command{Shell: "close 192.0.2.2"}}})
			m.open[openKey{"ssh", netip.MustParseAddr("192.0.2.2")}].jid = 0
			m.openMatch(t0, knock("set", "192.0.2.3"))
			runStarts(m, t0)
			m.openMatch(t0, knock("ssh", "192.0.2.4"))

			pending, live := m.shutdown(t0.Add(time.Second/2), tt.keepOpen)
			if len(pending) != tt.pending || len(live) != tt.liveElems {
				t.Errorf("%d closes and %d elements at exit, want %d and %d", len(pending), len(live), tt.pending, tt.liveElems)
			}
			if m.queued() != 0 || m.inflight != 0 {
				t.Errorf("queued start not dropped: %d queued, %d in flight", m.queued(), m.inflight)
			}
			m.openMatch(t0, knock("ssh", "192.0.2.5"))
			if !slices.Contains(msgs(m.take()), "runner stopped, match ignored") {
				t.Error("open after shutdown not refused")
			}
		})
	}
}

// BenchmarkMachineOpen is the cost of one open of a door with a timed
// close, from match to the close in the schedule, without its commands.
func BenchmarkMachineOpen(b *testing.B) {
	m := newTestMachine(1<<16, sshDoor)
	matches := make([]sequence.Match, 4096)
	for i := range matches {
		matches[i] = knock("ssh", netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}).String())
	}
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.openMatch(now, matches[i%len(matches)])
		runStarts(m, now)
		m.take()
		if i%len(matches) == len(matches)-1 {
			// Close them all, so the next round opens afresh.
			now = now.Add(time.Minute)
			due, _ := m.takeDue(now)
			for _, e := range due {
				m.stopDone(now, e, true)
			}
		}
	}
}
