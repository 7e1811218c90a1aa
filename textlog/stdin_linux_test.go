package textlog

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"unsafe"

	"portknock/sequence"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	rc, err := master.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n uint32
	var unlock int32
	var ioctlErr error
	err = rc.Control(func(fd uintptr) {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
			ioctlErr = e
			return
		}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
			ioctlErr = e
		}
	})
	if err == nil {
		err = ioctlErr
	}
	if err != nil {
		t.Skipf("cannot set up a pseudo-terminal: %v", err)
	}
	// Opened like a shell opens a terminal, in blocking mode, and wrapped
	// like os.Stdin is.
	name := "/dev/pts/" + strconv.Itoa(int(n))
	fd, err := syscall.Open(name, syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("cannot open the pseudo-terminal: %v", err)
	}
	slave = os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

func isNonblock(t *testing.T, f *os.File) bool {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags uintptr
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		flags, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	}); err != nil || errno != 0 {
		t.Fatalf("fcntl: %v %v", err, errno)
	}
	return flags&syscall.O_NONBLOCK != 0
}

// TestSourceStdinTerminal runs a source on a terminal, the case of a
// daemon started by hand, and checks that cancellation interrupts the
// read and that the terminal is left in blocking mode for the shell.
func TestSourceStdinTerminal(t *testing.T) {
	master, slave := openPTY(t)
	if isNonblock(t, slave) {
		t.Fatal("test setup: terminal starts non-blocking")
	}
	s := &Source{Name: "stdin", Path: "-", Stdin: slave}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, done := run(t, ctx, s)
	if _, err := master.WriteString("7000 192.0.2.7\n"); err != nil {
		t.Fatal(err)
	}
	expect(t, events, done, knock("stdin", "192.0.2.7", 7000, sequence.TCP))
	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Run = %v, want nil after cancellation", err)
	}
	if isNonblock(t, slave) {
		t.Error("the terminal was left in non-blocking mode")
	}
}
