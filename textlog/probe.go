package textlog

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ProbeInput opens the FIFO or file at path as Run would and closes it
// again, so that a daemon can report an input it cannot open before it says
// it has started. Stdin ("-") is not probed. A path that does not exist yet
// gives an error wrapping fs.ErrNotExist: Run waits for such a file, so
// that is a warning, not a reason to refuse the start. Trust is CheckInput's
// to judge.
func ProbeInput(path string) error {
	if path == "-" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	var f *os.File
	switch {
	case fi.Mode()&fs.ModeNamedPipe != 0:
		// As fifo opens it, without blocking for a writer.
		f, err = os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
	case fi.Mode().IsRegular():
		f, err = os.Open(path)
	default:
		return fmt.Errorf("%s is neither a FIFO nor a regular file (%v)", path, fi.Mode().Type())
	}
	if err != nil {
		return err
	}
	return f.Close()
}
