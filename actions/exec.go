package actions

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// outputTail is how much of a command's output is kept for the log: enough
// for an error message, bounded so a chatty command cannot grow memory.
const outputTail = 512

// waitDelay bounds how long Wait keeps reading output after the command
// has exited or been killed. Without it a background grandchild that
// inherited the output pipe (knockd's "(sleep 30; iptables -D ...) &"
// idiom) would hold the worker until it exits.
const waitDelay = time.Second

// result is what became of one command.
type result struct {
	// err is nil when the command ran and exited with status 0.
	err error
	// exitCode is the exit status, or -1 when the command did not exit on
	// its own (killed, or never started).
	exitCode int
	// signal names the signal that ended the command, if one did.
	signal string
	// timedOut is set when the command was killed at its time limit.
	timedOut bool
	// output is the tail of its combined stdout and stderr, and stderr
	// the tail of stderr alone: on failure the error message is there,
	// and must not be pushed out by a chatty stdout.
	output, stderr string
}

// execCommand runs c in its own process group and waits for it. The whole
// group is killed with SIGKILL when ctx ends or timeout passes, so that a
// shell's children die with it instead of lingering as orphans.
func execCommand(ctx context.Context, c Command, timeout time.Duration) result {
	if err := c.Validate(); err != nil {
		return result{err: err, exitCode: -1}
	}
	cmdCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var cmd *exec.Cmd
	if c.Shell != "" {
		cmd = exec.CommandContext(cmdCtx, "/bin/sh", "-c", c.Shell)
	} else {
		cmd = exec.CommandContext(cmdCtx, c.Argv[0], c.Argv[1:]...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// killed is set when the group was killed: only a command that then
	// died of SIGKILL was ended by the time limit (or shutdown). One that
	// exited by itself is judged by its exit status, even if the deadline
	// passed while Wait read what a background child still wrote, or the
	// kill came just after it exited.
	killed := false
	cmd.Cancel = func() error {
		killed = true
		// The group id is the leader's pid (Setpgid with Pgid 0). The
		// kernel does not reuse a pid while a group of that id exists, so
		// this cannot hit an unrelated process.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = waitDelay
	// Two pipes, each read by a goroutine of exec's: the combined tail
	// is locked, and keeps the order of the writes as they were read.
	tail, errTail := &tailBuffer{}, &tailBuffer{}
	cmd.Stdout = tail
	cmd.Stderr = io.MultiWriter(tail, errTail)

	err := cmd.Run()
	res := result{err: err, exitCode: -1, output: tail.String(), stderr: errTail.String()}
	if ps := cmd.ProcessState; ps != nil {
		res.exitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.signal = ws.Signal().String()
		}
	}
	switch {
	case killed && res.signal == syscall.SIGKILL.String() && errors.Is(cmdCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		res.timedOut = true
		res.err = errTimedOut
	case errors.Is(err, exec.ErrWaitDelay) && res.exitCode == 0 && ctx.Err() == nil:
		// The command succeeded and left a background process holding
		// its output; that is the command's business, not a failure.
		res.err = nil
	}
	return res
}

var errTimedOut = errors.New("time limit reached, process group killed")

// tailBuffer keeps the last outputTail bytes written to it. It is safe for
// concurrent writes.
type tailBuffer struct {
	mu        sync.Mutex
	buf       []byte
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= outputTail {
		t.truncated = t.truncated || len(t.buf) > 0 || len(p) > outputTail
		t.buf = append(t.buf[:0], p[len(p)-outputTail:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - outputTail; over > 0 {
		t.truncated = true
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String returns the kept bytes, marked with "…" when earlier output was
// dropped.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.truncated {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}
