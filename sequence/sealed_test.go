package sequence

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"portknock/sealed"
)

var (
	sealKey   = sealed.Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}
	otherKey  = sealed.Key{0: 9, 31: 9}
	sealer    = sealed.NewSealer(sealKey)
	srcA      = netip.MustParseAddr(a4)
	srcB      = netip.MustParseAddr(b4)
	srcA6     = netip.MustParseAddr(a6)
	noAddress = netip.Addr{}
)

const sealBase = 40000

// sealedDoor is a binding TCP door on sealBase with a 60 s max_skew and a
// 5 s seq_timeout.
func sealedDoor(name string, id byte) Door {
	return Door{Name: name, Timeout: 5 * time.Second, Sealed: &SealedDoor{
		Base: sealBase, Proto: TCP, ID: id, Key: sealKey, MaxSkew: time.Minute, BindSource: true,
	}}
}

func unbound(d Door) Door {
	s := *d.Sealed
	s.BindSource = false
	d.Sealed = &s
	return d
}

// memReplay is a replay cache in memory that can be told to fail.
type memReplay struct {
	used map[[sealed.BlockSize]byte]time.Time
	err  error
}

func newMemReplay() *memReplay {
	return &memReplay{used: make(map[[sealed.BlockSize]byte]time.Time)}
}

func (r *memReplay) Use(c [sealed.BlockSize]byte, until time.Time) error {
	if r.err != nil {
		return r.err
	}
	if _, ok := r.used[c]; ok {
		return sealed.ReasonReplay
	}
	r.used[c] = until
	return nil
}

// block is one sealed block as a client makes it.
type block struct {
	made  time.Time  // the client's clock
	nonce uint32     // 0: derived from made
	tag   netip.Addr // the address it is bound to; invalid: unbound
	id    byte
	key   *sealed.Sealer // nil: sealKey
}

func (b block) ciphertext() [sealed.BlockSize]byte {
	s := b.key
	if s == nil {
		s = sealer
	}
	var nonce [4]byte
	binary.BigEndian.PutUint32(nonce[:], b.nonce)
	return s.Seal(b.made, nonce, b.tag, b.id)
}

func (b block) ports() []uint16 {
	p := sealed.Ports(sealBase, b.ciphertext())
	return p[:]
}

// knocksAt makes the events of ports sent from src, 1 ms apart from at on
// the monotonic clock, with the wall clock at t0+at.
func knocksAt(src netip.Addr, at time.Duration, ports []uint16) []Event {
	evs := make([]Event, len(ports))
	for i, p := range ports {
		d := at + time.Duration(i)*time.Millisecond
		evs[i] = Event{Src: src, Port: p, Proto: TCP, Time: t0.Add(d), Mono: d, Input: "test"}
	}
	return evs
}

func newSealedMatcher(t testing.TB, doors []Door, opts Options) (*Matcher, *memReplay) {
	t.Helper()
	r := newMemReplay()
	if opts.Replay == nil {
		opts.Replay = r
	}
	m, err := New(doors, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

func feed(m *Matcher, evs []Event) []string {
	var got []string
	var out []Match
	for i := range evs {
		out = m.Handle(&evs[i], out[:0])
		for _, mt := range out {
			got = append(got, mt.Door+" "+mt.Src.String())
		}
	}
	return got
}

// logLines decodes a JSON log.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

func rejections(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	return slices.DeleteFunc(logLines(t, buf), func(r map[string]any) bool { return r["msg"] != "sealed knock rejected" })
}

func TestSealedDoors(t *testing.T) {
	shuffled := func(ports []uint16) []uint16 {
		p := slices.Clone(ports)
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		return p
	}
	good := block{made: t0, tag: srcA}
	cases := []struct {
		name   string
		doors  []Door
		knocks []Event
		want   []string
		reason sealed.Reason // the one rejection logged, if any
		// fields the rejection's log line must have, beyond src and reason
		fields map[string]any
	}{
		{
			name:   "a block from its source opens",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: knocksAt(srcA, 0, good.ports()),
			want:   []string{"ssh " + a4},
		},
		{
			name:   "IPv6",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: knocksAt(srcA6, 0, block{made: t0, tag: srcA6}.ports()),
			want:   []string{"ssh " + a6},
		},
		{
			name:   "shuffled, with every knock sent twice",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: knocksAt(srcA, 0, shuffled(slices.Concat(good.ports(), good.ports()))),
			want:   []string{"ssh " + a4},
		},
		{
			name:   "the wrong key never opens",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: knocksAt(srcA, 0, block{made: t0, tag: srcA, key: sealed.NewSealer(otherKey)}.ports()),
			reason: sealed.ReasonKey,
			fields: map[string]any{"range": "40000-44095/tcp"},
		},
		{
			name:   "a block made for another source",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: knocksAt(srcA, 0, block{made: t0, tag: srcB}.ports()),
			reason: sealed.ReasonSource,
			fields: map[string]any{"door": "ssh"},
		},
		{
			name:   "a block made for another source, at a door that does not bind",
			doors:  []Door{unbound(sealedDoor("ssh", 0))},
			knocks: knocksAt(srcA, 0, block{made: t0, tag: srcB}.ports()),
			reason: sealed.ReasonSource,
			fields: map[string]any{"door": "ssh"},
		},
		{
			name:   "an unbound block at a binding door",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: knocksAt(srcA, 0, block{made: t0, tag: noAddress}.ports()),
			reason: sealed.ReasonSource,
			fields: map[string]any{"door": "ssh"},
		},
		{
			name:   "an unbound block where bind_source = false opens from anywhere",
			doors:  []Door{unbound(sealedDoor("ssh", 0))},
			knocks: knocksAt(srcB, 0, block{made: t0, tag: noAddress}.ports()),
			want:   []string{"ssh " + b4},
		},
		{
			name:   "a bound block at a door that does not bind still opens for its source",
			doors:  []Door{unbound(sealedDoor("ssh", 0))},
			knocks: knocksAt(srcA, 0, good.ports()),
			want:   []string{"ssh " + a4},
		},
		{
			name:   "the client's clock 2 min ahead",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: knocksAt(srcA, 0, block{made: t0.Add(2 * time.Minute), tag: srcA}.ports()),
			reason: sealed.ReasonSkew,
			fields: map[string]any{"door": "ssh", "offset": float64(120)},
		},
		{
			name:   "the client's clock 2 min behind",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: knocksAt(srcA, 0, block{made: t0.Add(-2 * time.Minute), tag: srcA}.ports()),
			reason: sealed.ReasonSkew,
			fields: map[string]any{"door": "ssh", "offset": float64(-120)},
		},
		{
			name:   "exactly max_skew behind still opens",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: knocksAt(srcA, 0, block{made: t0.Add(-time.Minute), tag: srcA}.ports()),
			want:   []string{"ssh " + a4},
		},
		{
			name:   "the same block twice",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: slices.Concat(knocksAt(srcA, 0, good.ports()), knocksAt(srcA, time.Second, good.ports())),
			want:   []string{"ssh " + a4},
			reason: sealed.ReasonReplay,
			fields: map[string]any{"door": "ssh"},
		},
		{
			name:  "two doors sharing a base and key, told apart by id",
			doors: []Door{sealedDoor("open", 0), sealedDoor("close", 1)},
			knocks: slices.Concat(
				knocksAt(srcA, 0, block{made: t0, tag: srcA, id: 1}.ports()),
				knocksAt(srcA, time.Second, block{made: t0, nonce: 1, tag: srcA, id: 0}.ports())),
			want: []string{"close " + a4, "open " + a4},
		},
		{
			name:   "an id no door has",
			doors:  []Door{sealedDoor("open", 0), sealedDoor("close", 1)},
			knocks: knocksAt(srcA, 0, block{made: t0, tag: srcA, id: 7}.ports()),
			reason: sealed.ReasonDoor,
			fields: map[string]any{"range": "40000-44095/tcp", "id": float64(7)},
		},
		{
			name:  "an invalid block, then a retry at once",
			doors: []Door{sealedDoor("ssh", 0)},
			knocks: slices.Concat(
				knocksAt(srcA, 0, block{made: t0, tag: srcA, key: sealed.NewSealer(otherKey)}.ports()),
				knocksAt(srcA, time.Second, good.ports())),
			want:   []string{"ssh " + a4},
			reason: sealed.ReasonKey,
		},
		{
			name:  "a retry after seq_timeout starts afresh and opens",
			doors: []Door{sealedDoor("ssh", 0)},
			knocks: slices.Concat(
				knocksAt(srcA, 0, good.ports()[:15]),
				knocksAt(srcA, 6*time.Second, good.ports())),
			want: []string{"ssh " + a4},
		},
		{
			name:  "knocks spread over more than seq_timeout never complete",
			doors: []Door{sealedDoor("ssh", 0)},
			knocks: slices.Concat(
				knocksAt(srcA, 0, good.ports()[:15]),
				knocksAt(srcA, 5*time.Second+time.Millisecond, good.ports()[15:])),
		},
		{
			name:   "knocks from two sources do not make one block",
			doors:  []Door{sealedDoor("ssh", 0)},
			knocks: slices.Concat(knocksAt(srcA, 0, good.ports()[:8]), knocksAt(srcB, 0, good.ports()[8:])),
		},
		{
			name:  "UDP knocks do not reach a TCP range",
			doors: []Door{sealedDoor("ssh", 0)},
			knocks: func() []Event {
				evs := knocksAt(srcA, 0, good.ports())
				for i := range evs {
					evs[i].Proto = UDP
				}
				return evs
			}(),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			m, _ := newSealedMatcher(t, tc.doors, Options{Logger: log})
			got := feed(m, tc.knocks)
			if !slices.Equal(got, tc.want) {
				t.Errorf("matches %q, want %q", got, tc.want)
			}
			rej := rejections(t, &buf)
			if tc.reason == 0 {
				if len(rej) > 0 {
					t.Errorf("rejections logged: %v", rej)
				}
				return
			}
			if len(rej) != 1 {
				t.Fatalf("%d rejections logged, want one:\n%s", len(rej), buf.String())
			}
			r := rej[0]
			if r["reason"] != tc.reason.String() || r["src"] != tc.knocks[0].Src.String() || r["input"] != "test" {
				t.Errorf("rejection %v; want reason %s, src %s, input test", r, tc.reason, tc.knocks[0].Src)
			}
			for k, v := range tc.fields {
				if r[k] != v {
					t.Errorf("rejection %v: %s = %v, want %v", r, k, r[k], v)
				}
			}
			st := m.Stats().SealedRejects
			counts := map[sealed.Reason]uint64{sealed.ReasonKey: st.Key, sealed.ReasonDoor: st.Door, sealed.ReasonSource: st.Source, sealed.ReasonSkew: st.Skew, sealed.ReasonReplay: st.Replay}
			if counts[tc.reason] == 0 {
				t.Errorf("stats %+v do not count the %s rejection", st, tc.reason)
			}
		})
	}
}

// TestSealedRejectionLoggedOncePerAttempt: a source sending noise into a
// range is checked on every new complete block but logged once until its
// attempt ends.
func TestSealedRejectionLoggedOncePerAttempt(t *testing.T) {
	var buf bytes.Buffer
	m, _ := newSealedMatcher(t, []Door{sealedDoor("ssh", 0)}, Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	rng := rand.New(rand.NewPCG(3, 4))
	var ports []uint16
	for i := range 16 {
		ports = append(ports, uint16(sealBase+256*i+rng.IntN(256)))
	}
	for range 50 {
		ports = append(ports, uint16(sealBase+rng.IntN(sealed.Span)))
	}
	feed(m, knocksAt(srcA, 0, ports))
	st := m.Stats()
	if st.SealedChecks < 40 || st.SealedRejects.Key != st.SealedChecks {
		t.Fatalf("stats %+v; want every changed complete block checked and rejected for the key", st)
	}
	if n := len(rejections(t, &buf)); n != 1 {
		t.Errorf("%d rejection lines in one attempt, want 1", n)
	}
	// After seq_timeout a new attempt gets a line of its own.
	feed(m, knocksAt(srcA, 10*time.Second, ports[:16]))
	if n := len(rejections(t, &buf)); n != 2 {
		t.Errorf("%d rejection lines after a second attempt, want 2", n)
	}
}

// TestSealedReplayAcrossMatchers: the replay cache, not the matcher,
// remembers a used block, so a new matcher (a restarted daemon) on the
// same cache refuses it too.
func TestSealedReplayAcrossMatchers(t *testing.T) {
	cache := newMemReplay()
	knocks := knocksAt(srcA, 0, block{made: t0, tag: srcA}.ports())
	for i, want := range [][]string{{"ssh " + a4}, nil} {
		m, _ := newSealedMatcher(t, []Door{sealedDoor("ssh", 0)}, Options{Replay: cache})
		if got := feed(m, knocks); !slices.Equal(got, want) {
			t.Fatalf("matcher %d: matches %q, want %q", i, got, want)
		}
		if i == 1 && m.Stats().SealedRejects.Replay != 1 {
			t.Errorf("second matcher: %+v; want one replay rejection", m.Stats())
		}
	}
	// Kept until the block's time plus the largest max_skew.
	for _, until := range cache.used {
		if want := t0.Add(MaxSealedSkew); !until.Equal(want) {
			t.Errorf("cache keeps the block until %v, want %v", until, want)
		}
	}
}

func TestSealedReplayUntilFollowsBlockTime(t *testing.T) {
	m, cache := newSealedMatcher(t, []Door{sealedDoor("ssh", 0)}, Options{})
	made := t0.Add(-40 * time.Second)
	feed(m, knocksAt(srcA, 0, block{made: made, tag: srcA}.ports()))
	if len(cache.used) != 1 {
		t.Fatalf("cache holds %d blocks, want 1", len(cache.used))
	}
	for _, until := range cache.used {
		if want := made.Add(MaxSealedSkew); !until.Equal(want) {
			t.Errorf("kept until %v, want the block's time + %v = %v", until, MaxSealedSkew, want)
		}
	}
}

// TestSealedReplayCacheFailureRefuses: a block the cache cannot record
// opens nothing, is logged as an error with door and source, and a later
// knock works again once the cache does.
func TestSealedReplayCacheFailureRefuses(t *testing.T) {
	var buf bytes.Buffer
	m, cache := newSealedMatcher(t, []Door{sealedDoor("ssh", 0)}, Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	cache.err = errors.New("disk full")
	if got := feed(m, knocksAt(srcA, 0, block{made: t0, tag: srcA}.ports())); len(got) > 0 {
		t.Fatalf("opened %q without recording the block", got)
	}
	if st := m.Stats(); st.ReplayErrs != 1 || st.Sources != 0 {
		t.Errorf("stats %+v; want 1 replay error and the attempt ended", st)
	}
	var found bool
	for _, r := range logLines(t, &buf) {
		if r["level"] == "ERROR" && r["door"] == "ssh" && r["src"] == a4 && strings.Contains(r["err"].(string), "disk full") {
			found = true
		}
	}
	if !found {
		t.Errorf("no ERROR line with door, src and the error:\n%s", buf.String())
	}
	cache.err = nil
	if got := feed(m, knocksAt(srcA, time.Second, block{made: t0, nonce: 9, tag: srcA}.ports())); len(got) != 1 {
		t.Errorf("after the cache healed: matches %q, want one", got)
	}
}

// TestSealedSweepOpensNothing: a scan over every port of the range, rising
// or falling, from one source opens nothing.
func TestSealedSweepOpensNothing(t *testing.T) {
	for _, falling := range []bool{false, true} {
		m, _ := newSealedMatcher(t, []Door{sealedDoor("open", 0), unbound(sealedDoor("close", 1))}, Options{})
		ports := make([]uint16, 0, sealed.Span+2)
		for p := sealBase - 1; p <= sealBase+sealed.Span; p++ {
			ports = append(ports, uint16(p))
		}
		if falling {
			slices.Reverse(ports)
		}
		evs := make([]Event, len(ports))
		for i, p := range ports {
			// 10⁵ packets/s: the whole sweep well within seq_timeout.
			d := time.Duration(i) * 10 * time.Microsecond
			evs[i] = Event{Src: srcA, Port: p, Proto: TCP, Flags: SYN, FlagsKnown: true, Time: t0.Add(d), Mono: d}
		}
		if got := feed(m, evs); len(got) > 0 {
			t.Errorf("falling=%v: the sweep opened %q", falling, got)
		}
		st := m.Stats()
		if st.SealedKnocks != sealed.Span || st.Outside != 2 {
			t.Errorf("falling=%v: %+v; want %d sealed knocks, 2 outside", falling, st, sealed.Span)
		}
		// The set completes at the last position reached, and each later
		// port there changes its byte: 256 blocks.
		if st.SealedChecks != 256 {
			t.Errorf("falling=%v: %d checks, want 256", falling, st.SealedChecks)
		}
		if st.SealedRejects.Key != st.SealedChecks {
			t.Errorf("falling=%v: %+v; every checked block should fail the key", falling, st)
		}
	}
}

// TestSealedRandomSetsOpenNothing: complete sets of random knocks from
// many sources are all refused.
func TestSealedRandomSetsOpenNothing(t *testing.T) {
	m, _ := newSealedMatcher(t, []Door{unbound(sealedDoor("open", 0)), unbound(sealedDoor("close", 1))}, Options{MaxSources: 1000})
	rng := rand.New(rand.NewPCG(5, 6))
	srcs := benchSources(500)
	var out []Match
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	for i := range n {
		d := time.Duration(i) * time.Microsecond
		ev := Event{Src: srcs[rng.IntN(len(srcs))], Port: uint16(sealBase + rng.IntN(sealed.Span)), Proto: TCP, Time: t0.Add(d), Mono: d}
		if out = m.Handle(&ev, out[:0]); len(out) > 0 {
			t.Fatalf("random knocks opened %+v", out)
		}
	}
	if st := m.Stats(); st.SealedChecks < uint64(n)/4 {
		t.Errorf("only %d checks over %d random knocks", st.SealedChecks, n)
	}
}

// TestSealedEvictionKeepsAdvancedCollectors: a flood of single spoofed
// knocks into the range, from more sources than the table holds, cannot
// push out a client part-way through its sixteen knocks.
func TestSealedEvictionKeepsAdvancedCollectors(t *testing.T) {
	m, _ := newSealedMatcher(t, []Door{sealedDoor("ssh", 0)}, Options{MaxSources: 100})
	ports := block{made: t0, tag: srcA}.ports()
	var got []string
	got = append(got, feed(m, knocksAt(srcA, 0, ports[:8]))...)
	flood := benchSources(10_000)
	evs := make([]Event, len(flood))
	for i, s := range flood {
		d := time.Millisecond + time.Duration(i)*time.Microsecond
		evs[i] = Event{Src: s, Port: uint16(sealBase + i%sealed.Span), Proto: TCP, Time: t0.Add(d), Mono: d}
	}
	feed(m, evs)
	st := m.Stats()
	if st.Sources != 100 || st.Evictions < 9_000 {
		t.Fatalf("stats %+v; want a full table and the flood evicting itself", st)
	}
	got = append(got, feed(m, knocksAt(srcA, 20*time.Millisecond, ports[8:]))...)
	if !slices.Equal(got, []string{"ssh " + a4}) {
		t.Errorf("matches %q; want the client's knock to survive the flood", got)
	}
}

// TestSealedRangesAndPlainDoors: knocks in a sealed range leave a plain
// door's attempt alone, plain knocks leave the collector alone, and both
// open.
func TestSealedRangesAndPlainDoors(t *testing.T) {
	m, _ := newSealedMatcher(t, []Door{ssh, sealedDoor("sealed", 0)}, Options{})
	ports := block{made: t0, tag: srcA}.ports()
	evs := slices.Concat(
		knocksAt(srcA, 0, []uint16{7000, 8000}),
		knocksAt(srcA, 10*time.Millisecond, ports[:10]),
		[]Event{{Src: srcA, Port: 9000, Proto: UDP, Time: t0, Mono: 30 * time.Millisecond}},
		knocksAt(srcA, 40*time.Millisecond, ports[10:]),
	)
	got := feed(m, evs)
	if !slices.Equal(got, []string{"ssh " + a4, "sealed " + a4}) {
		t.Errorf("matches %q", got)
	}
	if st := m.Stats(); st.WrongKnocks != 0 {
		t.Errorf("%d wrong knocks; sealed knocks must not reset plain doors", st.WrongKnocks)
	}
	if !m.InSpace(sealBase, TCP) || !m.InSpace(sealBase+sealed.Span-1, TCP) || m.InSpace(sealBase+sealed.Span, TCP) ||
		m.InSpace(sealBase-1, TCP) || m.InSpace(sealBase, UDP) {
		t.Error("InSpace does not hold exactly the range")
	}
}

// TestSealedTargetAndFlags: a sealed door's target and tcpflags apply to
// each knock as to a plain door's: others are ignored, not written.
func TestSealedTargetAndFlags(t *testing.T) {
	d := sealedDoor("ssh", 0)
	d.Target = netip.MustParseAddr("203.0.113.1")
	d.Flags, _ = ParseFlagFilter("syn,!ack")
	m, _ := newSealedMatcher(t, []Door{d}, Options{})
	good := knocksAt(srcA, 0, block{made: t0, tag: srcA}.ports())
	bad := knocksAt(srcA, 0, block{made: t0, nonce: 1, tag: srcA}.ports())
	for i := range good {
		good[i].Dst, good[i].Flags, good[i].FlagsKnown = d.Target, SYN, true
		bad[i].Dst, bad[i].Flags, bad[i].FlagsKnown = d.Target, SYN, true
		if i%2 == 0 {
			bad[i].Dst = netip.MustParseAddr("203.0.113.2")
		} else {
			bad[i].Flags = SYN | ACK
		}
	}
	// Interleaved: the ignored knocks must not overwrite good bytes.
	var evs []Event
	for i := range good {
		evs = append(evs, bad[i], good[i])
	}
	if got := feed(m, evs); !slices.Equal(got, []string{"ssh " + a4}) {
		t.Errorf("matches %q", got)
	}
	if st := m.Stats(); st.Ignored != 16 || st.SealedChecks != 1 {
		t.Errorf("stats %+v; want 16 ignored knocks and one check", st)
	}
}

func TestSealedExpireSweeps(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, _ := newSealedMatcher(t, []Door{sealedDoor("ssh", 0)}, Options{Logger: log})
	feed(m, knocksAt(srcA, 0, block{made: t0, tag: srcA}.ports()[:5]))
	next, ok := m.NextExpiry()
	if !ok || next != 5*time.Second+1 {
		t.Fatalf("NextExpiry = %v, %v; want 5s+1ns", next, ok)
	}
	m.Expire(5 * time.Second)
	if m.Stats().Sources != 1 {
		t.Fatal("expired at exactly seq_timeout")
	}
	m.Expire(5*time.Second + 1)
	if st := m.Stats(); st.Sources != 0 || st.Timeouts != 1 {
		t.Fatalf("stats %+v; want the collector swept", st)
	}
	var found bool
	for _, r := range logLines(t, &buf) {
		if r["msg"] == "knock timed out" && r["level"] == "INFO" && r["range"] == "40000-44095/tcp" && r["knocks"] == float64(5) && r["src"] == a4 {
			found = true
		}
	}
	if !found {
		t.Errorf("no info line for the timed-out collector:\n%s", buf.String())
	}
}

func TestSealedReconfigure(t *testing.T) {
	m, _ := newSealedMatcher(t, []Door{sealedDoor("ssh", 0)}, Options{})
	ports := block{made: t0, tag: srcA}.ports()
	feed(m, knocksAt(srcA, 0, ports[:8]))
	// A new door on the range, and a changed max_skew: the collector stays.
	d := sealedDoor("ssh", 0)
	d.Sealed.MaxSkew = 2 * time.Minute
	if err := m.Reconfigure([]Door{d, sealedDoor("close", 1)}); err != nil {
		t.Fatal(err)
	}
	if got := feed(m, knocksAt(srcA, 10*time.Millisecond, ports[8:])); !slices.Equal(got, []string{"ssh " + a4}) {
		t.Fatalf("after a reload keeping the key: matches %q", got)
	}
	// A new key drops what was collected under the old one.
	feed(m, knocksAt(srcA, 20*time.Millisecond, ports[:8]))
	k := sealedDoor("ssh", 0)
	k.Sealed.Key = otherKey
	if err := m.Reconfigure([]Door{k}); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Sources != 0 {
		t.Errorf("after a new key: %d sources tracked, want 0", st.Sources)
	}
	other := block{made: t0, tag: srcA, key: sealed.NewSealer(otherKey)}.ports()
	if got := feed(m, knocksAt(srcA, 30*time.Millisecond, other[8:])); len(got) > 0 || m.Stats().SealedChecks != 1 {
		t.Fatalf("half a block completed a block from before the key changed: %q, %+v", got, m.Stats())
	}
	if got := feed(m, knocksAt(srcA, 40*time.Millisecond, other)); !slices.Equal(got, []string{"ssh " + a4}) {
		t.Errorf("with the new key: matches %q", got)
	}
}

func TestSealedBadDoors(t *testing.T) {
	with := func(d Door, f func(*Door)) Door {
		s := *d.Sealed
		d.Sealed = &s
		f(&d)
		return d
	}
	base := sealedDoor("a", 0)
	cases := []struct {
		name  string
		doors []Door
		want  string
	}{
		{"a sequence too", []Door{with(base, func(d *Door) { d.Sequence = ssh.Sequence })}, "has no sequence"},
		{"base too high", []Door{with(base, func(d *Door) { d.Sealed.Base = sealed.MaxBase + 1 })}, "base port"},
		{"base zero", []Door{with(base, func(d *Door) { d.Sealed.Base = 0 })}, "base port"},
		{"no protocol", []Door{with(base, func(d *Door) { d.Sealed.Proto = 0 })}, "protocol"},
		{"no max_skew", []Door{with(base, func(d *Door) { d.Sealed.MaxSkew = 0 })}, "max_skew"},
		{"max_skew too long", []Door{with(base, func(d *Door) { d.Sealed.MaxSkew = MaxSealedSkew + time.Second })}, "max_skew"},
		{"no key", []Door{with(base, func(d *Door) { d.Sealed.Key = sealed.Key{} })}, "no key"},
		{"same id twice", []Door{base, with(base, func(d *Door) { d.Name = "b" })}, "id 0"},
		{"other key on the base", []Door{base, with(base, func(d *Door) { d.Name, d.Sealed.ID, d.Sealed.Key = "b", 1, otherKey })}, "key"},
		{"other protocol on the base", []Door{base, with(base, func(d *Door) { d.Name, d.Sealed.ID, d.Sealed.Proto = "b", 1, UDP })}, "protocol"},
		{"other timeout on the base", []Door{base, with(base, func(d *Door) { d.Name, d.Sealed.ID, d.Timeout = "b", 1, time.Second })}, "seq_timeout"},
		{"overlapping ranges", []Door{base, with(base, func(d *Door) { d.Name, d.Sealed.Base = "b", sealBase+sealed.Span-1 })}, "overlaps"},
		{"overlapping ranges below", []Door{base, with(base, func(d *Door) { d.Name, d.Sealed.Base = "b", sealBase-sealed.Span+1 })}, "overlaps"},
		{"a plain step in the range", []Door{base, door("p", "7000,44095", time.Second)}, "44095/tcp lies in"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.doors, Options{Replay: newMemReplay()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v; want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := New([]Door{base}, Options{}); err == nil || !strings.Contains(err.Error(), "replay cache") {
		t.Errorf("New without a replay cache: %v", err)
	}
	// Adjacent ranges, and the other protocol's range over the same ports,
	// are separate ranges: only a step inside one is refused.
	udp := with(base, func(d *Door) { d.Name, d.Sealed.Base, d.Sealed.Proto = "u", sealBase+100, UDP })
	next := with(base, func(d *Door) { d.Name, d.Sealed.Base = "n", sealBase+sealed.Span })
	if _, err := New([]Door{base, udp, next, door("p", "39999,44196/udp,40100/udp", time.Second)}, Options{Replay: newMemReplay()}); err == nil ||
		!strings.Contains(err.Error(), "40100/udp") {
		t.Errorf("New: %v; want the step in the UDP range refused", err)
	}
	if _, err := New([]Door{base, udp, next, door("p", "39999,48192,40099/udp,44196/udp", time.Second)}, Options{Replay: newMemReplay()}); err != nil {
		t.Errorf("New with adjacent and other-protocol ranges: %v", err)
	}
}

// TestSealedOneTimeSequenceInRange: a one-time sequence reaching into a
// sealed range is refused at start, and disables its door when it comes
// up later.
func TestSealedOneTimeSequenceInRange(t *testing.T) {
	bad := &fakeOneTime{seqs: [][]Step{mustSteps("1000,40001")}}
	if _, err := New([]Door{sealedDoor("s", 0), {Name: "ot", Timeout: time.Second, OneTime: bad}}, Options{Replay: newMemReplay()}); err == nil ||
		!strings.Contains(err.Error(), "sealed range") {
		t.Errorf("New: %v; want the one-time sequence refused", err)
	}
	later := &fakeOneTime{seqs: [][]Step{mustSteps("1000,2000"), mustSteps("1000,40001")}}
	m, _ := newSealedMatcher(t, []Door{sealedDoor("s", 0), {Name: "ot", Timeout: time.Second, OneTime: later}}, Options{})
	if got := runKnocks(t, m, seq(a4, 0, "1000", "2000")); !slices.Equal(got, []string{"ot " + a4}) {
		t.Fatalf("matches %q", got)
	}
	if m.InSpace(1000, TCP) {
		t.Error("the door whose next sequence lies in the sealed range is still enabled")
	}
}

func TestSealedProgressSize(t *testing.T) {
	if n := unsafe.Sizeof(collector{}); n > 64 {
		t.Errorf("collector is %d bytes, want at most 64", n)
	}
}

func TestSealedHandleDoesNotAllocate(t *testing.T) {
	m, _ := newSealedMatcher(t, []Door{sealedDoor("ssh", 0)}, Options{MaxSources: 100})
	srcs := benchSources(50)
	rng := rand.New(rand.NewPCG(7, 8))
	evs := make([]Event, 4096)
	for i := range evs {
		evs[i] = Event{Src: srcs[i%len(srcs)], Port: uint16(sealBase + rng.IntN(sealed.Span)), Proto: TCP, Time: t0}
	}
	feed(m, evs) // grow the tables
	out := make([]Match, 0, 4)
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		out = m.Handle(&evs[i%len(evs)], out[:0])
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per sealed knock, want 0", allocs)
	}
}

// refSealed is the sealed-door rules written as plainly as possible: a map
// per source and base, every check done afresh with Opener.Open door by
// door, a set for the replay cache. The Matcher must agree with it.
type refSealed struct {
	doors []Door
	state map[netip.Addr]map[uint16]*refCollector
	used  map[[sealed.BlockSize]byte]bool
	rej   map[sealed.Reason]int
}

type refCollector struct {
	bytes [sealed.Knocks]int // -1: not seen
	start time.Duration
}

func newRefSealed(doors []Door) *refSealed {
	return &refSealed{doors: doors, state: map[netip.Addr]map[uint16]*refCollector{}, used: map[[sealed.BlockSize]byte]bool{}, rej: map[sealed.Reason]int{}}
}

func (r *refSealed) handle(ev Event) []Match {
	src := NormalizeAddr(ev.Src)
	var first *Door // the first door of the range the knock is in
	for i := range r.doors {
		s := r.doors[i].Sealed
		if s.Proto == ev.Proto && int(ev.Port) >= int(s.Base) && int(ev.Port) < int(s.Base)+4096 {
			first = &r.doors[i]
			break
		}
	}
	if first == nil {
		return nil
	}
	if first.Target.IsValid() && ev.Dst.IsValid() && ev.Dst != first.Target {
		return nil
	}
	if ev.Proto == TCP && ev.FlagsKnown && (ev.Flags&first.Flags.Set != first.Flags.Set || ev.Flags&first.Flags.Clear != 0) {
		return nil
	}
	base := first.Sealed.Base
	if r.state[src] == nil {
		r.state[src] = map[uint16]*refCollector{}
	}
	c := r.state[src][base]
	if c != nil && ev.Mono-c.start > first.Timeout {
		c = nil
	}
	if c == nil {
		c = &refCollector{start: ev.Mono}
		for i := range c.bytes {
			c.bytes[i] = -1
		}
		r.state[src][base] = c
	}
	off := int(ev.Port) - int(base)
	pos, b := off/256, off%256
	changed := c.bytes[pos] != b
	c.bytes[pos] = b
	if !changed || slices.Contains(c.bytes[:], -1) {
		return nil
	}
	var ct [sealed.BlockSize]byte
	for i, v := range c.bytes {
		ct[i] = byte(v)
	}
	o := sealed.NewOpener(first.Sealed.Key)
	blk, err := o.Decrypt(ct)
	if err != nil {
		r.rej[sealed.ReasonKey]++
		return nil
	}
	for i := range r.doors {
		d := &r.doors[i]
		if d.Sealed.Base != base || d.Sealed.ID != blk.ID {
			continue
		}
		if _, err := o.Open(ct, src, ev.Time, sealed.Policy{BindSource: d.Sealed.BindSource, MaxSkew: d.Sealed.MaxSkew}); err != nil {
			r.rej[err.(sealed.Reason)]++
			return nil
		}
		if r.used[ct] {
			r.rej[sealed.ReasonReplay]++
			return nil
		}
		r.used[ct] = true
		delete(r.state[src], base)
		return []Match{{Door: d.Name, Src: src, Dst: ev.Dst, Last: Step{ev.Port, ev.Proto}, Time: ev.Time, Input: ev.Input}}
	}
	r.rej[sealed.ReasonDoor]++
	return nil
}

// compareSealed runs a random stream of valid, foreign, stale, replayed
// and noisy sealed knocks through the Matcher and the reference.
func compareSealed(t *testing.T, b *byteSource, nevents int) (matches int, rejects map[sealed.Reason]int) {
	t.Helper()
	second := sealedDoor("close", 1)
	second.Sealed.BindSource = false
	third := sealedDoor("udp", 0)
	third.Sealed.Base, third.Sealed.Proto, third.Sealed.MaxSkew = 50000, UDP, 30*time.Second
	third.Timeout = 2 * time.Second
	doors := []Door{sealedDoor("open", 0), second, third}
	doors[0].Flags, _ = ParseFlagFilter("syn")
	doors[1].Flags = doors[0].Flags
	m, _ := newSealedMatcher(t, doors, Options{MaxSources: 1 << 20})
	ref := newRefSealed(doors)
	all := randomSources(10)
	srcs, noisy := all[:6], all[4:] // two clients get noise too
	keys := []*sealed.Sealer{sealer, sealer, sealer, sealed.NewSealer(otherKey)}
	skews := []time.Duration{0, 0, 0, 20 * time.Second, -45 * time.Second, 2 * time.Minute}
	type pending struct {
		src   netip.Addr
		proto Proto
		ports []uint16
	}
	var queue []pending
	var sent []pending // blocks sent before, for replays
	var now time.Duration
	var out []Match
	for i := 0; i < nevents && !b.done(); i++ {
		// Knocks of up to three blocks interleave, 20 ms apart on average:
		// most blocks complete within seq_timeout, some do not.
		now += time.Duration(b.intn(5)) * 10 * time.Millisecond
		if b.intn(40) == 0 {
			m.Expire(now)
		}
		if src := srcs[b.intn(len(srcs))]; len(queue) < 3 && b.intn(3) == 0 && !slices.ContainsFunc(queue, func(p pending) bool { return p.src == src }) {
			// A client starts a new block, or sends an old one again.
			d := doors[b.intn(len(doors))]
			tag := src
			switch b.intn(8) {
			case 0:
				tag = srcs[b.intn(len(srcs))]
			case 1:
				tag = netip.Addr{}
			}
			id := d.Sealed.ID
			if b.intn(8) == 0 {
				id = byte(b.intn(4))
			}
			var nonce [4]byte
			nonce[0], nonce[1] = byte(b.intn(256)), byte(i)
			c := keys[b.intn(len(keys))].Seal(t0.Add(now+skews[b.intn(len(skews))]), nonce, tag, id)
			p := sealed.Ports(d.Sealed.Base, c)
			next := pending{src, d.Sealed.Proto, p[:]}
			if b.intn(4) == 0 && len(sent) > 0 {
				next = sent[b.intn(len(sent))] // a replay, perhaps from elsewhere
				if b.intn(2) == 0 {
					next.src = src
				}
			}
			sent = append(sent, next)
			next.ports = slices.Clone(next.ports)
			queue = append(queue, next)
		}
		ev := Event{Time: t0.Add(now), Mono: now, Proto: TCP, Src: noisy[b.intn(len(noisy))]}
		if len(queue) > 0 && b.intn(8) != 0 {
			q := &queue[b.intn(len(queue))]
			j := b.intn(len(q.ports))
			ev.Src, ev.Proto, ev.Port = q.src, q.proto, q.ports[j]
			if b.intn(4) != 0 { // else a retransmit: sent again later
				q.ports = slices.Delete(q.ports, j, j+1)
			}
			if len(q.ports) == 0 {
				queue = slices.DeleteFunc(queue, func(p pending) bool { return len(p.ports) == 0 })
			}
		} else {
			ev.Port = uint16(sealBase - 10 + b.intn(sealed.Span+20))
			if b.intn(3) == 0 {
				ev.Proto, ev.Port = UDP, uint16(50000+b.intn(sealed.Span))
			}
		}
		switch f := b.intn(12); {
		case f < len(randFlags):
			ev.Flags, ev.FlagsKnown = randFlags[f], true
		case f < 10:
			ev.Flags, ev.FlagsKnown = SYN, true
		}
		out = m.Handle(&ev, out[:0])
		want := ref.handle(ev)
		if !slices.Equal(out, want) {
			t.Fatalf("event %d %+v:\n matcher   %+v\n reference %+v", i, ev, out, want)
		}
		matches += len(out)
	}
	st := m.Stats().SealedRejects
	got := map[sealed.Reason]int{sealed.ReasonKey: int(st.Key), sealed.ReasonDoor: int(st.Door), sealed.ReasonSource: int(st.Source), sealed.ReasonSkew: int(st.Skew), sealed.ReasonReplay: int(st.Replay)}
	for r, n := range got {
		if n != ref.rej[r] {
			t.Fatalf("%s rejections: matcher %d, reference %d", r.String(), n, ref.rej[r])
		}
	}
	return matches, got
}

func TestSealedMatcherAgreesWithReference(t *testing.T) {
	matches, rejects := 0, map[sealed.Reason]int{}
	for seed := range uint64(20) {
		m, r := compareSealed(t, &byteSource{rng: rand.New(rand.NewPCG(seed, 43))}, 5000)
		matches += m
		for k, v := range r {
			rejects[k] += v
		}
	}
	// Every outcome must actually occur, or agreement says little.
	if matches < 100 {
		t.Errorf("%d matches over 100000 events; the test is not exercising matches", matches)
	}
	for _, r := range []sealed.Reason{sealed.ReasonKey, sealed.ReasonDoor, sealed.ReasonSource, sealed.ReasonSkew, sealed.ReasonReplay} {
		if rejects[r] < 20 {
			t.Errorf("%d %s rejections over 100000 events; the test is not exercising that check", rejects[r], r.String())
		}
	}
	t.Logf("%d matches; rejections: %d key, %d door, %d source, %d skew, %d replay; over 100000 events", matches,
		rejects[sealed.ReasonKey], rejects[sealed.ReasonDoor], rejects[sealed.ReasonSource], rejects[sealed.ReasonSkew], rejects[sealed.ReasonReplay])
}

func FuzzSealedMatcher(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Fuzz(func(t *testing.T, data []byte) {
		compareSealed(t, &byteSource{data: data}, 1<<20)
	})
}
