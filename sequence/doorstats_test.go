package sequence

import (
	"net/netip"
	"testing"
	"time"
)

// TestDoorStats: each door counts its own matches, wrong knocks, timeouts
// and evictions, and the counts survive a reload that drops the door.
func TestDoorStats(t *testing.T) {
	doors := []Door{door("a", "1/tcp,2/tcp,3/tcp", 5*time.Second), door("b", "7/tcp,8/tcp", 5*time.Second)}
	m, err := New(doors, Options{MaxSources: 2})
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for _, k := range []knock{
		{at: 0, src: a4, step: "1/tcp"},
		{at: 1 * time.Millisecond, src: a4, step: "2/tcp"},
		{at: 2 * time.Millisecond, src: a4, step: "3/tcp"}, // a matches
		{at: 3 * time.Millisecond, src: a4, step: "1/tcp"},
		{at: 4 * time.Millisecond, src: a4, step: "7/tcp"}, // a: wrong knock; b starts
		{at: 5 * time.Millisecond, src: b4, step: "7/tcp"},
		{at: 6 * time.Millisecond, src: a6, step: "1/tcp"}, // table full: evicts one
	} {
		evs = append(evs, k.event(t))
	}
	if got := feed(m, evs); len(got) != 1 || got[0] != "a "+a4 {
		t.Fatalf("matches %q, want a from %s", got, a4)
	}
	attempts, total := m.Attempts(7*time.Millisecond, 10)
	if total != 2 || len(attempts) != 2 {
		t.Fatalf("attempts %+v (%d in all), want 2", attempts, total)
	}
	for _, a := range attempts {
		if a.Step != 1 || a.Left <= 4*time.Second || a.Left > 5*time.Second {
			t.Errorf("attempt %+v: want step 1 of its door, about 5 s left", a)
		}
	}
	if short, total := m.Attempts(7*time.Millisecond, 1); len(short) != 1 || total != 2 || short[0] != attempts[0] {
		t.Errorf("limit 1: %+v, %d in all; want the first of %+v, of 2", short, total, attempts)
	}
	if attempts[0].Left >= attempts[1].Left {
		t.Errorf("attempts %+v: want the one closest to its timeout first", attempts)
	}
	m.Expire(time.Minute)
	if _, total := m.Attempts(time.Minute, 10); total != 0 {
		t.Errorf("%d attempts after every timeout, want none", total)
	}
	if err := m.Reconfigure(doors[1:]); err != nil {
		t.Fatal(err)
	}
	got, _ := m.DoorStats()
	want := map[string]DoorStats{
		"a": {Matches: 1, WrongKnocks: 1, Timeouts: 1},
		"b": {Timeouts: 1, Evictions: 1},
	}
	// Which attempt the full table evicts is the matcher's choice; the
	// totals are not.
	var ev, to uint64
	for name, s := range got {
		ev, to = ev+s.Evictions, to+s.Timeouts
		w := want[name]
		if s.Matches != w.Matches || s.WrongKnocks != w.WrongKnocks {
			t.Errorf("door %s: %+v, want matches and wrong knocks of %+v", name, s, w)
		}
	}
	st := m.Stats()
	if len(got) != 2 || ev != st.Evictions || to != st.Timeouts || ev != 1 || to != 2 {
		t.Errorf("per door %+v; totals %+v: want both doors, evictions and timeouts adding up to 1 and 2", got, st)
	}
}

// TestDoorStatsSealed: a block that decrypts under no key counts against
// the range; one made for another source against its door.
func TestDoorStatsSealed(t *testing.T) {
	m, _ := newSealedMatcher(t, []Door{sealedDoor("ssh", 0)}, Options{})
	other := netip.MustParseAddr(b4)
	var evs []Event
	evs = append(evs, knocksAt(srcA, 0, block{made: t0, tag: other}.ports())...)       // source
	evs = append(evs, knocksAt(srcB, 0, block{made: t0, tag: srcB, id: 9}.ports())...) // door
	evs = append(evs, knocksAt(srcA6, 0, block{made: t0, tag: srcA6}.ports())...)      // opens
	if got := feed(m, evs); len(got) != 1 {
		t.Fatalf("matches %q, want one", got)
	}
	doors, ranges := m.DoorStats()
	if d := doors["ssh"]; d.Matches != 1 || d.SealedRejects != (SealedRejects{Source: 1}) {
		t.Errorf("door ssh: %+v, want one match and one source rejection", d)
	}
	r, ok := ranges["40000-44095/tcp"]
	if !ok || r.SealedRejects != (SealedRejects{Door: 1}) {
		t.Errorf("ranges %+v: want 40000-44095/tcp with one door rejection", ranges)
	}
	if _, total := m.Attempts(time.Second, 10); total != 2 {
		t.Errorf("%d sealed attempts in progress, want the 2 rejected ones", total)
	}
}

// BenchmarkAttempts times the walk a status request or scrape makes the
// matcher's goroutine do, with a full table of 10⁵ sources on 3 doors.
func BenchmarkAttempts(b *testing.B) {
	const n = 100_000
	doors := []Door{ssh, door("web", "1000,2000,3000,4000", 10*time.Second), door("smtp", "9000/udp,25000", 5*time.Second)}
	m, err := New(doors, Options{MaxSources: n})
	if err != nil {
		b.Fatal(err)
	}
	ev := Event{Time: t0, Port: ssh.Sequence[0].Port, Proto: ssh.Sequence[0].Proto}
	for _, src := range benchSources(n) {
		ev.Src = src
		m.Handle(&ev, nil)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, total := m.Attempts(0, 100); total != n {
			b.Fatalf("%d attempts, want %d", total, n)
		}
	}
}
