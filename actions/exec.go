package actions

import (
	"context"
	"errors"
	"os"
	"os/exec"
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
	// timedOut is set when the command was killed at its time limit.
	timedOut bool
	// output is the tail of its combined stdout and stderr.
	output string
}

// execCommand runs c in its own process group and waits for it. The whole
// group is killed with SIGKILL when ctx ends or timeout passes, so that a
// shell's children die with it instead of lingering as orphans.
func execCommand(ctx context.Context, c Command, timeout time.Duration) result {
	if err := validateCommand(c); err != nil {
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
	cmd.Cancel = func() error {
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
	// One writer for both streams: exec then uses a single pipe, so the
	// tail keeps the order the command wrote in and needs no lock.
	tail := &tailBuffer{}
	cmd.Stdout = tail
	cmd.Stderr = tail

	err := cmd.Run()
	res := result{err: err, exitCode: -1, output: tail.String()}
	if cmd.ProcessState != nil {
		res.exitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case errors.Is(cmdCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
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

// tailBuffer keeps the last outputTail bytes written to it.
type tailBuffer struct {
	buf       []byte
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
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
	if t.truncated {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}
