package nflog

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"portknock/sequence"
)

// TestDatagram runs captured datagrams through the receive path's handler.
func TestDatagram(t *testing.T) {
	littleEndian(t)
	in, s := newTestInput()
	s.broken = make(chan error, 1)
	s.bound = make(chan int32, 1)
	s.bindSeq = 1
	s.cfgSeq.Store(3)
	q := make(chan sequence.Event, 8)
	emit := queueEmit(q)
	var m logMsg
	ctx := context.Background()
	for _, d := range [][]byte{capBindAck, capLogSYN, capBatch, capRefused} {
		if !in.datagram(ctx, s, d, &m, emit) {
			t.Fatalf("datagram %x stopped the socket", d[:16])
		}
	}
	if errno := <-s.bound; errno != 0 {
		t.Errorf("bind answer %d, want 0", errno)
	}
	if op := s.refused.Load(); op == nil || op.Sequence != 3 {
		t.Errorf("refusal %v, want the one for sequence 3", op)
	}
	st := in.Stats()
	if st.Read != 4 || st.Events != 4 || st.Counter(KernelDrops) != 0 || len(q) != 4 {
		t.Errorf("stats %+v, %d queued; want 4 packets and events, no drop", st, len(q))
	}
	ev := <-q
	if want := time.Unix(0x6b11749d, 0x77ad2*1000); !ev.Time.Equal(want) || ev.Port != 7000 || ev.Src.String() != "127.0.0.1" {
		t.Errorf("event %+v", ev)
	}
	// An error for a message that is not ours means a broken socket.
	bad := append([]byte(nil), capRefused...)
	binary.NativeEndian.PutUint32(bad[16+4+8:], 9)
	if in.datagram(ctx, s, bad, &m, emit) {
		t.Error("an unexpected error did not stop the socket")
	}
	// A cut message is counted, not handed on.
	in.datagram(ctx, s, capLogSYN[:100], &m, emit)
	if st := in.Stats(); st.Skipped[ReasonTruncated] != 1 || len(q) != 3 {
		t.Errorf("cut datagram: stats %+v, %d queued", st, len(q))
	}
}

func TestDatagramAllocations(t *testing.T) {
	littleEndian(t)
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	in, s := newTestInput()
	q := make(chan sequence.Event, 4)
	emit := queueEmit(q)
	var m logMsg
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		in.datagram(ctx, s, capBatch, &m, emit)
		<-q
		<-q
		<-q
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per datagram, want 0", allocs)
	}
}

// BenchmarkDatagram is the cost of a logged packet from the receive
// buffer to the event in the matcher's queue, per message, on a batch of
// three captured messages.
func BenchmarkDatagram(b *testing.B) {
	littleEndian(b)
	in, s := newTestInput()
	q := make(chan sequence.Event, 4)
	emit := queueEmit(q)
	var m logMsg
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		in.datagram(ctx, s, capBatch, &m, emit)
		<-q
		<-q
		<-q
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(3*b.N), "ns/msg")
}
