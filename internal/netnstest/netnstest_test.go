//go:build linux

package netnstest

import (
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	HelperMain()
	os.Exit(m.Run())
}

// inode identifies a namespace file: two paths name the same namespace
// when their inodes are equal.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestNewBringsLoopbackUpAndCleansUp(t *testing.T) {
	Require(t, "ip")
	var name string
	t.Run("inner", func(t *testing.T) {
		ns := New(t)
		name = ns.Name
		if out := ns.Run(t, "ip", "-o", "link", "show", "lo"); !strings.Contains(out, "UP") {
			t.Fatalf("lo is not up in %s: %s", ns.Name, out)
		}
	})
	if _, err := os.Stat("/run/netns/" + name); !os.IsNotExist(err) {
		t.Fatalf("namespace %s still exists after its test ended (%v)", name, err)
	}
}

func TestDoRunsInsideAndReturns(t *testing.T) {
	Require(t, "ip")
	ns := New(t)
	want := inode(t, "/run/netns/"+ns.Name)
	var inside uint64
	if err := ns.Do(func() error {
		// Not inode: Fatal must not be called off the test goroutine.
		var st syscall.Stat_t
		err := syscall.Stat("/proc/thread-self/ns/net", &st)
		inside = st.Ino
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside != want {
		t.Fatalf("Do ran in namespace inode %d, want %s's %d", inside, ns.Name, want)
	}
	// Threads that ran Do are back home: check every thread of the
	// process, since the runtime may reuse any of them.
	home := inode(t, "/proc/self/ns/net")
	runtime.GC()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if got := inode(t, "/proc/self/task/"+task.Name()+"/ns/net"); got == want {
			t.Errorf("thread %s left in %s", task.Name(), ns.Name)
		} else if got != home {
			t.Errorf("thread %s in namespace inode %d, want %d", task.Name(), got, home)
		}
	}
}

func TestStartWaitLineStop(t *testing.T) {
	Require(t, "ip", "sh", "sleep")
	ns := New(t)
	p := ns.Start(t, []string{"NETNSTEST_WORD=two"}, "sh", "-c", `echo one; echo "$NETNSTEST_WORD" >&2; echo one; exec sleep 60`)
	i, _ := p.WaitLine(t, 0, 10*time.Second, "one", func(l string) bool { return l == "one" })
	j, _ := p.WaitLine(t, i+1, 10*time.Second, "two on stderr", func(l string) bool { return l == "two" })
	k, _ := p.WaitLine(t, j+1, 10*time.Second, "a second one", func(l string) bool { return l == "one" })
	if i != 0 || j != 1 || k != 2 {
		t.Fatalf("lines at %d, %d, %d; want 0, 1, 2: %q", i, j, k, p.Lines())
	}
	p.Stop(t)
	if exited, err := p.Exited(); !exited || err == nil {
		t.Fatalf("after Stop: exited %v, err %v; want killed by SIGTERM", exited, err)
	}
}

func TestServiceReach(t *testing.T) {
	Require(t, "ip")
	ns := New(t)
	ns.StartService(t, "127.0.0.1:2222", "[::1]:2222")
	for _, addr := range []string{"127.0.0.1:2222", "[::1]:2222"} {
		// The service is a process a busy machine may not run for a
		// while; nothing here is waiting for a timeout to pass.
		if err := ns.Reach(addr, 10*time.Second); err != nil {
			t.Errorf("Reach(%s): %v", addr, err)
		}
	}
	if err := ns.Reach("127.0.0.1:2223", time.Second); err == nil {
		t.Error("Reach succeeded on a port nothing listens on")
	}
}
