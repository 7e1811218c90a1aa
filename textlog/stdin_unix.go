//go:build unix

package textlog

import (
	"io/fs"
	"os"
	"syscall"
	"time"
)

// pollable returns a file reading the same input as in whose blocked reads
// can be interrupted, and a function to call when done with it.
//
// os.Stdin is made with os.NewFile from a descriptor that is normally in
// blocking mode, so Go reads it with a blocking system call that neither
// Close nor a deadline can interrupt. A duplicate of the descriptor put in
// non-blocking mode is wrapped by os.NewFile as pollable instead. Only
// pipes, FIFOs, sockets and terminals need this: reads of regular files
// never block. The mode belongs to the open file description, which other
// processes may share (the shell, for a terminal), so release puts it back
// in the blocking mode programs expect of stdin.
func pollable(in *os.File) (*os.File, func(), error) {
	nop := func() {}
	fi, err := in.Stat()
	if err != nil {
		return nil, nop, err
	}
	if fi.Mode()&(fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice) == 0 {
		return in, nop, nil
	}
	rc, err := in.SyscallConn()
	if err != nil {
		return in, nop, nil
	}
	fd := -1
	var dupErr error
	// Control, unlike Fd, leaves the descriptor's mode alone.
	err = rc.Control(func(orig uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		fd, dupErr = syscall.Dup(int(orig))
		if dupErr == nil {
			syscall.CloseOnExec(fd)
		}
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		return nil, nop, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return in, nop, nil
	}
	f := os.NewFile(uintptr(fd), in.Name())
	release := func() {
		f.Close()
		_ = rc.Control(func(orig uintptr) { _ = syscall.SetNonblock(int(orig), false) })
	}
	// Devices the poller cannot watch (such as /dev/null) do not take
	// deadlines; they are read as they are, since they do not block.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		release()
		return in, nop, nil
	}
	return f, release, nil
}
