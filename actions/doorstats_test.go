package actions

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestRunnerDoorStats: opens, closes and failures count per door, command
// times land in the histogram, and OpenDoors lists what is open with its
// close time.
func TestRunnerDoorStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		web := Door{Name: "web", Start: Command{Shell: "webopen %IP%"}}
		h := startHarness(t, []Door{sshDoor, web}, Options{})
		h.fake.setSlow("open 192.0.2.1", 300*time.Millisecond)
		h.fake.setFail("webopen 192.0.2.9")
		h.r.Open(knock("ssh", "192.0.2.1"))
		h.r.Open(knock("ssh", "192.0.2.2"))
		h.r.Open(knock("web", "192.0.2.9"))
		h.sleepTo(time.Second)

		open, total := h.r.OpenDoors(time.Now(), 1)
		if total != 2 || len(open) != 1 {
			t.Fatalf("open doors %+v, %d in all; want 1 of 2", open, total)
		}
		// Both close 10 s after their knock; the lower address is listed
		// first.
		if o := open[0]; o.Door != "ssh" || o.Src.String() != "192.0.2.1" || !o.Until.Equal(epoch.Add(10*time.Second)) {
			t.Errorf("first open door %+v, want ssh 192.0.2.1 until epoch+10s", o)
		}
		h.sleepTo(11 * time.Second)
		if _, total := h.r.OpenDoors(time.Now(), 10); total != 0 {
			t.Errorf("%d doors open after every close, want none", total)
		}
		h.shutdown()

		got := h.r.DoorStats()
		if got["ssh"] != (DoorStats{Opens: 2, Closes: 2}) || got["web"] != (DoorStats{Failures: 1}) {
			t.Errorf("door stats %+v; want ssh 2 opens, 2 closes; web 1 failure", got)
		}
		d := h.r.CommandDurations()
		if d.Count != 5 || d.Sum != 300*time.Millisecond {
			t.Errorf("durations: %d commands, %v in all; want 5, 300ms", d.Count, d.Sum)
		}
		// 0.25 s is the bucket below 0.3 s, 0.5 s the one above.
		i25, i50 := 5, 6
		if DurationBuckets[i25] != 0.25 || d.Buckets[i25] != 4 || d.Buckets[i50] != 5 || d.Buckets[len(d.Buckets)-1] != 5 {
			t.Errorf("buckets %v over %v; want 4 at ≤0.25 s, 5 from 0.5 s on", d.Buckets, DurationBuckets)
		}
	})
}
