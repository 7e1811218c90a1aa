package sequence

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// checkSlabs verifies everything the table, the lists and the heap must
// agree on, and returns the first disagreement.
func checkSlabs(m *Matcher) error {
	tb := m.tb
	ntracks := len(m.doors) + len(m.ranges)
	if len(tb.off) != ntracks || len(m.lists[listAll]) != ntracks || len(m.lists[listFirst]) != ntracks {
		return fmt.Errorf("%d tracks, %d offsets, lists %d/%d", ntracks, len(tb.off), len(m.lists[listAll]), len(m.lists[listFirst]))
	}
	over := make([]int, tb.nchunks)
	n := 0
	var err error
	tb.used(func(s int32) {
		n++
		if err != nil {
			return
		}
		h := tb.hdr(s)
		if got := tb.lookup(&h.key); got != s {
			err = fmt.Errorf("slot %d: lookup of its key gives %d", s, got)
			return
		}
		var active, adv uint16
		for tr := range ntracks {
			if tr < 64 && h.idle(tr) == m.activeAt(s, tr) {
				err = fmt.Errorf("slot %d: busy bit of track %d wrong", s, tr)
				return
			}
			if m.activeAt(s, tr) {
				active++
				if m.pastFirst(s, tr) {
					adv++
				}
			}
		}
		switch {
		case active == 0:
			err = fmt.Errorf("slot %d tracked with no attempt", s)
		case h.active != active || h.advanced != adv:
			err = fmt.Errorf("slot %d: header counts %d active, %d advanced; slab has %d, %d", s, h.active, h.advanced, active, adv)
		}
	})
	if err != nil {
		return err
	}
	if n != tb.count {
		return fmt.Errorf("%d slots used, count %d", n, tb.count)
	}
	for c := range tb.chunks {
		for m := tb.chunks[c].ctrl & ctrlMSB; m != 0; m &= m - 1 {
			s := tb.chunks[c].slab[bits.TrailingZeros64(m)>>3]
			for cc := tb.home(tb.hash(&tb.hdr(s).key)); cc != uint64(c); cc = (cc + 1) % tb.nchunks {
				over[cc]++
			}
		}
	}
	for c := range tb.chunks {
		if got := int(tb.chunks[c].ctrl >> ctrlOver); got != 0xff && got != over[c] {
			return fmt.Errorf("chunk %d: overflow count %d, want %d", c, got, over[c])
		}
	}
	for tr := range ntracks {
		for l := range m.lists {
			want := 0
			tb.used(func(s int32) {
				if m.activeAt(s, tr) && (l == listAll || tb.hdr(s).advanced == 0) {
					want++
				}
			})
			got, prev, last := 0, int32(-1), int64(-1<<63)
			for s := m.lists[l][tr].head; s >= 0; s = tb.link(s, tr).next[l] {
				k := tb.link(s, tr)
				if got++; got > want {
					return fmt.Errorf("track %d list %d longer than the %d attempts it should hold", tr, l, want)
				}
				if k.prev[l] != prev {
					return fmt.Errorf("track %d list %d: slot %d's prev is %d, want %d", tr, l, s, k.prev[l], prev)
				}
				if !m.activeAt(s, tr) || (l == listFirst && tb.hdr(s).advanced != 0) {
					return fmt.Errorf("track %d list %d holds slot %d, which does not belong there", tr, l, s)
				}
				if l == listAll && k.start < last {
					return fmt.Errorf("track %d list %d out of order at slot %d", tr, l, s)
				}
				prev, last = s, k.start
			}
			if got != want || m.lists[l][tr].tail != prev {
				return fmt.Errorf("track %d list %d: %d entries, tail %d; want %d, tail %d", tr, l, got, m.lists[l][tr].tail, want, prev)
			}
		}
	}
	return nil
}

// TestSlabInvariants drives a matcher with few slots through random
// knocks, sweeps and reloads, from more sources than it may track, and
// checks the table after every step: growth, eviction, sources losing
// their progress and rebuilding on reload all keep it whole.
func TestSlabInvariants(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			b := &byteSource{rng: rng}
			doors := randomDoors(b)
			for len(doors) < 3 {
				doors = randomDoors(b)
			}
			if seed%3 == 0 {
				doors = append(doors, sealedDoor("sealed", 0))
			}
			max := []int{1, 3, 17, 1000}[seed%4]
			m, err := New(doors, Options{MaxSources: max, Replay: acceptAll{}})
			if err != nil {
				t.Fatal(err)
			}
			srcs := benchSources([]int{8, 40, 300}[seed%3])
			var now time.Duration
			var out []Match
			for i := range 3000 {
				now += time.Duration(rng.IntN(4)) * 10 * time.Millisecond
				ev := Event{Src: srcs[rng.IntN(len(srcs))], Time: t0.Add(now), Mono: now, Port: randPorts[rng.IntN(len(randPorts))], Proto: Proto(1 + rng.IntN(2))}
				switch r := rng.IntN(100); {
				case r < 2:
					m.Expire(now)
				case r == 2:
					// Reload: drop one door, change another's timeout.
					nd := append([]Door(nil), doors...)
					nd[0].Timeout += time.Second
					if len(nd) > 1 {
						nd = nd[1:]
					}
					if err := m.Reconfigure(nd); err != nil {
						t.Fatal(err)
					}
					if err := m.Reconfigure(doors); err != nil {
						t.Fatal(err)
					}
				case r < 20 && seed%3 == 0:
					ev.Port, ev.Proto = uint16(sealBase+rng.IntN(16)<<8+rng.IntN(2)), TCP
				}
				if f := rng.IntN(len(randFlags) + 2); f < len(randFlags) {
					ev.Flags, ev.FlagsKnown = randFlags[f], true
				}
				out = m.Handle(&ev, out[:0])
				if err := checkSlabs(m); err != nil {
					t.Fatalf("after event %d %+v: %v", i, ev, err)
				}
			}
			st := m.Stats()
			if st.Sources > max || st.PeakSources > max {
				t.Fatalf("stats %+v with max_sources %d", st, max)
			}
			m.Expire(now + time.Hour)
			if err := checkSlabs(m); err != nil {
				t.Fatal(err)
			}
			if st := m.Stats(); st.Sources != 0 {
				t.Fatalf("%d sources left after everything expired", st.Sources)
			}
		})
	}
}

// TestSlabTableChurn fills and empties the table many times over, with a
// table small enough that chunks overflow into each other, and checks that
// every key is found while it is in and not after it is out.
func TestSlabTableChurn(t *testing.T) {
	tb := newTable(10, 100, 1, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	in := map[[16]byte]int32{}
	var keys [][16]byte
	for i := range 400 {
		keys = append(keys, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).As16())
	}
	for i := range 200_000 {
		k := keys[rng.IntN(len(keys))]
		if s, ok := in[k]; ok {
			if got := tb.lookup(&k); got != s {
				t.Fatalf("step %d: lookup = %d, want %d", i, got, s)
			}
			tb.remove(s)
			delete(in, k)
		} else if len(in) < tb.max {
			if got := tb.lookup(&k); got >= 0 {
				t.Fatalf("step %d: absent key found at %d", i, got)
			}
			in[k] = tb.insert(&k)
		}
		if tb.count != len(in) {
			t.Fatalf("step %d: count %d, want %d", i, tb.count, len(in))
		}
	}
	for k, s := range in {
		if got := tb.lookup(&k); got != s {
			t.Fatalf("lookup = %d, want %d", got, s)
		}
	}
	if tb.nslabs > tb.max+1 {
		t.Errorf("%d slabs for at most %d sources", tb.nslabs, tb.max)
	}
	t.Logf("%d of %d slabs used, %d chunks", len(in), tb.nslabs-1, tb.nchunks)
}
