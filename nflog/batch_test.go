package nflog

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
)

// step is one observation of a batchSwitch: at is the time since the
// first, rate the messages per second since the previous step (turned into
// a running total); change and batched are what the switch must decide.
type step struct {
	at      time.Duration
	rate    float64
	waiting bool // messages wait unread in the socket
	change  bool
	batched bool
}

func TestBatchSwitch(t *testing.T) {
	const above, below, hold = 20_000, 2_000, time.Second
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "quiet host never batches", steps: []step{
			{at: ms(100), rate: 10}, {at: ms(200), rate: 0}, {at: ms(300), rate: 19_999},
		}},
		{name: "a flood starts batching in its first window", steps: []step{
			{at: ms(100), rate: 5}, {at: ms(200), rate: 100_000, change: true, batched: true},
			{at: ms(300), rate: 100_000, batched: true},
		}},
		{name: "exactly the threshold is not above it", steps: []step{
			{at: ms(100), rate: 20_000},
		}},
		{name: "flood over: back after a second below", steps: []step{
			{at: ms(100), rate: 50_000, change: true, batched: true},
			{at: ms(200), rate: 100, batched: true},
			{at: ms(600), rate: 100, batched: true},
			{at: ms(1000), rate: 100, batched: true},
			{at: ms(1100), rate: 100, change: true}, // quiet since 100 ms
			{at: ms(1200), rate: 100},
		}},
		{name: "between the thresholds stays batched", steps: []step{
			{at: ms(100), rate: 50_000, change: true, batched: true},
			{at: ms(1200), rate: 5_000, batched: true},
			{at: ms(5000), rate: 2_000, batched: true},
		}},
		{name: "a burst during the hold restarts it", steps: []step{
			{at: ms(100), rate: 50_000, change: true, batched: true},
			{at: ms(700), rate: 0, batched: true},
			{at: ms(800), rate: 30_000, batched: true},
			{at: ms(1500), rate: 0, batched: true}, // quiet since 800 ms
			{at: ms(1700), rate: 0, batched: true},
			{at: ms(1800), rate: 0, change: true},
		}},
		{name: "a stalled reader with messages waiting is not quiet", steps: []step{
			{at: ms(100), rate: 50_000, change: true, batched: true},
			{at: ms(600), rate: 0, waiting: true, batched: true},
			{at: ms(1500), rate: 0, waiting: true, batched: true},
			{at: ms(1600), rate: 100, batched: true}, // quiet since 1500 ms
			{at: ms(2400), rate: 100, batched: true},
			{at: ms(2500), rate: 100, change: true},
		}},
		{name: "messages waiting do not start batching", steps: []step{
			{at: ms(100), rate: 10, waiting: true}, {at: ms(200), rate: 0, waiting: true},
		}},
		{name: "between the thresholds does not start batching", steps: []step{
			{at: ms(100), rate: 10_000}, {at: ms(1200), rate: 15_000},
		}},
		{name: "on and off again", steps: []step{
			{at: ms(100), rate: 30_000, change: true, batched: true},
			{at: ms(1100), rate: 1_000, change: true},
			{at: ms(1200), rate: 25_000, change: true, batched: true},
		}},
		{name: "a long window measures the mean", steps: []step{
			// A flood that the ticks missed: 3 s at 30k/s.
			{at: ms(3000), rate: 30_000, change: true, batched: true},
		}},
		{name: "time standing still decides nothing", steps: []step{
			{at: ms(100), rate: 30_000, change: true, batched: true},
			{at: ms(100), rate: 0, batched: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatchSwitch(above, below, hold)
			t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			var total float64
			if _, change := b.observe(t0, 0, false); change {
				t.Fatal("the first observation switched")
			}
			prev := time.Duration(0)
			for i, s := range tt.steps {
				total += s.rate * (s.at - prev).Seconds()
				prev = s.at
				rate, change := b.observe(t0.Add(s.at), uint64(total+0.5), s.waiting)
				if change != s.change || b.batched != s.batched {
					t.Fatalf("step %d at %v (%.0f/s): change %v, batched %v; want %v, %v", i, s.at, s.rate, change, b.batched, s.change, s.batched)
				}
				if s.at > 0 && change && (rate < s.rate-1 || rate > s.rate+1) {
					t.Errorf("step %d: rate %.1f, want %.0f", i, rate, s.rate)
				}
			}
		})
	}
}

func TestResolveBatch(t *testing.T) {
	tests := []struct {
		name         string
		above, below int
		queue        uint32
		timeout      time.Duration
		want         batchSettings
		err          string
	}{
		{name: "defaults", want: batchSettings{DefaultBatchAbove, DefaultBatchBelow, DefaultBatchQueue, DefaultBatchTimeout}},
		{name: "off", above: -1, below: 7, want: batchSettings{}},
		{name: "set", above: 50_000, below: 100, queue: 32, timeout: 20 * time.Millisecond, want: batchSettings{50_000, 100, 32, 20 * time.Millisecond}},
		{name: "below only, under the default above", below: 19_999, want: batchSettings{DefaultBatchAbove, 19_999, DefaultBatchQueue, DefaultBatchTimeout}},
		{name: "below not below above", above: 1000, below: 1000, err: "must be positive and below"},
		{name: "below only, over the default above", below: 30_000, err: "(30000/s) must be positive and below the rate to start (20000/s)"},
		{name: "negative below", below: -5, err: "must be positive"},
		{name: "queue too large", queue: 5000, err: "queue threshold 5000 is over 1024"},
		{name: "negative timeout", timeout: -time.Second, err: "negative timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveBatch(tt.above, tt.below, tt.queue, tt.timeout)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestQueueConfig(t *testing.T) {
	m, err := queueConfig(5, 64, 10*time.Millisecond, 16384)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Type != 0x0401 {
		t.Errorf("type %#x, want NFNL_SUBSYS_ULOG<<8 | NFULNL_MSG_CONFIG = 0x0401", m.Header.Type)
	}
	if m.Header.Flags != netlink.Request {
		t.Errorf("flags %v, want a request without an ACK", m.Header.Flags)
	}
	// An attribute: length and type in host order, the value big-endian.
	attr := func(typ uint16, v uint32) []byte {
		b := binary.NativeEndian.AppendUint16(nil, 8)
		b = binary.NativeEndian.AppendUint16(b, typ)
		return binary.BigEndian.AppendUint32(b, v)
	}
	want := slices.Concat(
		[]byte{0, 0, 0, 5}, // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id = group 5 (big-endian)
		attr(4, 1),         // NFULA_CFG_TIMEOUT, in 1/100 s
		attr(5, 64),        // NFULA_CFG_QTHRESH
		attr(3, 16384),     // NFULA_CFG_NLBUFSIZ
	)
	if !bytes.Equal(m.Data, want) {
		t.Errorf("data\n%x, want\n%x", m.Data, want)
	}

	for _, bad := range []struct {
		qthresh, bufsize uint32
	}{{0, 16384}, {maxQueueThreshold + 1, 16384}, {1, 100}, {1, maxBufSize + 1}} {
		if _, err := queueConfig(5, bad.qthresh, 0, bad.bufsize); err == nil {
			t.Errorf("queue %d, buffer %d accepted", bad.qthresh, bad.bufsize)
		}
	}
}

func TestTimeoutUnits(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want uint32
	}{
		{0, 0}, {-time.Second, 0}, {time.Nanosecond, 1}, {10 * time.Millisecond, 1},
		{11 * time.Millisecond, 2}, {time.Second, 100}, {time.Minute, 100},
	} {
		if got := timeoutUnits(tt.d); got != tt.want {
			t.Errorf("timeoutUnits(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestBufSizes(t *testing.T) {
	for _, tt := range []struct{ queue, want uint32 }{
		{1, 16 << 10}, {64, 16 << 10}, {65, 65 * 256}, {512, 128 << 10}, {1024, 128 << 10},
	} {
		if got := batchBufSize(tt.queue); got != tt.want {
			t.Errorf("batchBufSize(%d) = %d, want %d", tt.queue, got, tt.want)
		}
	}
	if n := singleBufSize(); n < minBufSize || n > 8192 {
		t.Errorf("singleBufSize() = %d", n)
	}
}
