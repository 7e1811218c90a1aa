package nflog

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"portknock/input"
	"portknock/sequence"
)

// loggedSYN is what the decoder hands the hook for a TCP SYN logged on the
// input hook with a prefix, a sequence number and a timestamp.
func loggedSYN() logMsg {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	return logMsg{
		hook: 1, hasHook: true, // NF_INET_LOCAL_IN
		prefix: []byte("knock\x00"), hasPrefix: true,
		payload: capSYN4, hasPayload: true,
		sec: ts.Unix(), usec: int64(ts.Nanosecond() / 1000), hasTime: true,
		hasSeq: true,
	}
}

// queueEmit hands events on as the daemon does: copied into a buffered
// channel, never waiting.
func queueEmit(q chan sequence.Event) input.Emit {
	return func(ev *sequence.Event, _ input.Mode) bool {
		select {
		case q <- *ev:
			return true
		default:
			return false
		}
	}
}

func newTestInput() (*Input, *groupSocket) {
	in := &Input{Name: "nflog:5", Prefix: "knock"}
	in.prefix, in.now = in.Prefix, time.Now
	return in, &groupSocket{group: 5}
}

// TestResolveKeepsFields: the defaults Run needs are kept beside the
// fields, which are the caller's configuration and stay as given.
func TestResolveKeepsFields(t *testing.T) {
	in := &Input{Name: "nflog:5", Groups: []uint16{5}, Prefix: " knock "}
	if err := in.resolve(); err != nil {
		t.Fatal(err)
	}
	if in.Logger != nil || in.Now != nil || in.Prefix != " knock " || in.BatchAbove != 0 || in.BatchBelow != 0 || in.BatchQueue != 0 || in.BatchTimeout != 0 {
		t.Errorf("resolve wrote the fields: %+v", in)
	}
	if in.log == nil || in.now == nil || in.prefix != "knock" {
		t.Errorf("resolve left the state unset: log %v, now set %v, prefix %q", in.log, in.now != nil, in.prefix)
	}
}

func TestHookEvent(t *testing.T) {
	in, s := newTestInput()
	q := make(chan sequence.Event, 4)
	emit := queueEmit(q)
	a := loggedSYN()
	for i := range 3 {
		a.seq = uint32(i * 2) // every other message lost
		in.hook(s, &a, emit)
	}
	if len(q) != 3 {
		t.Fatalf("%d events queued, want 3", len(q))
	}
	ev := <-q
	if ev.Src.String() != "127.0.0.1" || ev.Port != 7000 || ev.Proto != sequence.TCP || !ev.Time.Equal(time.Unix(a.sec, a.usec*1000)) || ev.Input != "nflog:5" {
		t.Errorf("event %+v", ev)
	}
	st := in.Stats()
	if st.Read != 3 || st.Events != 3 || st.Counter(KernelDrops) != 2 {
		t.Errorf("stats %+v, want 3 packets, 3 events, 2 kernel drops", st)
	}
	if r, l := s.received.Load(), s.lost.Load(); r != 3 || l != 2 {
		t.Errorf("%d messages received and %d lost, want 3 and 2", r, l)
	}

	// The event handed on is reused: a parse failure must not leave the
	// previous packet's fields in it for the next.
	bad := loggedSYN()
	bad.payload = capSYN4[:30]
	in.hook(s, &bad, emit)
	if st := in.Stats(); st.Skipped[ReasonTruncated] != 1 || len(q) != 2 {
		t.Errorf("truncated packet: stats %+v, %d queued", st, len(q))
	}
}

func TestHookAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	in, s := newTestInput()
	q := make(chan sequence.Event, 1)
	emit := queueEmit(q)
	a := loggedSYN()
	allocs := testing.AllocsPerRun(1000, func() {
		a.seq++
		in.hook(s, &a, emit)
		<-q
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per logged packet, want 0", allocs)
	}
}

// BenchmarkHook is the cost of the part of a logged packet's way that is
// ours after decoding: from the decoded message to the event in the
// matcher's queue.
func BenchmarkHook(b *testing.B) {
	in, s := newTestInput()
	q := make(chan sequence.Event, 1)
	emit := queueEmit(q)
	a := loggedSYN()
	b.ReportAllocs()
	for b.Loop() {
		a.seq++
		in.hook(s, &a, emit)
		<-q
	}
}

func TestReceiveError(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		goOn    bool
		refused bool
		broken  bool
	}{
		{name: "overrun", err: &netlink.OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", unix.ENOBUFS)}, goOn: true},
		{name: "refused queue setting", err: &netlink.OpError{Op: "receive", Err: unix.ENODEV, Sequence: 7}, goOn: true, refused: true},
		{name: "error for another message", err: &netlink.OpError{Op: "receive", Err: unix.ENODEV, Sequence: 6}, broken: true},
		{name: "error without a sequence", err: &netlink.OpError{Op: "receive", Err: unix.EBADF}, broken: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, s := newTestInput()
			s.broken = make(chan error, 1)
			s.cfgSeq.Store(7)
			ret := in.receiveError(context.Background(), s, tt.err)
			if (ret == 0) != tt.goOn || (s.refused.Load() != nil) != tt.refused || (len(s.broken) == 1) != tt.broken {
				t.Errorf("returned %d, refused %v, broken %d; want go on %v, refused %v, broken %v",
					ret, s.refused.Load(), len(s.broken), tt.goOn, tt.refused, tt.broken)
			}
		})
	}
}

func TestParseGroupOwner(t *testing.T) {
	table := "    5   4242     0 2 65535      0  1\n    7      0     0 2   256      0  1\n"
	if p, ok := parseGroupOwner(table, 5); !ok || p != 4242 {
		t.Errorf("group 5: %d, %v; want 4242", p, ok)
	}
	if _, ok := parseGroupOwner(table, 6); ok {
		t.Error("group 6 reported as bound")
	}
}

// TestCreditLateGap checks that losses a gap reveals count toward the rate
// only as far as messages arrive with them: a lone knock after a flood
// that ended in an overrun must not read as a flood of its own.
func TestCreditLateGap(t *testing.T) {
	_, s := newTestInput()
	for _, step := range []struct {
		received, lost uint64
		want           uint64 // credited in all
	}{
		{1000, 0, 1000},    // a window of a flood, nothing lost
		{1000, 500, 2500},  // losses beside as many messages count in full
		{1000, 5000, 4500}, // no more than were received count
		{1, 300_000, 4502}, // the gap of an overrun, revealed by one knock
		{0, 0, 4502},       // a quiet window
	} {
		s.received.Add(step.received)
		s.lost.Add(step.lost)
		if got := s.credit(); got != step.want {
			t.Errorf("after %d received and %d lost: credited %d, want %d", step.received, step.lost, got, step.want)
		}
	}
}
