package textlog

import (
	"bufio"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"
)

// DefaultMaxLine is the longest line, in bytes without the line ending,
// that is parsed when no limit is given. Firewall log lines are a few
// hundred bytes; anything far longer is junk or an attack on memory.
const DefaultMaxLine = 4096

// minBuffer keeps reads large even when lines are limited to be short, so
// that a busy log costs few system calls.
const minBuffer = 32 << 10

// LineStats counts what ReadLines saw.
type LineStats struct {
	// Lines is the number of lines handed to the callback.
	Lines uint64
	// TooLong is the number of lines longer than the limit, skipped.
	TooLong uint64
}

// lineCounters are updated while reading so that a Source can report them
// while it runs.
type lineCounters struct {
	lines   atomic.Uint64
	tooLong atomic.Uint64
}

// ReadLines calls fn for every line of r until EOF or until ctx ends. The
// line excludes its "\n" and one trailing "\r". It is valid only during the
// call: the bytes are r's buffer, which is how reading stays free of
// allocations. A last line without a newline is still a line.
//
// Lines longer than maxLen bytes (DefaultMaxLine when maxLen <= 0) are
// skipped up to the next newline and counted, without being buffered
// whole. Bytes are not interpreted, so NUL bytes and invalid UTF-8 are
// simply part of a line.
//
// ReadLines returns nil at EOF and ctx.Err() when ctx ends. A blocked Read
// is interrupted only if r has a SetReadDeadline method, as pipes, FIFOs and
// network connections do; ReadLines then sets a deadline in the past when
// ctx ends, and leaves it set.
func ReadLines(ctx context.Context, r io.Reader, maxLen int, fn func(line []byte)) (LineStats, error) {
	if maxLen <= 0 {
		maxLen = DefaultMaxLine
	}
	var c lineCounters
	err := readLinesFrom(ctx, r, newLineBuffer(r, maxLen), maxLen, &c, fn)
	return LineStats{Lines: c.lines.Load(), TooLong: c.tooLong.Load()}, err
}

// newLineBuffer returns a reader whose buffer can hold any line that is not
// too long, including its "\r\n"; a full buffer then proves a line too long.
func newLineBuffer(r io.Reader, maxLen int) *bufio.Reader {
	return bufio.NewReaderSize(r, max(maxLen+2, minBuffer))
}

type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// readLinesFrom is ReadLines on br (which reads from r), arranging for ctx
// to interrupt r's blocked reads where r allows it.
func readLinesFrom(ctx context.Context, r io.Reader, br *bufio.Reader, maxLen int, c *lineCounters, fn func([]byte)) error {
	if d, ok := r.(readDeadliner); ok {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			// A past deadline makes the pending and every later Read fail
			// at once; the error is ErrNoDeadline for files that never
			// block, which need no interrupting.
			_ = d.SetReadDeadline(time.Unix(1, 0))
		})
		defer func() {
			if !stop() {
				<-fired // the callback ran or is running; let it finish
			}
		}()
	}
	return readLines(ctx, br, maxLen, c, fn)
}

// readLines is the loop behind ReadLines. br's buffer must be at least
// maxLen+2 bytes. An unterminated line at EOF is a line.
func readLines(ctx context.Context, br *bufio.Reader, maxLen int, c *lineCounters, fn func([]byte)) error {
	skipping := false // inside a line already counted as too long
	for {
		if br.Buffered() == 0 {
			// Only a refill can block, so this is where to notice ctx;
			// checking per line would cost the hot path for nothing.
			select {
			case <-ctx.Done():
				return ctx.Err()
			default:
			}
		}
		b, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if skipping {
				skipping = false
				continue
			}
			deliver(b[:len(b)-1], maxLen, c, fn)
		case errors.Is(err, bufio.ErrBufferFull):
			if !skipping {
				c.tooLong.Add(1)
				skipping = true
			}
		case errors.Is(err, io.EOF):
			if len(b) > 0 && !skipping {
				deliver(b, maxLen, c, fn)
			}
			return nil
		default:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// deliver hands one line, without its "\n", to fn unless it is too long.
func deliver(line []byte, maxLen int, c *lineCounters, fn func([]byte)) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > maxLen {
		c.tooLong.Add(1)
		return
	}
	c.lines.Add(1)
	fn(line)
}
