package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"portknock/input"
	"portknock/sequence"
)

// TestEmitter checks the one way every input hands on events: an input
// that waits gets its event in once there is room, or is refused when the
// daemon stops; one that does not wait is refused at once when the queue
// is full.
func TestEmitter(t *testing.T) {
	tests := []struct {
		name    string
		full    bool
		stopped bool
		mode    input.Mode
		want    bool
	}{
		{name: "room, no wait", mode: input.NoWait, want: true},
		{name: "room, wait", mode: input.Wait, want: true},
		{name: "full, no wait", full: true, mode: input.NoWait, want: false},
		{name: "full, wait, stopping", full: true, stopped: true, mode: input.Wait, want: false},
		{name: "room, wait, stopping", stopped: true, mode: input.Wait, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Daemon{events: make(chan sequence.Event, 1), mono: func() time.Duration { return 42 }}
			if tt.full {
				d.events <- sequence.Event{Port: 1}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.stopped {
				cancel()
			}
			ev := sequence.Event{Port: 7000}
			if got := d.emitter(ctx)(&ev, tt.mode); got != tt.want {
				t.Fatalf("emit = %v, want %v", got, tt.want)
			}
			if tt.full {
				<-d.events
			}
			select {
			case got := <-d.events:
				if !tt.want || got.Port != 7000 || got.Mono != 42 {
					t.Errorf("queued %+v; want it taken: %v, stamped Mono 42", got, tt.want)
				}
			default:
				if tt.want {
					t.Error("emit reported the event taken, but it is not queued")
				}
			}
		})
	}

	t.Run("full, wait, room made", func(t *testing.T) {
		d := &Daemon{events: make(chan sequence.Event, 1), mono: func() time.Duration { return 0 }}
		d.events <- sequence.Event{Port: 1}
		taken := make(chan bool, 1)
		go func() {
			ev := sequence.Event{Port: 7000}
			taken <- d.emitter(context.Background())(&ev, input.Wait)
		}()
		if ev := <-d.events; ev.Port != 1 {
			t.Fatalf("first event %+v", ev)
		}
		select {
		case ev := <-d.events:
			if ev.Port != 7000 {
				t.Errorf("second event %+v, want port 7000", ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the waiting event never came")
		}
		if !<-taken {
			t.Error("emit reported the event not taken")
		}
	})
}

// TestInputTotals runs a daemon on stdin to its end: the inputs ending
// stops the loop, the open its last knock asked for runs, the runner then
// closes the door, and each input's counters, the same shape for every
// kind, are readable and logged.
func TestInputTotals(t *testing.T) {
	stdin, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	sig := mkfifo(t, "signal")
	ch := signals(t, sig)
	var logs syncBuffer
	d, err := New(doorConfig(t, "-", sig, ""), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Stdin: stdin})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	for _, l := range []string{"7000 192.0.2.10", "not a knock line", "8000/tcp 192.0.2.10", "9000/udp 192.0.2.10"} {
		fmt.Fprintln(w, l)
	}
	w.Close()
	expect(t, ch, "open ssh 192.0.2.10")
	expect(t, ch, "close ssh 192.0.2.10")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not stop at the end of stdin")
	}

	stats := d.InputStats()
	if len(stats) != 1 {
		t.Fatalf("%d inputs, want 1", len(stats))
	}
	st := stats[0]
	if st.Unit != "lines" || st.Read != 4 || st.Events != 3 || st.Dropped != 0 || st.Skipped[input.ReasonUnrecognized] != 1 || st.SkippedTotal() != 1 {
		t.Errorf("input stats %+v", st)
	}
	want := fmt.Sprintf(`msg="input totals" input=%s lines=4 events=3 skipped=1 queue_overflow=0`+"\n", st.Name)
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
}
