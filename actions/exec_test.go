package actions

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExecCommand(t *testing.T) {
	tests := []struct {
		name       string
		cmd        Command
		wantErr    bool
		wantExit   int
		wantOutput string
	}{
		{"shell success", Command{Shell: "echo out; sleep 0.1; echo err >&2"}, false, 0, "out\nerr\n"},
		{"shell exit status and stderr", Command{Shell: "echo 'nft: no such set' >&2; exit 3"}, true, 3, "nft: no such set\n"},
		{"argv keeps arguments whole", Command{Argv: []string{"/bin/sh", "-c", `printf '[%s]' "$1"`, "sh", "a b;c"}}, false, 0, "[a b;c]"},
		{"argv found on PATH", Command{Argv: []string{"true"}}, false, 0, ""},
		{"argv program missing", Command{Argv: []string{"/nonexistent/portknock-test"}}, true, -1, ""},
		{"both forms set", Command{Shell: "true", Argv: []string{"true"}}, true, -1, ""},
		{"stdin is empty", Command{Shell: "cat; echo done"}, false, 0, "done\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := execCommand(t.Context(), tt.cmd, 10*time.Second)
			if (res.err != nil) != tt.wantErr {
				t.Errorf("err = %v, want error: %v", res.err, tt.wantErr)
			}
			if res.exitCode != tt.wantExit {
				t.Errorf("exit = %d, want %d", res.exitCode, tt.wantExit)
			}
			if res.output != tt.wantOutput {
				t.Errorf("output = %q, want %q", res.output, tt.wantOutput)
			}
			if res.timedOut {
				t.Errorf("timedOut set")
			}
		})
	}
}

// TestExecTimeoutKillsGroup checks that the time limit kills the shell's
// child too, not only the shell. The child holds a FIFO open for writing;
// the FIFO reads EOF only when the child is gone, which is the signal the
// test waits for.
func TestExecTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	pidFile := filepath.Join(dir, "pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	shell := "sleep 1000 > " + fifo + " & echo $! > " + pidFile + "; sleep 1000"

	eof := make(chan error, 1)
	go func() {
		// Opening for reading blocks until the grandchild opens the
		// write end; reading returns EOF when it has died.
		f, err := os.Open(fifo)
		if err != nil {
			eof <- err
			return
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		eof <- err
	}()

	// The limit leaves a busy machine time to start the shell, its child
	// and the pid file's write before the kill.
	res := execCommand(t.Context(), Command{Shell: shell}, 2*time.Second)
	pid := readPid(t, pidFile)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })

	if !res.timedOut || !errors.Is(res.err, errTimedOut) {
		t.Errorf("result = %+v, want timed out", res)
	}
	select {
	case err := <-eof:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("grandchild %d still holds the FIFO: process group not killed", pid)
	}
	assertDead(t, pid)
}

// TestExecStderrTail: a failing command's error message is kept even when
// stdout was chattier than the whole tail.
func TestExecStderrTail(t *testing.T) {
	res := execCommand(t.Context(), Command{Shell: "echo 'nft: Error: No such file or directory' >&2; head -c 2000 /dev/zero | tr '\\0' x; exit 1"}, 10*time.Second)
	if res.err == nil || res.exitCode != 1 {
		t.Fatalf("result = %+v, want exit 1", res)
	}
	if res.stderr != "nft: Error: No such file or directory\n" {
		t.Errorf("stderr = %q", res.stderr)
	}
	// Where the stderr line falls among the x's depends on which of the
	// two pipes was read first; either way the tail is cut and full of x's.
	if !strings.HasPrefix(res.output, "…") || strings.Count(res.output, "x") < outputTail-len(res.stderr) {
		t.Errorf("output = %q, want the tail of the x's", res.output)
	}
}

// TestExecSignalled: a command killed by a signal says which.
func TestExecSignalled(t *testing.T) {
	res := execCommand(t.Context(), Command{Shell: "kill -SEGV $$"}, 10*time.Second)
	if res.err == nil || res.signal != "segmentation fault" || res.timedOut {
		t.Errorf("result = %+v, want ended by SIGSEGV", res)
	}
}

// TestExecSuccessNotTimedOutByWaitDelay: a command that exits 0 before its
// time limit, leaving a background child on its output until after the
// limit, succeeded: nothing was killed.
func TestExecSuccessNotTimedOutByWaitDelay(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The shell exits at 0.3 s, so the waitDelay of 1 s after it ends
	// past the 1 s limit however soon the shell ran; it has 0.7 s to
	// start and fork on a busy machine.
	res := execCommand(t.Context(), Command{Shell: "sleep 5 & echo $! > " + pidFile + "; sleep 0.3; exit 0"}, time.Second)
	pid := readPid(t, pidFile)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if res.err != nil || res.timedOut || res.exitCode != 0 {
		t.Errorf("result = %+v, want success", res)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("background child: %v, want it left running", err)
	}
}

// TestExecBackgroundChildAfterSuccess checks that a command which exits
// successfully but leaves a background child holding its output (knockd's
// "(sleep 30; iptables -D ...) &" idiom) counts as a success and does not
// hold the worker until the child exits.
func TestExecBackgroundChildAfterSuccess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	res := execCommand(t.Context(), Command{Shell: "sleep 30 & echo $! > " + pidFile + "; echo started"}, 30*time.Second)
	pid := readPid(t, pidFile)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if res.err != nil || res.exitCode != 0 || res.timedOut {
		t.Errorf("result = %+v, want success", res)
	}
	if !strings.Contains(res.output, "started") {
		t.Errorf("output = %q, want it to contain %q", res.output, "started")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v: the background child held the worker", d)
	}
}

// TestExecCancelKillsGroup checks that cancelling the caller's context (the
// daemon stopping) kills the command without calling it a time-out.
func TestExecCancelKillsGroup(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	if err := syscall.Mkfifo(ready, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		// The command opens the FIFO once it is running; cancel then.
		f, err := os.Open(ready)
		if err == nil {
			f.Close()
		}
		cancel()
	}()
	res := execCommand(ctx, Command{Shell: ": > " + ready + "; sleep 1000"}, time.Hour)
	if res.err == nil || res.timedOut || res.exitCode != -1 {
		t.Errorf("result = %+v, want killed, not timed out", res)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data)))
	if err != nil || pid <= 1 {
		t.Fatalf("bad pid file %q: %v", data, err)
	}
	return pid
}

// assertDead fails unless pid is gone or a zombie waiting for init. The
// caller has already seen the process close its files, so only the last
// step of exiting can still be in flight; the loop waits for that state
// change, with a limit that only a living process would reach.
func assertDead(t *testing.T, pid int) {
	t.Helper()
	limit := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return // reaped
		}
		// The state follows the ")" closing the command name.
		if i := bytes.LastIndexByte(data, ')'); i >= 0 && i+2 < len(data) {
			if s := data[i+2]; s == 'Z' || s == 'X' {
				return
			}
		}
		if time.Now().After(limit) {
			t.Fatalf("process %d still alive: %s", pid, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
