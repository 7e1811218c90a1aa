package sequence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// knock describes one event in a table case.
type knock struct {
	at    time.Duration
	src   string
	step  string
	flags string // "" unknown; "none" known and empty; else "syn,ack"
	dst   string
}

func (k knock) event(t testing.TB) Event {
	t.Helper()
	st, err := ParseStep(k.step)
	if err != nil {
		t.Fatal(err)
	}
	ev := Event{Src: netip.MustParseAddr(k.src), Port: st.Port, Proto: st.Proto, Time: t0.Add(k.at), Mono: k.at, Input: "test"}
	if k.dst != "" {
		ev.Dst = netip.MustParseAddr(k.dst)
	}
	switch k.flags {
	case "":
	case "none":
		ev.FlagsKnown = true
	default:
		f, err := ParseFlagFilter(k.flags)
		if err != nil {
			t.Fatal(err)
		}
		ev.Flags, ev.FlagsKnown = f.Set, true
	}
	return ev
}

func door(name, seq string, timeout time.Duration) Door {
	steps, err := ParseSteps(seq)
	if err != nil {
		panic(err)
	}
	return Door{Name: name, Sequence: steps, Timeout: timeout}
}

func withFlags(d Door, flags string) Door {
	f, err := ParseFlagFilter(flags)
	if err != nil {
		panic(err)
	}
	d.Flags = f
	return d
}

func withTarget(d Door, target string) Door {
	d.Target = netip.MustParseAddr(target)
	return d
}

const (
	a4 = "192.0.2.10"
	b4 = "198.51.100.7"
	a6 = "2001:db8::10"
)

func seq(src string, at time.Duration, steps ...string) []knock {
	var ks []knock
	for i, s := range steps {
		ks = append(ks, knock{at: at + time.Duration(i)*100*time.Millisecond, src: src, step: s})
	}
	return ks
}

func cat(parts ...[]knock) []knock { return slices.Concat(parts...) }

var ssh = door("ssh", "7000,8000,9000:udp", 5*time.Second)

var matcherCases = []struct {
	name    string
	doors   []Door
	knocks  []knock
	want    []string // "door src" per match, in order
	wrong   uint64
	timeout uint64
}{
	{
		name:   "rule 4: a whole sequence matches",
		doors:  []Door{ssh},
		knocks: seq(a4, 0, "7000", "8000", "9000/udp"),
		want:   []string{"ssh " + a4},
	},
	{
		name:   "IPv6 source matches like IPv4",
		doors:  []Door{ssh},
		knocks: seq(a6, 0, "7000", "8000", "9000/udp"),
		want:   []string{"ssh " + a6},
	},
	{
		name:   "protocol is part of the step",
		doors:  []Door{ssh},
		knocks: seq(a4, 0, "7000", "8000", "9000/tcp"),
	},
	{
		name:   "single-knock door",
		doors:  []Door{door("one", "4444/udp", time.Second)},
		knocks: seq(a4, 0, "4444/udp"),
		want:   []string{"one " + a4},
	},
	{
		name:  "sources are independent",
		doors: []Door{ssh},
		knocks: []knock{
			{0, a4, "7000", "", ""}, {1, a6, "7000", "", ""},
			{2, a4, "8000", "", ""}, {3, a6, "8000", "", ""},
			{4, a6, "9000/udp", "", ""}, {5, a4, "9000/udp", "", ""},
		},
		want: []string{"ssh " + a6, "ssh " + a4},
	},
	{
		name:   "IPv4-mapped IPv6 source is the same host",
		doors:  []Door{ssh},
		knocks: cat(seq(a4, 0, "7000", "8000"), seq("::ffff:"+a4, time.Second, "9000/udp")),
		want:   []string{"ssh " + a4},
	},
	{
		name:   "rule 1: knocks to another target are not seen, so they do not reset",
		doors:  []Door{withTarget(ssh, "203.0.113.1")},
		knocks: []knock{{0, a4, "7000", "", "203.0.113.1"}, {1, a4, "9000/udp", "", "203.0.113.2"}, {2, a4, "8000", "", "203.0.113.1"}, {3, a4, "9000/udp", "", "203.0.113.1"}},
		want:   []string{"ssh " + a4},
	},
	{
		name:   "rule 1: a sequence sent to another target does not match",
		doors:  []Door{withTarget(ssh, "203.0.113.1")},
		knocks: []knock{{0, a4, "7000", "", "203.0.113.2"}, {1, a4, "8000", "", "203.0.113.2"}, {2, a4, "9000/udp", "", "203.0.113.2"}},
	},
	{
		name:   "rule 1: an unknown destination reaches a targeted door",
		doors:  []Door{withTarget(ssh, "203.0.113.1")},
		knocks: seq(a4, 0, "7000", "8000", "9000/udp"),
		want:   []string{"ssh " + a4},
	},
	{
		name:  "rule 2: TCP knocks failing tcpflags are ignored, not wrong",
		doors: []Door{withFlags(door("web", "1000,2000,3000", 5*time.Second), "syn,!ack")},
		knocks: []knock{
			{0, a4, "1000", "syn", ""}, {1, a4, "3000", "syn,ack", ""}, {2, a4, "2000", "syn", ""},
			{3, a4, "1000", "ack", ""}, {4, a4, "3000", "syn", ""},
		},
		want: []string{"web " + a4},
	},
	{
		name:   "rule 2: a first knock failing tcpflags does not start",
		doors:  []Door{withFlags(door("web", "1000,2000", 5*time.Second), "syn")},
		knocks: []knock{{0, a4, "1000", "none", ""}, {1, a4, "2000", "syn", ""}},
	},
	{
		name:   "rule 2: unknown flags satisfy any tcpflags",
		doors:  []Door{withFlags(door("web", "1000,2000", 5*time.Second), "syn,!ack")},
		knocks: seq(a4, 0, "1000", "2000"),
		want:   []string{"web " + a4},
	},
	{
		name:   "rule 2: tcpflags do not apply to UDP",
		doors:  []Door{withFlags(door("mix", "1000/udp,2000", 5*time.Second), "fin")},
		knocks: []knock{{0, a4, "1000/udp", "none", ""}, {1, a4, "2000", "fin", ""}},
		want:   []string{"mix " + a4},
	},
	{
		name:    "rule 3: timeout is measured from the first knock",
		doors:   []Door{ssh},
		knocks:  []knock{{0, a4, "7000", "", ""}, {4 * time.Second, a4, "8000", "", ""}, {5*time.Second + 1, a4, "9000/udp", "", ""}},
		timeout: 1,
	},
	{
		name:   "rule 3: a knock exactly at the timeout still counts",
		doors:  []Door{ssh},
		knocks: []knock{{0, a4, "7000", "", ""}, {4 * time.Second, a4, "8000", "", ""}, {5 * time.Second, a4, "9000/udp", "", ""}},
		want:   []string{"ssh " + a4},
	},
	{
		name:    "rule 3: after a timeout the first knock starts again",
		doors:   []Door{ssh},
		knocks:  cat(seq(a4, 0, "7000", "8000"), seq(a4, 6*time.Second, "7000", "8000", "9000/udp")),
		want:    []string{"ssh " + a4},
		timeout: 1,
	},
	{
		name:   "rule 5: retransmitted knocks do not break the sequence",
		doors:  []Door{ssh},
		knocks: seq(a4, 0, "7000", "7000", "8000", "7000", "8000", "8000", "9000/udp"),
		want:   []string{"ssh " + a4},
	},
	{
		name:   "rule 5: restarting the sequence mid-way still completes",
		doors:  []Door{ssh},
		knocks: seq(a4, 0, "7000", "8000", "7000", "8000", "9000/udp"),
		want:   []string{"ssh " + a4},
	},
	{
		name:   "rule 4 before rule 5: a sequence that repeats a port",
		doors:  []Door{door("rep", "1000,1000,2000,1000", 5*time.Second)},
		knocks: seq(a4, 0, "1000", "1000", "2000", "1000"),
		want:   []string{"rep " + a4},
	},
	{
		name:   "rule 6: a wrong knock resets",
		doors:  []Door{ssh},
		knocks: seq(a4, 0, "7000", "9000/udp", "8000", "9000/udp"),
		wrong:  1,
	},
	{
		name:   "rule 6: after a wrong knock the sequence can start again at once",
		doors:  []Door{ssh},
		knocks: seq(a4, 0, "7000", "9000/udp", "7000", "8000", "9000/udp"),
		want:   []string{"ssh " + a4},
		wrong:  1,
	},
	{
		name:   "noise outside the knock space never disturbs a knock",
		doors:  []Door{ssh},
		knocks: seq(a4, 0, "7000", "22", "443", "8000", "9000/tcp", "53/udp", "8000/udp", "9000/udp"),
		want:   []string{"ssh " + a4},
	},
	{
		name:   "doors are independent: B starts while A is in progress",
		doors:  []Door{door("a", "1000,2000", 5*time.Second), door("b", "3000,4000", 5*time.Second)},
		knocks: seq(a4, 0, "1000", "3000", "4000", "1000", "2000"),
		want:   []string{"b " + a4, "a " + a4},
		wrong:  1, // 3000 breaks a's attempt
	},
	{
		name:   "doors sharing a prefix: the one completed matches",
		doors:  []Door{door("a", "1000,2000,3000", 5*time.Second), door("b", "1000,2000,4000", 5*time.Second)},
		knocks: seq(a4, 0, "1000", "2000", "4000"),
		want:   []string{"b " + a4},
		wrong:  1,
	},
	{
		// knockd(1): openSSH 7000,8000,9000 and closeSSH 9000,8000,7000,
		// both with tcpflags = syn.
		name: "knockd man page: open then close",
		doors: []Door{
			withFlags(door("openSSH", "7000,8000,9000", 5*time.Second), "syn"),
			withFlags(door("closeSSH", "9000,8000,7000", 5*time.Second), "syn"),
		},
		knocks: []knock{
			{0, a4, "7000", "syn", ""}, {1, a4, "8000", "syn", ""}, {2, a4, "9000", "syn", ""},
			{time.Minute, a4, "9000", "syn", ""}, {time.Minute + 1, a4, "8000", "syn", ""}, {time.Minute + 2, a4, "7000", "syn", ""},
		},
		want: []string{"openSSH " + a4, "closeSSH " + a4},
		// The first 9000 also started closeSSH, which timed out unseen.
		timeout: 1,
	},
	{
		name:  "knockd man page: openHTTPS needs all three within seq_timeout",
		doors: []Door{withFlags(door("openHTTPS", "12345,54321,24680", 5*time.Second), "syn")},
		knocks: []knock{
			{0, a4, "12345", "syn", ""}, {time.Second, a4, "54321", "syn", ""}, {2 * time.Second, a4, "24680", "syn", ""},
			{10 * time.Second, b4, "12345", "syn", ""}, {13 * time.Second, b4, "54321", "syn", ""}, {16 * time.Second, b4, "24680", "syn", ""},
		},
		want:    []string{"openHTTPS " + a4},
		timeout: 1,
	},
}

func runKnocks(t *testing.T, m *Matcher, knocks []knock) []string {
	t.Helper()
	var got []string
	var out []Match
	for _, k := range knocks {
		ev := k.event(t)
		out = m.Handle(&ev, out[:0])
		for _, mt := range out {
			got = append(got, mt.Door+" "+mt.Src.String())
		}
	}
	return got
}

func TestMatcherRules(t *testing.T) {
	for _, tc := range matcherCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.doors, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := runKnocks(t, m, tc.knocks)
			if !slices.Equal(got, tc.want) {
				t.Errorf("matches = %q, want %q", got, tc.want)
			}
			st := m.Stats()
			if st.WrongKnocks != tc.wrong || st.Timeouts != tc.timeout {
				t.Errorf("wrong knocks = %d, timeouts = %d; want %d, %d", st.WrongKnocks, st.Timeouts, tc.wrong, tc.timeout)
			}

			// The reference matcher must agree on every case.
			ref := newRef(tc.doors)
			var refGot []string
			for _, k := range tc.knocks {
				for _, mt := range ref.handle(k.event(t)) {
					refGot = append(refGot, mt.Door+" "+mt.Src.String())
				}
			}
			if !slices.Equal(refGot, tc.want) {
				t.Errorf("reference matches = %q, want %q", refGot, tc.want)
			}
		})
	}
}

func TestMatcherStatsOutside(t *testing.T) {
	m, err := New([]Door{ssh}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runKnocks(t, m, seq(a4, 0, "22", "7000", "443/udp", "9000/udp"))
	st := m.Stats()
	if st.Events != 4 || st.Outside != 2 || st.WrongKnocks != 1 || st.Sources != 0 {
		t.Errorf("stats = %+v, want 4 events, 2 outside, 1 wrong knock, 0 sources", st)
	}
	// An idle source knocking a non-first step is not tracked at all.
	runKnocks(t, m, seq(b4, 0, "8000"))
	if st := m.Stats(); st.Sources != 0 || st.Ignored != 1 {
		t.Errorf("after a stray knock: sources = %d, ignored = %d; want 0, 1", st.Sources, st.Ignored)
	}
}

func TestKnockSpace(t *testing.T) {
	m, err := New([]Door{ssh, door("b", "9000/udp,100/tcp,7000", time.Second)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range m.KnockSpace() {
		got = append(got, s.String())
	}
	want := []string{"100/tcp", "7000/tcp", "8000/tcp", "9000/udp"}
	if !slices.Equal(got, want) {
		t.Errorf("KnockSpace = %q, want %q", got, want)
	}
	if m.InSpace(9000, TCP) || !m.InSpace(9000, UDP) || m.InSpace(7000, 0) {
		t.Error("InSpace disagrees with the knock space")
	}
}

func TestExpireSweepsAndLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New([]Door{ssh, door("slow", "7000,1234", time.Minute)}, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// a4 knocks both doors' first step; a6 goes on with ssh, which is a
	// wrong knock for "slow".
	runKnocks(t, m, cat(seq(a4, 0, "7000"), seq(a6, 2*time.Second, "7000", "8000")))
	if _, ok := m.NextExpiry(); !ok {
		t.Fatal("NextExpiry reports nothing in progress")
	}
	if next, _ := m.NextExpiry(); next != 5*time.Second+1 {
		t.Errorf("NextExpiry = %v, want first knock + 5s + 1ns", next)
	}
	m.Expire(5 * time.Second)
	if st := m.Stats(); st.Timeouts != 0 || st.Sources != 2 {
		t.Fatalf("at exactly seq_timeout: %+v; want no timeout yet", st)
	}
	m.Expire(5*time.Second + 1)
	if st := m.Stats(); st.Timeouts != 1 || st.Sources != 2 {
		t.Fatalf("after a4's ssh attempt expired: %+v; want 1 timeout, 2 sources", st)
	}
	m.Expire(8 * time.Second)
	if st := m.Stats(); st.Timeouts != 2 || st.Sources != 1 {
		t.Fatalf("after a6's ssh attempt expired: %+v; want 2 timeouts, 1 source", st)
	}
	m.Expire(2 * time.Minute)
	if st := m.Stats(); st.Timeouts != 3 || st.Sources != 0 {
		t.Fatalf("after everything expired: %+v; want 3 timeouts, 0 sources", st)
	}
	if _, ok := m.NextExpiry(); ok {
		t.Error("NextExpiry reports an attempt after all expired")
	}
	n := 0
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] == "knock timed out" {
			n++
			if rec["door"] == nil || rec["src"] == nil {
				t.Errorf("timeout log line lacks door or src: %s", line)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d timeout log lines, want 3:\n%s", n, buf.String())
	}
}

func TestWrongKnockLogNamesAddress(t *testing.T) {
	var buf bytes.Buffer
	m, err := New([]Door{ssh}, Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runKnocks(t, m, seq(a6, 0, "7000", "9000/udp"))
	if got := buf.String(); !strings.Contains(got, "wrong knock") || !strings.Contains(got, "src="+a6) || !strings.Contains(got, "door=ssh") {
		t.Errorf("log = %q, want a wrong knock line with door and src", got)
	}
}

func TestEvictionProtectsAdvancedAttempts(t *testing.T) {
	m, err := New([]Door{ssh}, Options{MaxSources: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The real knocker is two knocks in; then a flood of spoofed first
	// knocks arrives, each from a new address.
	runKnocks(t, m, seq(a4, 0, "7000", "8000"))
	for i := range 1000 {
		src := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		runKnocks(t, m, []knock{{time.Second, src.String(), "7000", "", ""}})
	}
	st := m.Stats()
	if st.Sources != 3 || st.Evictions != 998 || st.PeakSources != 3 {
		t.Errorf("sources = %d, peak %d, evictions = %d; want 3, 3, 998", st.Sources, st.PeakSources, st.Evictions)
	}
	if got := runKnocks(t, m, []knock{{2 * time.Second, a4, "9000/udp", "", ""}}); !slices.Equal(got, []string{"ssh " + a4}) {
		t.Errorf("real knock during flood: matches = %q, want it to open", got)
	}
}

func TestEvictionClosestToExpiry(t *testing.T) {
	m, err := New([]Door{ssh, door("long", "7000,1", time.Hour)}, Options{MaxSources: 2})
	if err != nil {
		t.Fatal(err)
	}
	// b4 started later than a4 but only "long" keeps a6... all at step 1:
	// a4 expires first (5s after t0), b4 at 5s after 1s.
	runKnocks(t, m, []knock{{0, a4, "7000", "", ""}, {time.Second, b4, "7000", "", ""}, {2 * time.Second, a6, "7000", "", ""}})
	if tracked(m, a4) {
		t.Error("a4, closest to expiry, was not the one evicted")
	}
	for _, s := range []string{b4, a6} {
		if !tracked(m, s) {
			t.Errorf("%s was evicted", s)
		}
	}
}

// tracked reports whether the matcher has a slot for addr.
func tracked(m *Matcher, addr string) bool {
	key := netip.MustParseAddr(addr).As16()
	return m.tb.lookup(&key) >= 0
}

// fakeOneTime is an in-memory one-time sequence list.
type fakeOneTime struct {
	seqs [][]Step
	used int
	fail error
}

func (f *fakeOneTime) Current() ([]Step, bool) {
	if f.used >= len(f.seqs) {
		return nil, false
	}
	return f.seqs[f.used], true
}

func (f *fakeOneTime) Consume() error {
	if f.fail != nil {
		return f.fail
	}
	f.used++
	return nil
}

func mustSteps(s string) []Step {
	st, err := ParseSteps(s)
	if err != nil {
		panic(err)
	}
	return st
}

func TestOneTimeSequences(t *testing.T) {
	var buf bytes.Buffer
	ot := &fakeOneTime{seqs: [][]Step{mustSteps("1000,2000"), mustSteps("3000,4000")}}
	m, err := New([]Door{{Name: "smtp", Timeout: 5 * time.Second, OneTime: ot}}, Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// b4 is half-way through the first sequence when a4 uses it.
	runKnocks(t, m, seq(b4, 0, "1000"))
	if got := runKnocks(t, m, seq(a4, 0, "1000", "2000")); !slices.Equal(got, []string{"smtp " + a4}) {
		t.Fatalf("first use: %q", got)
	}
	if ot.used != 1 {
		t.Fatalf("sequence not consumed before the match was reported")
	}
	if got := runKnocks(t, m, cat(seq(b4, time.Second, "2000"), seq(a4, time.Second, "1000", "2000"))); len(got) != 0 {
		t.Errorf("a used sequence opened again: %q", got)
	}
	if m.InSpace(1000, TCP) || !m.InSpace(3000, TCP) {
		t.Error("knock space does not follow the current one-time sequence")
	}
	if got := runKnocks(t, m, seq(b4, 2*time.Second, "3000", "4000")); !slices.Equal(got, []string{"smtp " + b4}) {
		t.Fatalf("second sequence: %q", got)
	}
	if !strings.Contains(buf.String(), "exhausted") {
		t.Errorf("exhaustion not logged: %s", buf.String())
	}
	if got := runKnocks(t, m, seq(a4, 3*time.Second, "3000", "4000")); len(got) != 0 {
		t.Errorf("exhausted door opened: %q", got)
	}
}

func TestOneTimeConsumeFailureDoesNotOpen(t *testing.T) {
	ot := &fakeOneTime{seqs: [][]Step{mustSteps("1000,2000")}, fail: errors.New("read-only file system")}
	m, err := New([]Door{{Name: "smtp", Timeout: 5 * time.Second, OneTime: ot}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := runKnocks(t, m, seq(a4, 0, "1000", "2000")); len(got) != 0 {
		t.Errorf("opened although the sequence could not be consumed: %q", got)
	}
	if m.Stats().OneTimeErrs != 1 {
		t.Errorf("OneTimeErrs = %d, want 1", m.Stats().OneTimeErrs)
	}
}

func TestReconfigureKeepsUnchangedDoors(t *testing.T) {
	other := door("other", "7000,5000", 5*time.Second)
	m, err := New([]Door{ssh, other}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runKnocks(t, m, seq(a4, 0, "7000"))
	changed := door("other", "7000,6000", 5*time.Second)
	if err := m.Reconfigure([]Door{door("new", "1,2", time.Second), changed, ssh}); err != nil {
		t.Fatal(err)
	}
	got := runKnocks(t, m, seq(a4, time.Second, "8000", "9000/udp"))
	if !slices.Equal(got, []string{"ssh " + a4}) {
		t.Errorf("ssh progress lost across reload: %q", got)
	}
	runKnocks(t, m, seq(b4, 2*time.Second, "7000"))
	if err := m.Reconfigure([]Door{door("other", "7000,6000", 10*time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := runKnocks(t, m, seq(b4, 3*time.Second, "6000")); len(got) != 0 {
		t.Errorf("progress survived a change of the door's rules: %q", got)
	}
	if st := m.Stats(); st.Sources != 0 {
		t.Errorf("%d sources tracked after their doors went away", st.Sources)
	}
	if err := m.Reconfigure([]Door{ssh, ssh}); err == nil {
		t.Error("duplicate door names accepted")
	}
}

func TestNewRejectsBadDoors(t *testing.T) {
	for _, d := range []Door{
		{Name: "", Sequence: mustSteps("1"), Timeout: time.Second},
		{Name: "x", Timeout: time.Second},
		{Name: "x", Sequence: mustSteps("1"), Timeout: 0},
		{Name: "x", Sequence: []Step{{Port: 1, Proto: 0}}, Timeout: time.Second},
		{Name: "x", Sequence: make([]Step, MaxSteps+1), Timeout: time.Second},
	} {
		if _, err := New([]Door{d}, Options{}); err == nil {
			t.Errorf("New accepted %+v", d)
		}
	}
}

func TestHandleDoesNotAllocate(t *testing.T) {
	m, err := New([]Door{ssh, door("b", "7001,7002", 5*time.Second)}, Options{MaxSources: 1000})
	if err != nil {
		t.Fatal(err)
	}
	evs := randomFlood(2000, 10000)
	out := make([]Match, 0, 8)
	for i := range evs {
		out = m.Handle(&evs[i], out[:0])
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		out = m.Handle(&evs[i%len(evs)], out[:0])
		i++
	})
	if allocs != 0 {
		t.Errorf("Handle allocates %v times per event in steady state", allocs)
	}
}

// randomFlood makes n events from up to nsrc sources knocking ssh's ports,
// with times moving forward, as a table that grows then reuses its slots.
func randomFlood(nsrc, n int) []Event {
	steps := mustSteps("7000,8000,9000/udp,7001,7002")
	evs := make([]Event, n)
	for i := range evs {
		x := uint32(i)*2654435761 ^ uint32(i>>3)
		src := netip.AddrFrom4([4]byte{10, byte(x % uint32(nsrc) >> 16), byte(x % uint32(nsrc) >> 8), byte(x % uint32(nsrc))})
		st := steps[x%uint32(len(steps))]
		evs[i] = Event{Src: src, Port: st.Port, Proto: st.Proto, Time: t0.Add(time.Duration(i) * time.Millisecond), Mono: time.Duration(i) * time.Millisecond}
	}
	return evs
}

func ExampleMatcher_Handle() {
	m, _ := New([]Door{{Name: "ssh", Sequence: mustSteps("7000,8000,9000:udp"), Timeout: 5 * time.Second}}, Options{})
	var out []Match
	for i, st := range mustSteps("7000,8000,9000/udp") {
		ev := Event{Src: netip.MustParseAddr("192.0.2.10"), Port: st.Port, Proto: st.Proto, Time: t0.Add(time.Duration(i) * time.Second), Mono: time.Duration(i) * time.Second}
		out = m.Handle(&ev, out)
	}
	fmt.Println(out[0].Door, out[0].Src)
	// Output: ssh 192.0.2.10
}

func TestHugeTimeoutDoesNotWrap(t *testing.T) {
	m, err := New([]Door{door("forever", "7000,8000", time.Duration(math.MaxInt64))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runKnocks(t, m, seq(a4, 0, "7000"))
	done := make(chan struct{})
	go func() {
		m.Expire(time.Hour)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Expire does not return with a timeout near the int64 limit")
	}
	if st := m.Stats(); st.Timeouts != 0 || st.Sources != 1 {
		t.Errorf("stats = %+v; want the attempt alive", st)
	}
	if got := runKnocks(t, m, seq(a4, 24*time.Hour, "8000")); !slices.Equal(got, []string{"forever " + a4}) {
		t.Errorf("matches = %q", got)
	}
}

func TestFirstKnockTimeoutsLogAtDebug(t *testing.T) {
	var buf bytes.Buffer
	m, err := New([]Door{ssh}, Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// A spoofed first knock and a real attempt two knocks in.
	runKnocks(t, m, cat(seq(b4, 0, "7000"), seq(a4, 0, "7000", "8000")))
	m.Expire(time.Minute)
	if st := m.Stats(); st.Timeouts != 2 {
		t.Fatalf("timeouts = %d, want 2 (both counted)", st.Timeouts)
	}
	got := buf.String()
	if strings.Count(got, "knock timed out") != 1 || !strings.Contains(got, "src="+a4) {
		t.Errorf("info log = %q; want one timeout line, for %s", got, a4)
	}
}

// TestWallClockStepsDoNotMoveTimeouts steps the wall clock an hour back and
// an hour forward between knocks: only the monotonic stamps decide whether
// an attempt is still alive.
func TestWallClockStepsDoNotMoveTimeouts(t *testing.T) {
	cases := []struct {
		name string
		wall time.Duration // wall-clock step before the later knocks
		mono time.Duration // monotonic time between knocks
		want int           // matches
		outs uint64        // timeouts
	}{
		{"wall back an hour, 6s pass", -time.Hour, 3 * time.Second, 0, 1},
		{"wall forward an hour, 2s pass", time.Hour, time.Second, 1, 0},
		{"wall back a day, 1s passes", -24 * time.Hour, 500 * time.Millisecond, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New([]Door{ssh}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var out []Match
			src := netip.MustParseAddr(a4)
			for i, st := range ssh.Sequence {
				ev := Event{Src: src, Port: st.Port, Proto: st.Proto, Time: t0, Mono: time.Duration(i) * tc.mono}
				if i > 0 {
					ev.Time = t0.Add(tc.wall + time.Duration(i)*tc.mono)
				}
				out = m.Handle(&ev, out)
			}
			m.Expire(time.Duration(len(ssh.Sequence)-1) * tc.mono)
			if len(out) != tc.want || m.Stats().Timeouts != tc.outs {
				t.Errorf("matches = %v, timeouts = %d; want %d matches, %d timeouts", out, m.Stats().Timeouts, tc.want, tc.outs)
			}
		})
	}
}
