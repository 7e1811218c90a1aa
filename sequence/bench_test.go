package sequence

import (
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"
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
