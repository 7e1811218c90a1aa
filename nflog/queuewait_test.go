package nflog

import (
	"context"
	"testing"
	"time"

	"portknock/input"
	"portknock/sequence"
)

// fullQueue is an emit whose queue takes an event only after refusing
// refuse times.
type fullQueue struct {
	refuse, tries, taken int
}

func (q *fullQueue) emit(_ *sequence.Event, mode input.Mode) bool {
	if mode != input.NoWait {
		panic("an NFLOG reader must not ask to wait")
	}
	q.tries++
	if q.refuse > 0 {
		q.refuse--
		return false
	}
	q.taken++
	return true
}

func TestQueueWaiter(t *testing.T) {
	var ev sequence.Event
	t.Run("room at once", func(t *testing.T) {
		q := &fullQueue{}
		w := newQueueWaiter(context.Background(), q.emit)
		if !w.hand(&ev, input.NoWait) || q.tries != 1 || w.waits != 0 {
			t.Errorf("tries %d, waits %d", q.tries, w.waits)
		}
	})
	t.Run("room after a wait", func(t *testing.T) {
		q := &fullQueue{refuse: 3}
		w := newQueueWaiter(context.Background(), q.emit)
		if !w.hand(&ev, input.NoWait) || q.taken != 1 || q.tries != 4 || w.waits != 1 {
			t.Errorf("taken %d, tries %d, waits %d", q.taken, q.tries, w.waits)
		}
	})
	t.Run("no room: dropped after the longest wait, then dropped at once until room", func(t *testing.T) {
		q := &fullQueue{refuse: 1 << 30}
		w := newQueueWaiter(context.Background(), q.emit)
		w.max = 2 * time.Millisecond
		if w.hand(&ev, input.NoWait) {
			t.Fatal("taken by a full queue")
		}
		tries := q.tries
		if tries < 2 {
			t.Errorf("%d tries, want a wait between them", tries)
		}
		if w.hand(&ev, input.NoWait) || q.tries != tries+1 {
			t.Errorf("after a wait ran out: %d more tries, want 1 without waiting", q.tries-tries)
		}
		q.refuse = 0
		if !w.hand(&ev, input.NoWait) {
			t.Error("not taken once the queue has room")
		}
		q.refuse = 2
		if !w.hand(&ev, input.NoWait) || w.waits != 2 {
			t.Errorf("after room again: waits %d, want a second wait that succeeds", w.waits)
		}
	})
	t.Run("ctx ends the wait", func(t *testing.T) {
		q := &fullQueue{refuse: 1 << 30}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		w := newQueueWaiter(ctx, q.emit)
		w.max = time.Hour
		done := make(chan bool)
		go func() { done <- w.hand(&ev, input.NoWait) }()
		select {
		case ok := <-done:
			if ok {
				t.Error("taken by a full queue")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("wait not ended by ctx")
		}
	})
}
