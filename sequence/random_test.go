package sequence

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// byteSource draws small numbers from a fixed byte string (for fuzzing) or
// from a PRNG (for random tests), so one generator serves both.
type byteSource struct {
	data []byte
	rng  *rand.Rand
}

func (b *byteSource) intn(n int) int {
	if b.rng != nil {
		return b.rng.IntN(n)
	}
	if len(b.data) == 0 {
		return 0
	}
	v := int(b.data[0])
	b.data = b.data[1:]
	return v % n
}

func (b *byteSource) done() bool { return b.rng == nil && len(b.data) == 0 }

var (
	randPorts   = []uint16{1000, 1001, 1002, 1003, 1004}
	randTargets = []string{"", "203.0.113.1"}
	randDsts    = []string{"", "203.0.113.1", "203.0.113.2"}
	randFilters = []string{"", "syn", "syn,!ack", "fin"}
	randFlags   = []TCPFlags{SYN, SYN | ACK, ACK, FIN, FIN | ACK, 0}
)

func randomDoors(b *byteSource) []Door {
	doors := make([]Door, 1+b.intn(4))
	for i := range doors {
		d := &doors[i]
		d.Name = string(rune('a' + i))
		d.Timeout = time.Duration(1+b.intn(5)) * time.Second
		for range 1 + b.intn(5) {
			d.Sequence = append(d.Sequence, Step{Port: randPorts[b.intn(len(randPorts))], Proto: Proto(1 + b.intn(2))})
		}
		d.Flags, _ = ParseFlagFilter(randFilters[b.intn(len(randFilters))])
		if t := randTargets[b.intn(len(randTargets))]; t != "" {
			d.Target = netip.MustParseAddr(t)
		}
	}
	return doors
}

func randomSources(n int) []netip.Addr {
	srcs := make([]netip.Addr, n)
	for i := range srcs {
		if i%2 == 0 {
			srcs[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		} else {
			srcs[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
		}
	}
	return srcs
}

// compare runs the same stream through the Matcher and the reference,
// calling Expire on both at the same moments, and fails on the first
// disagreement. It returns the number of matches seen.
func compare(t *testing.T, b *byteSource, nevents int) int {
	t.Helper()
	doors := randomDoors(b)
	m, err := New(doors, Options{MaxSources: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ref := newRef(doors)
	srcs := randomSources(30)
	var now time.Duration
	var out []Match
	matches := 0
	for i := 0; i < nevents && !b.done(); i++ {
		now += time.Duration(b.intn(9)) * 100 * time.Millisecond // coarse, so ages often equal a timeout exactly
		if b.intn(50) == 0 {
			m.Expire(now)
			ref.expire(now)
		}
		ev := Event{Src: srcs[b.intn(len(srcs))], Time: t0.Add(now), Mono: now, Port: randPorts[b.intn(len(randPorts))], Proto: Proto(1 + b.intn(2))}
		if b.intn(10) == 0 {
			ev.Port = 22 // noise outside the knock space
		}
		if f := b.intn(len(randFlags) + 2); f < len(randFlags) {
			ev.Flags, ev.FlagsKnown = randFlags[f], true
		}
		if d := randDsts[b.intn(len(randDsts))]; d != "" {
			ev.Dst = netip.MustParseAddr(d)
		}
		out = m.Handle(&ev, out[:0])
		want := ref.handle(ev)
		if !slices.Equal(out, want) {
			t.Fatalf("event %d %+v:\n matcher   %+v\n reference %+v\ndoors %+v", i, ev, out, want, doors)
		}
		matches += len(out)
	}
	st := m.Stats()
	if st.WrongKnocks != uint64(ref.wrong) || st.Timeouts != uint64(ref.timeouts) || st.Sources != len(ref.attempts) {
		t.Fatalf("matcher: %d wrong, %d timeouts, %d sources; reference: %d, %d, %d",
			st.WrongKnocks, st.Timeouts, st.Sources, ref.wrong, ref.timeouts, len(ref.attempts))
	}
	return matches
}

func TestMatcherAgreesWithReference(t *testing.T) {
	total := 0
	for seed := range uint64(20) {
		total += compare(t, &byteSource{rng: rand.New(rand.NewPCG(seed, 42))}, 10000)
	}
	// The generator must actually exercise matching, or agreement is empty.
	if total < 1000 {
		t.Errorf("only %d matches over 200000 random events; the test is not exercising matches", total)
	}
	t.Logf("%d matches over 200000 events", total)
}

func FuzzMatcher(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte("\x03\x02\x00\x01\x01\x00\x00\x01\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		compare(t, &byteSource{data: data}, 1<<20)
	})
}
