package textlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// followPoll is how often a followed file at its end is checked for new
// lines, truncation and rotation. A knock's timing is measured from when
// its line is read, so this only delays a door by as much.
const followPoll = 100 * time.Millisecond

// follower is an io.Reader over a log file that never ends, as tail -F
// reads: a file that does not exist yet is waited for and read from its
// start once it appears; at the end of the file it waits for more; when the file shrinks
// (truncated in place) it starts again from the top; when the path names a
// new file (rotated by rename), it reads what is left of the old one, then
// goes on with the new one from its start, so no line is lost or read
// twice across a rotation. Read returns errStopped once stop is closed.
type follower struct {
	// stop ends a wait for more lines: a Reader's Read takes no context,
	// so the caller's Done channel stands in for one.
	stop <-chan struct{}
	path string
	log  *slog.Logger
	f    *os.File // nil while the file does not exist yet
	off  int64    // bytes of f consumed
	poll time.Duration
}

// followingFile is logged once a file is open at its end.
const followingFile = "following file from its end"

// waitingForFile is logged, once, when a followed file does not exist yet;
// appearedFile when it then appears.
const (
	waitingForFile = "followed file does not exist yet; waiting for it"
	appearedFile   = "followed file appeared; reading it from its start"
)

// errStopped is what Read returns once the follower's stop is closed.
var errStopped = errors.New("stopped following")

// openFollower opens path positioned at its end: lines already in the log
// are history, and replaying them would complete old knocks now. A path
// that does not exist yet is no error: a service may create its log after
// the daemon starts (or logrotate may be between a rename and a create), so
// the follower waits for it, as tail -F does, and reads it from its start,
// since every line in a new file is news. Closing stop ends a Read waiting
// for more.
func openFollower(stop <-chan struct{}, path string, log *slog.Logger) (*follower, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		log.Warn(waitingForFile, "path", path, "err", err)
		return &follower{stop: stop, path: path, log: log, poll: followPoll}, nil
	}
	if err != nil {
		return nil, err
	}
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, err
	}
	log.Info(followingFile, "path", path)
	return &follower{stop: stop, path: path, log: log, f: f, off: off, poll: followPoll}, nil
}

func (fl *follower) Close() error {
	if fl.f == nil {
		return nil
	}
	return fl.f.Close()
}

func (fl *follower) Read(p []byte) (int, error) {
	for {
		if fl.f == nil {
			if err := fl.appear(); err != nil {
				return 0, err
			}
			if fl.f == nil {
				if err := fl.sleep(); err != nil {
					return 0, err
				}
				continue
			}
		}
		n, err := fl.f.Read(p)
		fl.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if moved, err := fl.checkFile(); err != nil {
			return 0, err
		} else if moved {
			continue
		}
		if err := fl.sleep(); err != nil {
			return 0, err
		}
	}
}

// sleep waits one poll interval, or until stop is closed.
func (fl *follower) sleep() error {
	t := time.NewTimer(fl.poll)
	defer t.Stop()
	select {
	case <-fl.stop:
		return errStopped
	case <-t.C:
		return nil
	}
}

// appear opens the followed file once it exists, judged as a file present
// at start would have been. Until then it leaves fl.f nil.
func (fl *follower) appear() error {
	fi, err := os.Stat(fl.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		// A FIFO would block the open, and reading a device is not
		// following a log.
		return fmt.Errorf("%s appeared, but is not a regular file (%v)", fl.path, fi.Mode().Type())
	}
	if err := CheckInput(fl.path, uint32(os.Geteuid())); err != nil {
		return err
	}
	f, err := os.Open(fl.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // gone again: wait on
	}
	if err != nil {
		return err
	}
	fl.log.Info(appearedFile, "path", fl.path)
	fl.f, fl.off = f, 0
	return nil
}

// checkFile looks for truncation and rotation once the open file is read
// to its end, and reports whether reading should go on at once.
func (fl *follower) checkFile() (bool, error) {
	cur, err := fl.f.Stat()
	if err != nil {
		return false, err
	}
	if cur.Size() > fl.off {
		return true, nil // written since the read that hit the end
	}
	if cur.Size() < fl.off {
		fl.log.Info("followed file was truncated; reading from its start", "path", fl.path)
		if _, err := fl.f.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		fl.off = 0
		return true, nil
	}
	next, err := os.Stat(fl.path)
	if err != nil || os.SameFile(cur, next) {
		// Gone (between a rename and the new file's creation) or
		// unchanged: wait and look again.
		return false, nil
	}
	// Rotated. What was written to the old file between the look at its
	// size above and the look at the path is still to be read: only once
	// the new file exists and the old one is read to its end, move on.
	if cur, err = fl.f.Stat(); err != nil {
		return false, err
	}
	if cur.Size() > fl.off {
		return true, nil
	}
	// The new file is judged as the first was: rotation must not be a way
	// to hand the daemon a file someone else can write.
	if err := CheckInput(fl.path, uint32(os.Geteuid())); err != nil {
		return false, fmt.Errorf("after rotation: %w", err)
	}
	nf, err := os.Open(fl.path)
	if err != nil {
		return false, nil
	}
	fl.log.Info("followed file was rotated; reading the new one", "path", fl.path)
	fl.f.Close()
	fl.f, fl.off = nf, 0
	return true, nil
}
