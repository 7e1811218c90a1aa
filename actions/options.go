package actions

import (
	"log/slog"
	"net/netip"
	"time"

	"portknock/journal"
	"portknock/nftset"
)

// Defaults for the zero Options fields.
const (
	DefaultMaxConcurrent = 8
	// DefaultQueueSize lets a burst of tens of thousands of knockers
	// all open: a waiting start costs a few hundred bytes, and the
	// limit on opens is how fast commands can be forked, not memory.
	DefaultQueueSize      = 1 << 16
	DefaultCommandTimeout = 30 * time.Second
)

// Options tune a Runner. The zero value is usable.
type Options struct {
	// Logger receives one line per open, close, failure and refusal. Nil
	// discards them.
	Logger *slog.Logger
	// DryRun logs the command that would run and runs nothing; closes are
	// still scheduled, so the log shows the whole life of an open.
	DryRun bool
	// MaxConcurrent is how many start commands run at once (default 8).
	// Stop commands have as many slots of their own, so that a due close
	// never waits behind starts: at most twice this many commands run at
	// once.
	MaxConcurrent int
	// QueueSize is how many start requests may wait for a free worker
	// (default DefaultQueueSize). The queue drains at the rate the
	// workers run commands, and its depth is logged as it grows. Requests
	// beyond it are refused, counted and logged with door and src, so a
	// flood of matches cannot grow memory without bound.
	QueueSize int
	// CommandTimeout is the time limit per command (default 30s), each
	// run of a command its own; on expiry the command's whole process
	// group is killed.
	CommandTimeout time.Duration
	// Journal, when set, records every timed close before the start
	// command runs; an open whose close cannot be recorded is refused.
	// Nil keeps closes in memory only (tests, dry runs).
	Journal Journal
	// KeepOpenOnExit leaves journaled doors open at CloseAll, for the next
	// start to close on time; by default every pending close runs, and
	// every nftables set element the Runner added is removed.
	KeepOpenOnExit bool
	// Sets changes nftables sets for doors that name one.
	Sets Sets
}

// Sets adds and removes nftables set elements; *nftset.Conn is one.
type Sets interface {
	// Add adds addr with the timeout, or refreshes its timeout.
	Add(ref nftset.Ref, addr netip.Addr, timeout time.Duration) error
	// Delete removes addr; an error wrapping nftset.ErrNoElement means it
	// was gone already.
	Delete(ref nftset.Ref, addr netip.Addr) error
}

// Journal is where a Runner makes its pending closes durable;
// *journal.Journal is one.
type Journal interface {
	// Add records a close durably and returns its ID.
	Add(journal.Record) (uint64, error)
	// Extend records a later due time; it need not be durable at once.
	Extend(id uint64, due time.Time) error
	// Done records that a close ran or was given up; Sync makes it durable.
	Done(id uint64) error
	Sync() error
}

// Stats counts what a Runner did since it was made.
type Stats struct {
	// Started counts commands started (dry runs excluded).
	Started uint64
	// Failed counts commands that did not exit with status 0, including
	// those killed at the time limit and those that could not start. Each
	// run of a retried stop command counts.
	Failed uint64
	// TimedOut counts commands killed at the time limit.
	TimedOut uint64
	// Dropped counts start requests refused because the queue was full.
	Dropped uint64
	// Extended counts re-knocks that moved a pending close instead of
	// running the start command again.
	Extended uint64
	// Refused counts opens refused because the journal could not record
	// their close.
	Refused uint64
	// StopRetries counts failed stop commands scheduled to run again.
	StopRetries uint64
	// StopsGivenUp counts closes abandoned after their stop command failed
	// on every try: each of those doors may still be open, and was logged
	// as an error with door and src.
	StopsGivenUp uint64
	// PendingCloses is the number of (door, address) pairs opening, open
	// or closing whose stop command has not finished yet.
	PendingCloses int
	// Queued is the number of start commands waiting for a worker.
	Queued int
}
