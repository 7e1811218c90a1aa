//go:build linux

package netnstest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Require skips t, or fails it when Required, unless the process is root
// and every named command is on PATH. Each miss is named, so the log says
// what to install.
func Require(t testing.TB, commands ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces and firewall rules need it)")
	}
	for _, c := range missingCommands(commands...) {
		missing = append(missing, fmt.Sprintf("command %q on PATH", c))
	}
	if len(missing) == 0 {
		return
	}
	skipOrFail(t, "integration test needs "+strings.Join(missing, ", "))
}

// NS is a network namespace made by New, named so that it can be entered
// with "ip netns exec".
type NS struct {
	// Name is the namespace's name under /run/netns.
	Name string
}

// New makes a uniquely named network namespace with its loopback up, and
// deletes it when t ends. Processes started in it with Start are stopped
// before it is deleted, because cleanups run last-registered first.
func New(t testing.TB) *NS {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	// The process id and a random part keep parallel runs, and namespaces
	// left by a run that was killed, from colliding. Such leftovers are
	// easy to find: every name starts with "pkit-".
	ns := &NS{Name: fmt.Sprintf("pkit-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		// Root in a container without the privilege to make namespaces
		// is an environment that cannot run the test, like non-root.
		skipOrFail(t, fmt.Sprintf("cannot make a network namespace: ip netns add %s: %v: %s", ns.Name, err, bytes.TrimSpace(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", ns.Name, err, out)
		}
	})
	ns.Run(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Command returns a command that runs name inside the namespace. It is not
// started; it runs in its own process group so that Start's cleanup can
// stop everything it spawned.
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// "ip netns exec" replaces itself with the command, so killing the
	// group on cancellation reaches the command and its children.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	return cmd
}

// RunTimeout bounds each command run by Run and Output: they are short
// setup and query commands, and a hang should fail the test, not stall it.
const RunTimeout = 30 * time.Second

// Output runs a command inside the namespace and returns its combined
// output and error, for commands that are expected to fail.
func (ns *NS) Output(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	out, err := ns.Command(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// Run runs a command inside the namespace, failing t if it fails, and
// returns its combined output.
func (ns *NS) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Output(name, args...)
	if err != nil {
		t.Fatalf("in netns %s: %s %s: %v\n%s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return out
}

// Do runs fn on an OS thread switched into the namespace, so sockets fn
// creates live there and its traffic stays there. fn must not start
// goroutines that create sockets: they would run in the test's own
// namespace.
func (ns *NS) Do(fn func() error) error {
	target, err := os.Open(filepath.Join("/run/netns", ns.Name))
	if err != nil {
		return err
	}
	defer target.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("entering netns %s: %w", ns.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked, so the runtime ends it with this
			// goroutine instead of reusing it in the wrong namespace.
			done <- errors.Join(ferr, fmt.Errorf("leaving netns %s: %w", ns.Name, err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// Proc is a long-running process started inside a namespace by Start,
// whose stdout and stderr are collected line by line.
type Proc struct {
	// Cmd is the running command.
	Cmd *exec.Cmd

	name    string
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced when lines grow or the process ends
	exited  bool
	waitErr error
	done    chan struct{} // closed when the process has exited and its output is read
}

// StopTimeout is how long Start's cleanup waits after SIGTERM before it
// kills the process group.
const StopTimeout = 10 * time.Second

// Start starts a command inside the namespace and stops it when t ends:
// SIGTERM first, so a daemon can shut down cleanly, and SIGKILL to its
// whole process group if it has not exited within StopTimeout. When t
// failed, the output is logged to help find out why.
func (ns *NS) Start(t testing.TB, env []string, name string, args ...string) *Proc {
	t.Helper()
	cmd := ns.Command(context.Background(), name, args...)
	cmd.Env = append(os.Environ(), env...)
	return StartCmd(t, cmd, filepath.Base(name), "in netns "+ns.Name)
}

// StartCmd starts cmd, which need not run in a namespace, as Start does:
// output collected line by line, stopped (with its process group) when t
// ends. name names it in messages; where prefixes a failure to start.
func StartCmd(t testing.TB, cmd *exec.Cmd, name, where string) *Proc {
	t.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	p := &Proc{Cmd: cmd, name: name, changed: make(chan struct{}), done: make(chan struct{})}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// One pipe for both streams keeps their lines in the order written.
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		t.Fatalf("%s: starting %s: %v", where, name, err)
	}
	pw.Close()
	go p.collect(pr)
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.name, p.Output())
		}
	})
	return p
}

// collect reads output lines until every writer has closed the pipe, and
// reaps the process.
func (p *Proc) collect(r *os.File) {
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.notifyLocked()
			p.mu.Unlock()
		}
		// Drain what an over-long line left, so no writer blocks.
		_, _ = io.Copy(io.Discard, r)
	}()
	err := p.Cmd.Wait()
	// A child the process left behind may hold the pipe open; its output
	// is not worth waiting for long.
	select {
	case <-readDone:
	case <-time.After(time.Second):
	}
	r.Close()
	<-readDone
	p.mu.Lock()
	p.exited, p.waitErr = true, err
	p.notifyLocked()
	p.mu.Unlock()
	close(p.done)
}

func (p *Proc) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Lines returns the output lines so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Output returns the output so far as one string.
func (p *Proc) Output() string { return strings.Join(p.Lines(), "\n") }

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited, p.waitErr
}

// WaitLine waits up to timeout for an output line, after the first from
// lines, for which match is true, and returns its index and text. It fails
// t when the time runs out or the process exits without such a line.
func (p *Proc) WaitLine(t testing.TB, from int, timeout time.Duration, what string, match func(string) bool) (int, string) {
	t.Helper()
	i, line, err := p.FindLine(from, timeout, what, match)
	if err != nil {
		// Start's cleanup logs the output of a failed test.
		t.Fatal(err)
	}
	return i, line
}

// FindLine is WaitLine for a caller that can do without the line, such as
// a goroutine of a test: instead of failing a test it returns an error,
// naming what, when the time runs out or the process exits first.
func (p *Proc) FindLine(from int, timeout time.Duration, what string, match func(string) bool) (int, string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for i := from; ; {
		p.mu.Lock()
		for ; i < len(p.lines); i++ {
			if match(p.lines[i]) {
				line := p.lines[i]
				p.mu.Unlock()
				return i, line, nil
			}
		}
		exited, werr, changed := p.exited, p.waitErr, p.changed
		p.mu.Unlock()
		if exited {
			return 0, "", fmt.Errorf("%s exited (%v) without logging %s", p.name, werr, what)
		}
		select {
		case <-changed:
		case <-deadline.C:
			return 0, "", fmt.Errorf("%s did not log %s within %v", p.name, what, timeout)
		}
	}
}

// WaitExit waits up to timeout for the process to exit by itself and
// returns how it exited.
func (p *Proc) WaitExit(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v", p.name, timeout)
	}
	_, err := p.Exited()
	return err
}

// Stop asks the process to end with SIGTERM and waits for it, killing its
// process group if it lingers. It is safe to call more than once.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(StopTimeout):
	}
	t.Errorf("%s ignored SIGTERM for %v; killing its process group", p.name, StopTimeout)
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Eventually polls cond every few milliseconds until it is true, failing t
// if it is still false after timeout. It is for conditions that nothing
// signals, such as a firewall set losing an element.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
