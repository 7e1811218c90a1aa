package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"portknock/sequence"
)

// MaxListed bounds the attempts in progress a snapshot lists; the total
// is always counted. It keeps a status reply small under a flood.
const MaxListed = 100

// snapshotMaxAge is how long a snapshot serves later questions: however
// often the metrics are scraped or the status asked, the matcher's loop
// takes one at most this often.
const snapshotMaxAge = 500 * time.Millisecond

// snapshot is what the matcher's goroutine hands over: its counters
// copied, and the attempts in progress, so that no other goroutine ever
// reads the matcher.
type snapshot struct {
	taken         time.Duration // on d.mono: a wall-clock step does not age it
	doorNames     []string      // the doors configured now
	stats         sequence.Stats
	doors, ranges map[string]sequence.DoorStats
	attempts      []sequence.Attempt
	attemptsTotal int
}

// snapshots hands snapshots from the loop to whoever asks.
type snapshots struct {
	req      chan chan *snapshot // the loop answers on the channel sent
	loopDone chan struct{}       // closed when the loop has returned

	mu   sync.Mutex // one question to the loop at a time; guards last
	last *snapshot
}

func newSnapshots() snapshots {
	return snapshots{req: make(chan chan *snapshot), loopDone: make(chan struct{})}
}

// errNotRunning is snapshot's error when the loop is not there to ask.
var errNotRunning = errors.New("the daemon's matcher is not running")

// snapshot returns the matcher's state, at most snapshotMaxAge old. It
// waits for the loop at most until ctx ends; once the loop has returned,
// the last snapshot taken stands.
func (d *Daemon) snapshot(ctx context.Context) (*snapshot, error) {
	s := &d.snaps
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil && d.mono()-s.last.taken < snapshotMaxAge {
		return s.last, nil
	}
	reply := make(chan *snapshot, 1)
	select {
	case s.req <- reply:
	case <-s.loopDone:
		if s.last != nil {
			return s.last, nil
		}
		return nil, errNotRunning
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The loop answers without waiting: reply has room.
	s.last = <-reply
	return s.last, nil
}

// takeSnapshot copies the matcher's state; only the loop calls it.
func (d *Daemon) takeSnapshot() *snapshot {
	s := &snapshot{taken: d.mono(), stats: d.matcher.Stats()}
	s.doors, s.ranges = d.matcher.DoorStats()
	s.attempts, s.attemptsTotal = d.matcher.Attempts(s.taken, MaxListed)
	for i := range d.cfg.Doors {
		s.doorNames = append(s.doorNames, d.cfg.Doors[i].Name)
	}
	return s
}
