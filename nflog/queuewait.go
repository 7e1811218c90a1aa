package nflog

import (
	"context"
	"time"

	"portknock/input"
	"portknock/sequence"
)

// When the matcher's queue is full, a socket's reader waits for room
// instead of dropping the event at once: the messages behind it stay in
// the socket's receive buffer, which holds far more than the queue
// (DefaultReadBuffer), so a matcher that could not run for a while on a
// busy machine loses nothing. The wait is bounded: a matcher stalled for
// longer gets its events dropped and counted, as before, and the reader
// keeps draining the socket, so the kernel's sequence numbers stay
// meaningful and the socket does not sit full. Once a wait has run out,
// events are dropped without waiting until the queue takes one again.
const (
	// queueWaitMax is the longest a reader waits for room for one event:
	// on a machine with a load average near 20 the matcher was once held
	// off for more than 100 ms, and the receive buffer holds several
	// times 250 ms of the fastest flood measured here, batched.
	queueWaitMax = 250 * time.Millisecond
	// queueWaitFirst and queueWaitStep bound the pauses between tries:
	// short at first, as a matcher that was only descheduled comes back
	// within a scheduler tick.
	queueWaitFirst = 20 * time.Microsecond
	queueWaitStep  = time.Millisecond
)

// queueWaiter hands events on for one socket's receive goroutine, waiting
// for room when the queue is full. It is not safe for concurrent use.
type queueWaiter struct {
	emit  input.Emit
	done  <-chan struct{} // the receive loop's ctx.Done(): hand is an input.Emit and takes no context
	max   time.Duration   // queueWaitMax, shorter in tests
	timer *time.Timer     // reused for every pause; nil until the first
	// giveUp: the last wait ran out and no event has been taken since.
	giveUp bool
	// waits counts the events that had to wait, for tests.
	waits uint64
}

func newQueueWaiter(ctx context.Context, emit input.Emit) *queueWaiter {
	return &queueWaiter{emit: emit, done: ctx.Done(), max: queueWaitMax}
}

// hand is an input.Emit: it hands ev on, reporting false when it was
// dropped: the queue stayed full for the longest wait, or ctx ended.
// With input.Wait, emit does the waiting.
func (w *queueWaiter) hand(ev *sequence.Event, mode input.Mode) bool {
	if w.emit(ev, mode) {
		w.giveUp = false
		return true
	}
	if w.giveUp || mode != input.NoWait {
		return false
	}
	w.waits++
	var waited time.Duration
	for pause := queueWaitFirst; waited < w.max; pause = min(pause*2, queueWaitStep) {
		pause = min(pause, w.max-waited)
		if !w.sleep(pause) {
			return false
		}
		waited += pause
		if w.emit(ev, mode) {
			return true
		}
	}
	w.giveUp = true
	return false
}

// sleep pauses for d, reporting false when ctx ended first.
func (w *queueWaiter) sleep(d time.Duration) bool {
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.timer.C:
		return true
	case <-w.done:
		w.timer.Stop()
		return false
	}
}
