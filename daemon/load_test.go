package daemon

import (
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// floodSources is how many distinct spoofed sources TestSpoofedFloodByText
// sends: a million in a normal run. The race detector slows every memory
// access of the daemon several times over, so under it (raceEnabled) and
// with -short the flood is scaled down; the bounds it checks do not depend
// on the size.
func floodSources() int {
	switch {
	case testing.Short():
		return 50_000
	case raceEnabled:
		return 200_000
	}
	return 1_000_000
}

// TestSpoofedFloodByText drives the whole daemon with a flood of first
// knocks on stdin, each line from a source never seen before, and a real
// knock in the middle of it. The matcher must never track more than
// max_sources, the heap must stay far below what keeping every source
// would take, and the real knock must open its door while the flood goes
// on.
//
// Not parallel: the flood keeps the CPUs busy for seconds, and other tests
// have tight real-time windows.
func TestSpoofedFloodByText(t *testing.T) {
	const (
		maxSources = 10_000
		// The heap may hold what the test and an idle daemon need (about
		// 2 MiB) and up to 256 bytes per tracked source. A tracked source
		// takes about 100 bytes, so keeping every source would exceed the
		// bound at about 45 000 of them: even the smallest flood (-short,
		// -race) would fail it with an unbounded table.
		heapBound = 4<<20 + maxSources*256
		real      = "192.0.2.7"
		// Flood lines between the real knock's steps. An attempt at its
		// first step is as exposed to eviction as any spoofed one, so the
		// gap must stay below maxSources.
		stepGap = 1000
	)
	n := floodSources()
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	cfg := doorConfig(t, "-", sig, "")
	cfg.Daemon.MaxSources = maxSources
	d, pw, logs := startOnPipe(t, cfg)

	// The writer samples the heap ten times during the flood, each after
	// a collection, so what is measured is what is kept.
	var written atomic.Int64
	samples := make(chan uint64, 16)
	writeErr := make(chan error, 1)
	began := time.Now()
	go func() {
		defer close(samples)
		steps := map[int]string{
			n / 2:               "7000/tcp " + real,
			n/2 + stepGap:       "8000/tcp " + real,
			n/2 + 2*stepGap + 1: "9000/udp " + real,
		}
		buf := make([]byte, 0, 64<<10)
		flush := func() error {
			_, err := pw.Write(buf)
			buf = buf[:0]
			return err
		}
		for i := range n {
			if s, ok := steps[i]; ok {
				buf = append(append(buf, s...), '\n')
			}
			// 10.0.0.0 + i: a million distinct addresses.
			buf = append(buf, "7000 10."...)
			buf = strconv.AppendInt(buf, int64(i>>16&0xff), 10)
			buf = append(buf, '.')
			buf = strconv.AppendInt(buf, int64(i>>8&0xff), 10)
			buf = append(buf, '.')
			buf = strconv.AppendInt(buf, int64(i&0xff), 10)
			buf = append(buf, '\n')
			if len(buf) > cap(buf)-64 {
				if err := flush(); err != nil {
					writeErr <- err
					return
				}
			}
			written.Store(int64(i + 1))
			if (i+1)%(n/10) == 0 {
				samples <- heapInUse()
			}
		}
		err := flush()
		if err == nil {
			err = pw.Close()
		}
		writeErr <- err
	}()

	// The door opens halfway through the flood, which takes 1 to 13 s
	// (idle machine, -race on a busy one); the time limits are for a
	// daemon that stopped, not one that is slow.
	const floodWait = 2 * time.Minute
	expectWithin(t, ch, "open ssh "+real, floodWait)
	if w := written.Load(); w >= int64(n) {
		t.Errorf("door opened after the whole flood was written; want it open while the flood goes on")
	} else {
		t.Logf("door opened with %d of %d flood lines written", w, n)
	}
	// The end of stdin stops the daemon, which closes the door.
	expectWithin(t, ch, "close ssh "+real, floodWait)
	if err := <-writeErr; err != nil {
		t.Fatalf("writing the flood: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(floodWait):
		t.Fatal("daemon did not stop at the end of stdin")
	}
	elapsed := time.Since(began)
	if d.err != nil {
		t.Fatalf("Run: %v", d.err)
	}
	var peakHeap uint64
	for s := range samples {
		peakHeap = max(peakHeap, s)
	}
	end := heapInUse()
	runtime.KeepAlive(d)
	t.Logf("%d lines in %v (%.0f lines/s); heap in use after GC: at most %.1f MiB during the flood, %.1f MiB at the end",
		n+3, elapsed.Round(time.Millisecond), float64(n+3)/elapsed.Seconds(), float64(peakHeap)/(1<<20), float64(end)/(1<<20))
	if peakHeap > heapBound || end > heapBound {
		t.Errorf("heap in use after GC reached %d bytes (%d at the end), want at most %d", peakHeap, end, heapBound)
	}

	// Run has returned: the matcher is no longer in use.
	st := d.matcher.Stats()
	t.Logf("matcher: %+v", st)
	if st.PeakSources > maxSources {
		t.Errorf("matcher tracked up to %d sources, want at most max_sources %d", st.PeakSources, maxSources)
	}
	if st.Sources != maxSources {
		t.Errorf("matcher tracks %d sources at the end, want a full table of %d", st.Sources, maxSources)
	}
	// Every spoofed source and the real one were tracked once; the real
	// one left on its match, a full table is left, and every other source
	// made room by an eviction: none expired within seq_timeout.
	if want := uint64(n - maxSources); st.Evictions != want {
		t.Errorf("matcher evicted %d sources, want %d", st.Evictions, want)
	}
	if st.Events != uint64(n+3) || st.Matches != 1 || st.Timeouts != 0 {
		t.Errorf("matcher saw %d events, %d matches, %d timeouts; want %d, 1, 0", st.Events, st.Matches, st.Timeouts, n+3)
	}
	if got := strings.Count(logs.String(), `msg="knock sequence complete"`); got != 1 {
		t.Errorf("%d sequences completed, want 1", got)
	}
}

// heapInUse collects garbage and returns the bytes of heap spans in use.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
