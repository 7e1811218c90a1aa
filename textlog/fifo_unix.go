//go:build unix

package textlog

import (
	"context"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// openFIFO opens the FIFO at path for reading, which blocks until a writer
// opens it. It returns a nil file and no error if ctx ends first.
//
// The blocking open(2) cannot be interrupted, so it runs in its own
// goroutine, and when ctx ends this function releases it by opening the
// FIFO for writing itself (non-blocking, which succeeds once a reader is
// waiting), then closes what the open returned. The goroutine thus ends
// with ctx, as every goroutine of a Source must.
func openFIFO(ctx context.Context, path string, log *slog.Logger) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		done <- result{f, err}
	}()
	select {
	case res := <-done:
		return res.f, res.err
	case <-ctx.Done():
	}

	// The opener may not have reached open(2) yet, in which case there is
	// no reader and the releasing open fails with ENXIO; retry until the
	// opener reports back. Give up after a while rather than hang a
	// shutdown: that only happens if the path was replaced under a blocked
	// open, and then the goroutine ends with the process.
	retry := time.NewTicker(5 * time.Millisecond)
	defer retry.Stop()
	giveUp := time.NewTimer(2 * time.Second)
	defer giveUp.Stop()
	var w *os.File
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	for {
		if w == nil {
			w, _ = os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		}
		select {
		case res := <-done:
			if res.f != nil {
				res.f.Close()
			}
			return nil, nil
		case <-retry.C:
		case <-giveUp.C:
			log.Warn("could not release the FIFO open blocked at shutdown", "path", path)
			return nil, nil
		}
	}
}
