package sequence

import (
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"portknock/sealed"
)

func benchSources(n int) []netip.Addr {
	srcs := make([]netip.Addr, n)
	for i := range srcs {
		if i%2 == 0 {
			srcs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		} else {
			srcs[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		}
	}
	return srcs
}

// BenchmarkMatcher feeds knocks round-robin from n sources, each walking the
// ssh sequence, so every source is tracked and every third round matches.
func BenchmarkMatcher(b *testing.B) {
	for _, n := range []int{10, 10_000, 1_000_000} {
		b.Run("sources="+strconv.Itoa(n), func(b *testing.B) {
			doors := []Door{ssh, door("web", "1000,2000,3000,4000", 10*time.Second), door("smtp", "9000/udp,25000", 5*time.Second)}
			m, err := New(doors, Options{MaxSources: n})
			if err != nil {
				b.Fatal(err)
			}
			srcs := benchSources(n)
			steps := ssh.Sequence
			ev := Event{Time: t0}
			out := make([]Match, 0, 4)
			// Warm up: every source tracked, tables grown.
			for i := range srcs {
				ev.Src, ev.Port, ev.Proto = srcs[i], steps[0].Port, steps[0].Proto
				out = m.Handle(&ev, out[:0])
			}
			b.ReportAllocs()
			b.ResetTimer()
			// Counters instead of i/n and i%n: a 64-bit division costs
			// about as much as a cached Handle.
			s, round := 0, 1
			for range b.N {
				st := steps[round]
				ev.Src, ev.Port, ev.Proto = srcs[s], st.Port, st.Proto
				out = m.Handle(&ev, out[:0])
				if s++; s == n {
					s = 0
					if round++; round == len(steps) {
						round = 0
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkTableLookup measures what BenchmarkMatcher's cost grows by:
// finding a tracked source's slab, visiting the sources in the same order.
// At 10⁶ sources neither the index nor the slabs fit in a core's cache,
// and the slab's address comes from the index, so a lookup waits for two
// reads from memory one after the other. Run both benchmarks together:
// the matcher's cost at n sources is about its cost at 10 plus the growth
// of this one.
func BenchmarkTableLookup(b *testing.B) {
	for _, n := range []int{10, 10_000, 1_000_000} {
		b.Run("sources="+strconv.Itoa(n), func(b *testing.B) {
			t := newTable(n, n, 3, 0)
			srcs := benchSources(n)
			keys := make([][16]byte, n)
			for i := range srcs {
				keys[i] = srcs[i].As16()
				t.insert(&keys[i])
			}
			b.ResetTimer()
			s := 0
			for range b.N {
				if t.lookup(&keys[s]) < 0 {
					b.Fatal("tracked source not found")
				}
				if s++; s == n {
					s = 0
				}
			}
		})
	}
}

// BenchmarkMatcherOutside measures the cost of ordinary traffic: events
// outside the knock space are dropped before any table lookup.
func BenchmarkMatcherOutside(b *testing.B) {
	m, err := New([]Door{ssh}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ev := Event{Src: netip.MustParseAddr(a4), Port: 443, Proto: TCP, Time: t0}
	b.ReportAllocs()
	for b.Loop() {
		m.Handle(&ev, nil)
	}
}

// TestMemoryPerSource holds the design's bound of 256 bytes per tracked
// source with three doors.
func TestMemoryPerSource(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a large table")
	}
	const n = 200_000
	srcs := benchSources(n)
	doors := []Door{ssh, door("web", "1000,2000,3000,4000", 10*time.Second), door("smtp", "9000/udp,25000", 5*time.Second)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := New(doors, Options{MaxSources: n})
	if err != nil {
		t.Fatal(err)
	}
	ev := Event{Port: 7000, Proto: TCP, Time: t0}
	for _, s := range srcs {
		ev.Src = s
		m.Handle(&ev, nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := m.Stats().Sources; got != n {
		t.Fatalf("%d sources tracked, want %d", got, n)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per tracked source (3 doors)", per)
	if per > 256 {
		t.Errorf("%.0f bytes per tracked source, want at most 256", per)
	}
	runtime.KeepAlive(m)
}

// acceptAll is a replay cache that records nothing, so that a benchmark
// can open as often as it likes.
type acceptAll struct{}

func (acceptAll) Use([sealed.BlockSize]byte, time.Time) error { return nil }

// BenchmarkSealedKnock feeds sealed knocks round-robin from n sources, each
// filling positions 0–14 of its collector in turn and then writing them
// again, so every source is tracked and no set completes: the cost of
// collecting one knock.
func BenchmarkSealedKnock(b *testing.B) {
	for _, n := range []int{10, 10_000, 1_000_000} {
		b.Run("sources="+strconv.Itoa(n), func(b *testing.B) {
			m, err := New([]Door{ssh, sealedDoor("sealed", 0)}, Options{MaxSources: n, Replay: acceptAll{}})
			if err != nil {
				b.Fatal(err)
			}
			srcs := benchSources(n)
			ev := Event{Proto: TCP, Time: t0}
			out := make([]Match, 0, 4)
			for i := range srcs {
				ev.Src, ev.Port = srcs[i], sealBase
				out = m.Handle(&ev, out[:0])
			}
			b.ReportAllocs()
			b.ResetTimer()
			s, pos := 0, 1
			for range b.N {
				ev.Src, ev.Port = srcs[s], uint16(sealBase+pos<<8+s&0xff)
				out = m.Handle(&ev, out[:0])
				if s++; s == n {
					s = 0
					if pos++; pos == sealed.Knocks-1 {
						pos = 0
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if st := m.Stats(); st.Sources != n || st.SealedChecks != 0 {
				b.Fatalf("stats %+v; want every source tracked and no set complete", st)
			}
		})
	}
}

// BenchmarkSealedCheck measures the check of a complete set in the
// matcher. reject: each knock rewrites a byte of a complete set of noise,
// so each is one decryption refused at the magic (the flood case). open:
// each operation is the sixteen knocks of a fresh valid block, checked
// and matched.
func BenchmarkSealedCheck(b *testing.B) {
	b.Run("reject", func(b *testing.B) {
		m, err := New([]Door{sealedDoor("sealed", 0)}, Options{Replay: acceptAll{}})
		if err != nil {
			b.Fatal(err)
		}
		ev := Event{Src: srcA, Proto: TCP, Time: t0}
		out := make([]Match, 0, 4)
		for i := range sealed.Knocks {
			ev.Port = uint16(sealBase + i<<8)
			out = m.Handle(&ev, out[:0])
		}
		b.ReportAllocs()
		b.ResetTimer()
		c := 1
		for range b.N {
			ev.Port = uint16(sealBase + 15<<8 + c)
			out = m.Handle(&ev, out[:0])
			if c++; c == 256 {
				c = 0
			}
		}
		if st := m.Stats(); st.SealedChecks < uint64(b.N) || st.Matches != 0 {
			b.Fatalf("stats %+v; want every knock checked, none opening", st)
		}
	})
	b.Run("open", func(b *testing.B) {
		m, err := New([]Door{sealedDoor("sealed", 0)}, Options{Replay: acceptAll{}})
		if err != nil {
			b.Fatal(err)
		}
		blocks := make([][sealed.Knocks]uint16, 256)
		for i := range blocks {
			blocks[i] = sealed.Ports(sealBase, sealer.Seal(t0, [4]byte{byte(i)}, srcA, 0))
		}
		ev := Event{Src: srcA, Proto: TCP, Time: t0}
		out := make([]Match, 0, 4)
		b.ReportAllocs()
		b.ResetTimer()
		matches := 0
		for i := range b.N {
			for _, p := range blocks[i%len(blocks)] {
				ev.Port = p
				out = m.Handle(&ev, out[:0])
				matches += len(out)
			}
		}
		if matches != b.N {
			b.Fatalf("%d matches in %d operations", matches, b.N)
		}
	})
}

// TestMemoryPerSourceSealed: a sealed range adds its 32-byte collector to
// every tracked source, within the same bound.
func TestMemoryPerSourceSealed(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a large table")
	}
	const n = 200_000
	srcs := benchSources(n)
	doors := []Door{ssh, door("web", "1000,2000,3000,4000", 10*time.Second), sealedDoor("sealed", 0)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := New(doors, Options{MaxSources: n, Replay: acceptAll{}})
	if err != nil {
		t.Fatal(err)
	}
	ev := Event{Port: sealBase, Proto: TCP, Time: t0}
	for _, s := range srcs {
		ev.Src = s
		m.Handle(&ev, nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := m.Stats().Sources; got != n {
		t.Fatalf("%d sources tracked, want %d", got, n)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per tracked source (2 doors with a sequence, 1 sealed range)", per)
	if per > 256 {
		t.Errorf("%.0f bytes per tracked source, want at most 256", per)
	}
	runtime.KeepAlive(m)
}
