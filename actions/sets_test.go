package actions

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"portknock/nftset"
)

// fakeSets records set changes as "add SET ADDR TIMEOUT" and "del SET ADDR",
// with the time since the epoch.
type fakeSets struct {
	mu      sync.Mutex
	ops     []call
	failAdd error
}

func (f *fakeSets) Add(ref nftset.Ref, addr netip.Addr, timeout time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAdd != nil {
		return f.failAdd
	}
	f.ops = append(f.ops, call{time.Since(epoch), fmt.Sprintf("add %s %s %v", ref, addr, timeout)})
	return nil
}

func (f *fakeSets) Delete(ref nftset.Ref, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, call{time.Since(epoch), fmt.Sprintf("del %s %s", ref, addr)})
	return nil
}

func (f *fakeSets) got() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// want compares the changes in time order; changes made at the same moment
// come from concurrent workers, so their order is not compared.
func (f *fakeSets) want(t *testing.T, want ...call) {
	t.Helper()
	byTime := func(a, b call) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		return strings.Compare(a.cmd, b.cmd)
	}
	got := f.got()
	slices.SortStableFunc(got, byTime)
	want = slices.Clone(want)
	slices.SortStableFunc(want, byTime)
	if !slices.Equal(got, want) {
		t.Errorf("set changes:\n  %v\nwant\n  %v", got, want)
	}
}

var (
	set4 = nftset.Ref{Family: nftset.FamilyInet, Table: "fw", Set: "knock4"}
	set6 = nftset.Ref{Family: nftset.FamilyInet, Table: "fw", Set: "knock6"}
)

// setDoor opens by nftables sets only: the kernel closes it.
var setDoor = Door{Name: "ssh", Set: set4, Set6: set6, CmdTimeout: 10 * time.Second}

func startWithSets(t *testing.T, doors []Door, opts Options) (*harness, *fakeSets) {
	sets := &fakeSets{}
	opts.Sets = sets
	return startHarness(t, doors, opts), sets
}

func TestRunnerSetOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, sets := startWithSets(t, []Door{setDoor}, Options{})
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.r.Open(knock("ssh", "::ffff:192.0.2.2"))
		h.r.Open(knock("ssh", "2001:db8::3"))
		synctest.Wait()
		sets.want(t,
			call{0, "add inet fw knock4 192.0.2.1 10s"},
			call{0, "add inet fw knock4 192.0.2.2 10s"},
			call{0, "add inet fw knock6 2001:db8::3 10s"})
		opened := h.logs.Find("opened")
		sets4 := 0
		for _, o := range opened {
			if o.Attrs["set"] == "inet fw knock4" {
				sets4++
			}
		}
		if len(opened) != 3 || sets4 != 2 {
			t.Errorf("opened lines %+v", opened)
		}
		h.wantCalls() // no commands
		h.shutdown()
		// A clean stop removes what is still in the sets.
		got := h.logs.Find("closed")
		if len(got) != 3 {
			t.Errorf("closed lines at exit: %+v", got)
		}
	})
}

// TestRunnerSetOneFamily: a door with an IPv4 set only, knocked from an
// IPv6 address, says it has nothing to open rather than logging an open.
func TestRunnerSetOneFamily(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := setDoor
		d.Set6 = nftset.Ref{}
		h, sets := startWithSets(t, []Door{d}, Options{})
		h.r.Open(knock("ssh", "2001:db8::3"))
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		sets.want(t, call{0, "add inet fw knock4 192.0.2.1 10s"})
		if o := h.logs.Find("opened"); len(o) != 1 || o[0].Attrs["src"] != "192.0.2.1" {
			t.Errorf("opened lines %+v, want only 192.0.2.1", o)
		}
		if w := h.logs.Find("door has nothing to open for this address family; knock ignored"); len(w) != 1 || w[0].Attrs["src"] != "2001:db8::3" {
			t.Errorf("warnings %+v", w)
		}
		h.shutdown()
	})
}

func TestRunnerSetReknock(t *testing.T) {
	for _, c := range []struct {
		policy Reknock
		want   []call
		starts []call
	}{
		{ReknockExtend, []call{{0, "add inet fw knock4 192.0.2.1 10s"}, {4 * time.Second, "add inet fw knock4 192.0.2.1 10s"}, {20 * time.Second, "add inet fw knock4 192.0.2.1 10s"}},
			[]call{{0, "ring 192.0.2.1"}, {20 * time.Second, "ring 192.0.2.1"}}},
		{ReknockRerun, []call{{0, "add inet fw knock4 192.0.2.1 10s"}, {4 * time.Second, "add inet fw knock4 192.0.2.1 10s"}, {20 * time.Second, "add inet fw knock4 192.0.2.1 10s"}},
			[]call{{0, "ring 192.0.2.1"}, {4 * time.Second, "ring 192.0.2.1"}, {20 * time.Second, "ring 192.0.2.1"}}},
		{ReknockIgnore, []call{{0, "add inet fw knock4 192.0.2.1 10s"}, {20 * time.Second, "add inet fw knock4 192.0.2.1 10s"}},
			[]call{{0, "ring 192.0.2.1"}, {20 * time.Second, "ring 192.0.2.1"}}},
	} {
		t.Run(string(c.policy), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := setDoor
				d.Start = Command{Shell: "ring %IP%"}
				d.Reknock = c.policy
				h, sets := startWithSets(t, []Door{d}, Options{KeepOpenOnExit: true})
				h.r.Open(knock("ssh", "192.0.2.1"))
				h.sleepTo(4 * time.Second)
				h.r.Open(knock("ssh", "192.0.2.1"))
				// Past every element's timeout: a knock opens afresh.
				h.sleepTo(20 * time.Second)
				h.r.Open(knock("ssh", "192.0.2.1"))
				synctest.Wait()
				sets.want(t, c.want...)
				h.wantCalls(c.starts...)
				h.shutdown()
			})
		})
	}
}

func TestRunnerSetWithTimedClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := sshDoor
		d.Set = set4
		h, sets := startWithSets(t, []Door{d}, Options{})
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(3 * time.Second)
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(13 * time.Second)
		h.wantCalls(call{0, "open 192.0.2.1"}, call{13 * time.Second, "close 192.0.2.1"})
		sets.want(t, call{0, "add inet fw knock4 192.0.2.1 10s"}, call{3 * time.Second, "add inet fw knock4 192.0.2.1 10s"})
		if n := len(h.logs.Find("nft set element refreshed")); n != 1 {
			t.Errorf("%d refresh lines, want 1", n)
		}
		h.shutdown()
		// The element expired at 13s with the close: nothing to delete.
		sets.want(t, call{0, "add inet fw knock4 192.0.2.1 10s"}, call{3 * time.Second, "add inet fw knock4 192.0.2.1 10s"})
	})
}

func TestRunnerSetAddFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, sets := startWithSets(t, []Door{setDoor}, Options{})
		sets.failAdd = errors.New(`nft set "inet fw knock4": no such set`)
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		failed := h.logs.Find("nft set add failed")
		if len(failed) != 1 || failed[0].Attrs["door"] != "ssh" || failed[0].Attrs["src"] != "192.0.2.1" ||
			failed[0].Attrs["set"] != "inet fw knock4" || failed[0].Attrs["err"] != sets.failAdd.Error() {
			t.Errorf("failure lines %+v", failed)
		}
		if s := h.r.Stats(); s.Failed != 1 {
			t.Errorf("Failed = %d, want 1", s.Failed)
		}
		h.shutdown()
		sets.want(t) // nothing was added, so nothing is removed
	})
}

func TestRunnerSetDryRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, sets := startWithSets(t, []Door{setDoor}, Options{DryRun: true})
		h.r.Open(knock("ssh", "192.0.2.1"))
		synctest.Wait()
		h.shutdown()
		sets.want(t)
		if len(h.logs.Find("dry run, not adding to nft set")) != 1 {
			t.Errorf("no dry-run line:\n%s", h.logs.Dump())
		}
	})
}

// TestRunnerSetTimeoutLogsClose: when the kernel's timeout ends a set
// element, the door is logged closed for that address at that time, as a
// timed close would be, and nothing is left to remove at exit.
func TestRunnerSetTimeoutLogsClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, sets := startWithSets(t, []Door{setDoor}, Options{})
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.sleepTo(10*time.Second - time.Nanosecond)
		if got := h.logs.Find("closed"); len(got) != 0 {
			t.Fatalf("closed before the timeout: %+v", got)
		}
		h.sleepTo(10 * time.Second)
		got := h.logs.Find("closed")
		if len(got) != 1 || got[0].Attrs["door"] != "ssh" || got[0].Attrs["src"] != "192.0.2.1" || got[0].Attrs["set"] != "inet fw knock4" {
			t.Fatalf("closed lines at the timeout: %+v, want one with door, src and set", got)
		}
		h.shutdown()
		sets.want(t, call{0, "add inet fw knock4 192.0.2.1 10s"})
		if got := h.logs.Find("closed"); len(got) != 1 {
			t.Errorf("closed again at exit: %+v", got)
		}
	})
}
