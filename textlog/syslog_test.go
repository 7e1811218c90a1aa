package textlog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"portknock/input"
	"portknock/sequence"
)

// Every test here sends only to the listener's own loopback address, which
// the listener reports through Addrs after binding port 0.

var slTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const slName = "fw-syslog"

// slRun is a SyslogListener running for a test.
type slRun struct {
	l      *SyslogListener
	events chan sequence.Event
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// slStart binds l (on 127.0.0.1 port 0 unless l.Addr says otherwise) and
// runs it until the test ends, when it also checks that Run left no
// goroutine behind.
func slStart(t *testing.T, l *SyslogListener) *slRun {
	t.Helper()
	if l.Name == "" {
		l.Name = slName
	}
	if l.Addr == "" {
		l.Addr = "127.0.0.1:0"
	}
	l.Now = func() time.Time { return slTime }
	if l.Logger == nil {
		l.Logger = slog.New(slog.DiscardHandler)
	}
	if err := l.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &slRun{l: l, events: make(chan sequence.Event, 100), cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- l.Run(ctx, func(ev *sequence.Event, _ input.Mode) bool {
			select {
			case r.events <- *ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	t.Cleanup(func() {
		if err := r.stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// stop ends Run and checks that every goroutine of the listener ended
// with it.
func (r *slRun) stop(t *testing.T) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		r.err = waitErr(t, r.done)
		if open := r.l.Stats().Counter(SyslogOpen); open != 0 {
			t.Errorf("after Run returned, %d connections are open", open)
		}
		if leaks := slGoroutines(); len(leaks) > 0 {
			t.Errorf("after Run returned, listener goroutines remain:\n%s", strings.Join(leaks, "\n\n"))
		}
	})
	return r.err
}

// slGoroutines returns the stacks of goroutines running listener code.
func slGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "textlog.(*SyslogListener)") || strings.Contains(g, "textlog.syslog") {
			found = append(found, g)
		}
	}
	return found
}

// addr returns the bound address of network ("udp" or "tcp").
func (r *slRun) addr(t *testing.T, network string) string {
	t.Helper()
	for _, a := range r.l.Addrs() {
		if a.Network() == network {
			return a.String()
		}
	}
	t.Fatalf("no %s address in %v", network, r.l.Addrs())
	return ""
}

// expect receives the wanted events in order.
func (r *slRun) expect(t *testing.T, want ...sequence.Event) {
	t.Helper()
	for i, w := range want {
		select {
		case ev := <-r.events:
			if ev != w {
				t.Fatalf("event %d = %+v, want %+v", i, ev, w)
			}
		case err := <-r.done:
			t.Fatalf("Run returned %v before event %d", err, i)
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for event %d (%+v); stats %+v", i, w, r.l.Stats())
		}
	}
}

// expectUnordered receives the wanted events in any order.
func (r *slRun) expectUnordered(t *testing.T, want ...sequence.Event) {
	t.Helper()
	var got []sequence.Event
	for range want {
		select {
		case ev := <-r.events:
			got = append(got, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out after events %+v, want %+v", got, want)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Fatalf("events %+v, want %+v", got, want)
		}
	}
}

// noEvents checks that no event is waiting. Callers first receive an event
// sent after the unwanted ones, so that these would have arrived.
func (r *slRun) noEvents(t *testing.T) {
	t.Helper()
	select {
	case ev := <-r.events:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

// eventually waits for cond on the listener's stats, for counters that no
// event follows (a dropped datagram, say).
func (r *slRun) eventually(t *testing.T, what string, cond func(input.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(r.l.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stats %+v", what, r.l.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func slKnock(src string, port uint16, proto sequence.Proto) sequence.Event {
	return sequence.Event{Src: netip.MustParseAddr(src), Port: port, Proto: proto, Time: slTime, Input: slName}
}

func slDial(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func slWrite(t *testing.T, c net.Conn, data string) {
	t.Helper()
	if _, err := c.Write([]byte(data)); err != nil {
		t.Fatalf("write %q: %v", data, err)
	}
}

// slOct frames msg with an octet count.
func slOct(msg string) string { return strconv.Itoa(len(msg)) + " " + msg }

// slClosed checks that the listener closed c: a read fails with end of
// file or a reset rather than timing out or returning data.
func slClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 16))
	if n > 0 || err == nil {
		t.Fatalf("read %d bytes (%v) from the listener", n, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the listener did not close the connection")
	}
}

// slStats checks counters: the shared ones against want, the listener's
// own against own; counters left out must be zero.
func slStats(t *testing.T, got, want input.Stats, own map[string]uint64) {
	t.Helper()
	for _, c := range got.Counters {
		if c.Value != own[c.Name] {
			t.Errorf("counter %s = %d, want %d", c.Name, c.Value, own[c.Name])
		}
		delete(own, c.Name)
	}
	for name := range own {
		t.Errorf("no counter %s", name)
	}
	got.Counters = nil
	want.Unit = "lines"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats\n got  %+v\n want %+v", got, want)
	}
	if got.Read != got.Events+got.Dropped+got.SkippedTotal() {
		t.Errorf("stats %+v: read != events + dropped + skipped", got)
	}
}

func TestSyslogUDP(t *testing.T) {
	slNetns(t)
	r := slStart(t, &SyslogListener{MaxMessage: 64, Parser: Parser{Format: FormatSimple}})
	c := slDial(t, "udp", r.addr(t, "udp"))

	exact := "7005 192.0.2.11" + strings.Repeat(" ", 64-len("7005 192.0.2.11"))
	for _, d := range []string{
		"7000 192.0.2.7",
		"7001/udp 192.0.2.8\n",
		"7002 192.0.2.9\r\n\n7003 2001:db8::1\x007004 192.0.2.10", // three lines, an empty one ignored
		"not a knock",
		exact,                    // exactly MaxMessage: read
		exact + "x",              // one byte more: dropped
		strings.Repeat("y", 500), // far more: dropped
		"7006 192.0.2.12",
	} {
		slWrite(t, c, d)
	}
	r.expect(t,
		slKnock("192.0.2.7", 7000, sequence.TCP),
		slKnock("192.0.2.8", 7001, sequence.UDP),
		slKnock("192.0.2.9", 7002, sequence.TCP),
		slKnock("2001:db8::1", 7003, sequence.TCP),
		slKnock("192.0.2.10", 7004, sequence.TCP),
		slKnock("192.0.2.11", 7005, sequence.TCP),
		slKnock("192.0.2.12", 7006, sequence.TCP),
	)
	r.noEvents(t)
	// The listener counts an event once emit has returned, which may be
	// after the test has read it.
	r.eventually(t, "7 events counted", func(st input.Stats) bool { return st.Events == 7 })
	slStats(t, r.l.Stats(),
		input.Stats{Read: 10, Events: 7, Skipped: slSkipped(ReasonUnrecognized, 1, ReasonTooLong, 2)},
		map[string]uint64{SyslogMessages: 6, SyslogOversize: 2})
}

func slSkipped(pairs ...any) (a [reasonCount]uint64) {
	for i := 0; i < len(pairs); i += 2 {
		a[pairs[i].(Reason)] = uint64(pairs[i+1].(int))
	}
	return a
}

// TestSyslogWrapped sends lines in their syslog framing, as firewalls
// forward them, and checks that each arrives as the parser reads it: the
// listener passes the whole message on unchanged.
func TestSyslogWrapped(t *testing.T) {
	slNetns(t)
	lines := []struct {
		format Format
		line   string
	}{
		{FormatNetfilter, "<4>Nov 22 12:00:01 fw kernel: [12345.678901] knock IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 " +
			"SRC=192.0.2.7 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=54321 DF PROTO=TCP SPT=40000 DPT=7000 WINDOW=64240 RES=0x00 SYN URGP=0"},
		{FormatNetfilter, "<4>1 2026-11-22T12:00:01.123456+00:00 fw kernel - - - knock IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:86:dd " +
			"SRC=2001:db8::7 DST=2001:db8::1 LEN=80 TC=0 HOPLIMIT=64 FLOWLBL=12345 PROTO=UDP SPT=40000 DPT=9000 LEN=9"},
		{FormatFilterlog, "<134>1 2026-11-22T12:00:01.123456+00:00 fw filterlog 123 - - " +
			"5,,,1000000103,igb0,match,block,in,4,0x0,,64,0,0,DF,6,tcp,60,192.0.2.8,198.51.100.1,40000,7001,0,S,1234567,,64240,,mss;sackOK;TS;nop;wscale"},
		{FormatFilterlog, "<134>Nov 22 12:00:01 fw filterlog[123]: " +
			"5,,,1000000103,igb0,match,block,in,4,0x0,,64,0,0,DF,17,udp,37,192.0.2.9,198.51.100.1,40000,7002,17"},
	}
	var p Parser
	var want []sequence.Event
	var msgs []string
	for _, c := range lines {
		if !implemented[c.format] {
			continue
		}
		var ev sequence.Event
		if _, reason := p.Parse([]byte(c.line), &ev); reason != ReasonNone {
			t.Fatalf("the %v parser does not take %q: %v", c.format, c.line, reason)
		}
		ev.Time, ev.Input = slTime, slName
		want = append(want, ev)
		msgs = append(msgs, c.line)
	}
	if len(msgs) == 0 {
		t.Skip("no syslog-framed format is implemented")
	}

	r := slStart(t, &SyslogListener{Network: SyslogUDPTCP})
	u := slDial(t, "udp", r.addr(t, "udp"))
	for _, m := range msgs {
		slWrite(t, u, m+"\n")
	}
	r.expect(t, want...)

	c := slDial(t, "tcp", r.addr(t, "tcp"))
	for _, m := range msgs {
		slWrite(t, c, slOct(m))
	}
	r.expect(t, want...)
	for _, m := range msgs {
		slWrite(t, c, m+"\n")
	}
	r.expect(t, want...)
}

// TestSyslogTCPFraming mixes both framings of RFC 6587 on one connection.
func TestSyslogTCPFraming(t *testing.T) {
	slNetns(t)
	r := slStart(t, &SyslogListener{Network: SyslogTCP, MaxMessage: 64, Parser: Parser{Format: FormatSimple, Prefix: "knock"}})
	c := slDial(t, "tcp", r.addr(t, "tcp"))
	k := func(port int) string { return fmt.Sprintf("knock %d 192.0.2.%d", port, port-7000) }
	var want []sequence.Event
	add := func(ports ...int) {
		for _, p := range ports {
			want = append(want, slKnock(fmt.Sprintf("192.0.2.%d", p-7000), uint16(p), sequence.TCP))
		}
	}

	// Octet counting: several messages in one write, then one written in
	// pieces that split its length and its text.
	slWrite(t, c, slOct(k(7001))+slOct(k(7002))+slOct(k(7003)))
	add(7001, 7002, 7003)
	split := slOct(k(7004))
	slWrite(t, c, split[:1])
	slWrite(t, c, split[1:9])
	slWrite(t, c, split[9:])
	add(7004)
	// Non-transparent framing: LF, NUL and CRLF endings.
	slWrite(t, c, k(7005)+"\n"+k(7006)+"\x00"+k(7007)+"\r\n")
	add(7005, 7006, 7007)
	// Both in one write; empty frames (a sender ending octet-counted
	// messages with a newline as well) are ignored.
	slWrite(t, c, slOct(k(7008))+"\n"+k(7009)+"\n\n"+slOct(k(7010))+"\x00")
	add(7008, 7009, 7010)
	// Oversize messages are skipped, and what follows is read.
	slWrite(t, c, "300 "+strings.Repeat("k", 300)+slOct(k(7011)))
	add(7011)
	slWrite(t, c, strings.Repeat("k", 65)+"\n"+k(7012)+"\n")
	add(7012)
	slWrite(t, c, strings.Repeat("k", 1000)+"\x00"+k(7013)+"\n")
	add(7013)
	// An exactly maximal message is not oversize.
	exact := k(7014) + strings.Repeat(" ", 64-len(k(7014)))
	slWrite(t, c, slOct(exact)+exact+"\n")
	add(7014, 7014)
	// An octet-counted message of two lines, and a line that is no knock.
	slWrite(t, c, slOct(k(7015)+"\n"+k(7016)+"\n")+slOct("knock not a knock"))
	add(7015, 7016)
	// The last message may lack its terminator when the sender closes.
	slWrite(t, c, k(7017))
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	add(7017)

	r.expect(t, want...)
	slClosed(t, c) // the listener closes after the sender's end
	r.noEvents(t)
	r.eventually(t, "the connection to end", func(st input.Stats) bool { return st.Counter(SyslogOpen) == 0 })
	slStats(t, r.l.Stats(),
		input.Stats{Read: 22, Events: 18, Skipped: slSkipped(ReasonUnrecognized, 1, ReasonTooLong, 3)},
		map[string]uint64{SyslogMessages: 18, SyslogOversize: 3})
}

// TestSyslogTCPMalformed checks that broken framing closes the connection
// without reading past it, and is counted.
func TestSyslogTCPMalformed(t *testing.T) {
	slNetns(t)
	const after = "\nknock 7999 192.0.2.99\n" + "21 knock 7999 192.0.2.99"
	cases := []struct {
		name      string
		data      string
		closeSide bool // the sender ends the stream itself
	}{
		{"letter in length", "12x knock 7999 192.0.2.99" + after, false},
		{"no blank after length", "12\n" + after, false},
		{"leading zero", "021 knock 7999 192.0.2.99" + after, false},
		{"zero length", "0 " + after, false},
		{"ten digits", "1234567890 " + after, false},
		{"tab for blank", "21\tknock 7999 192.0.2.99" + after, false},
		{"cut in length", "2", true},
		{"cut in message", "21 knock 7999", true},
		{"cut in oversize message", "500 knock", true},
	}
	r := slStart(t, &SyslogListener{Network: SyslogTCP, MaxMessage: 64, Parser: Parser{Prefix: "knock"}})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := slDial(t, "tcp", r.addr(t, "tcp"))
			good := fmt.Sprintf("knock %d 192.0.2.%d", 7000+i, i+1)
			slWrite(t, c, slOct(good)+tc.data)
			if tc.closeSide {
				if err := c.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			r.expect(t, slKnock(fmt.Sprintf("192.0.2.%d", i+1), uint16(7000+i), sequence.TCP))
			slClosed(t, c)
			r.eventually(t, "the malformed stream to be counted", func(st input.Stats) bool { return st.Counter(SyslogMalformed) == uint64(i+1) })
		})
	}
	r.eventually(t, "connections to end", func(st input.Stats) bool { return st.Counter(SyslogOpen) == 0 })
	r.noEvents(t)
	st := r.l.Stats()
	if st.Events != uint64(len(cases)) || st.Counter(SyslogMalformed) != uint64(len(cases)) {
		t.Errorf("stats %+v: want %d events and as many malformed streams", st, len(cases))
	}
}

// TestSyslogEmitSerialized checks that emit sees one caller at a time even
// though connections are read concurrently: emit here keeps events in a
// plain slice, which the race detector and the in-flight count object to
// otherwise.
func TestSyslogEmitSerialized(t *testing.T) {
	slNetns(t)
	l := &SyslogListener{Name: slName, Network: SyslogUDPTCP, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	const conns, each = 4, 50
	var (
		got      []sequence.Event
		inFlight atomic.Int32
		overlap  atomic.Bool
		count    atomic.Int32
	)
	all := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(ev *sequence.Event, _ input.Mode) bool {
			if inFlight.Add(1) > 1 {
				overlap.Store(true)
			}
			got = append(got, *ev)
			runtime.Gosched() // give another caller the chance to overlap
			inFlight.Add(-1)
			if count.Add(1) == (conns+1)*each {
				close(all)
			}
			return true
		})
	}()
	addrs := l.Addrs()
	var senders []net.Conn
	for range conns {
		senders = append(senders, slDial(t, "tcp", addrs[1].String()))
	}
	senders = append(senders, slDial(t, "udp", addrs[0].String()))
	for i := range each {
		line := fmt.Sprintf("%d 192.0.2.1", 7000+i)
		for _, c := range senders[:conns] {
			slWrite(t, c, slOct(line))
		}
		slWrite(t, senders[conns], line) // a datagram needs no framing
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out with %d of %d events; stats %+v", count.Load(), (conns+1)*each, l.Stats())
	}
	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatal(err)
	}
	if overlap.Load() {
		t.Error("emit was called concurrently")
	}
	if len(got) != (conns+1)*each {
		t.Errorf("%d events kept, want %d", len(got), (conns+1)*each)
	}
}

func TestSyslogTCPConnLimit(t *testing.T) {
	slNetns(t)
	r := slStart(t, &SyslogListener{Network: SyslogTCP, MaxConns: 2})
	addr := r.addr(t, "tcp")
	served := func(c net.Conn, port uint16) {
		t.Helper()
		slWrite(t, c, slOct(fmt.Sprintf("%d 192.0.2.1", port)))
		r.expect(t, slKnock("192.0.2.1", port, sequence.TCP))
	}
	c1 := slDial(t, "tcp", addr)
	served(c1, 7001)
	c2 := slDial(t, "tcp", addr)
	served(c2, 7002)

	c3 := slDial(t, "tcp", addr)
	_, _ = c3.Write([]byte(slOct("7003 192.0.2.1"))) // may already fail
	slClosed(t, c3)
	r.eventually(t, "the connection to be refused", func(st input.Stats) bool { return st.Counter(SyslogRefused) == 1 })
	if st := r.l.Stats(); st.Counter(SyslogOpen) != 2 {
		t.Errorf("stats %+v: want 2 open", st)
	}
	served(c2, 7004) // the open ones are still served

	c1.Close()
	r.eventually(t, "a connection to end", func(st input.Stats) bool { return st.Counter(SyslogOpen) == 1 })
	c4 := slDial(t, "tcp", addr)
	served(c4, 7005)
	r.noEvents(t)
	// The listener counts an event once emit has returned, which may be
	// after the test has read it.
	r.eventually(t, "4 events counted", func(st input.Stats) bool { return st.Events == 4 })
	if st := r.l.Stats(); st.Counter(SyslogRefused) != 1 {
		t.Errorf("stats %+v: want 1 refused", st)
	}
}

func TestSyslogTCPIdle(t *testing.T) {
	slNetns(t)
	const idle = 200 * time.Millisecond
	r := slStart(t, &SyslogListener{Network: SyslogTCP, IdleTimeout: idle})
	c := slDial(t, "tcp", r.addr(t, "tcp"))
	last := time.Now()
	slWrite(t, c, slOct("7000 192.0.2.1"))
	r.expect(t, slKnock("192.0.2.1", 7000, sequence.TCP))
	// Then it falls silent and is closed, not before the timeout.
	slClosed(t, c)
	if gap := time.Since(last); gap < idle {
		t.Errorf("closed after %v of silence, before the idle timeout %v", gap, idle)
	}
	r.eventually(t, "the idle connection to be counted", func(st input.Stats) bool { return st.Counter(SyslogIdle) == 1 && st.Counter(SyslogOpen) == 0 })
	if st := r.l.Stats(); st.Counter(SyslogMalformed) != 0 {
		t.Errorf("stats %+v: an idle connection is not malformed", st)
	}
}

// slDeadlines is a connection that records the deadlines set on it and
// returns one byte per read.
type slDeadlines struct {
	net.Conn
	read, write []time.Time
}

func (c *slDeadlines) SetReadDeadline(d time.Time) error {
	c.read = append(c.read, d)
	return nil
}

func (c *slDeadlines) SetWriteDeadline(d time.Time) error {
	c.write = append(c.write, d)
	return nil
}

func (c *slDeadlines) Read(p []byte) (int, error) { return copy(p, "x"), nil }

func (c *slDeadlines) Write(p []byte) (int, error) { return len(p), nil }

// TestSyslogTimedConn checks the deadline of each read: the idle limit
// from the read between messages, and the message limit from the
// message's first byte once it has begun, however many reads it takes.
func TestSyslogTimedConn(t *testing.T) {
	const idle, message = time.Hour, 10 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	c := &slDeadlines{}
	tc := &syslogTimedConn{Conn: c, idle: idle, message: message, now: func() time.Time { return now }}
	buf := make([]byte, 8)
	read := func(at time.Duration, want time.Time, what string) {
		t.Helper()
		now = t0.Add(at)
		if _, err := tc.Read(buf); err != nil {
			t.Fatal(err)
		}
		if got := c.read[len(c.read)-1]; !got.Equal(want) {
			t.Errorf("%s: deadline %v, want %v", what, got.Sub(t0), want.Sub(t0))
		}
	}
	read(0, t0.Add(idle), "first read")
	read(time.Second, t0.Add(message), "second byte of the message") // the first began it at 0
	read(5*time.Second, t0.Add(message), "a later byte")
	tc.messageDone(false)
	if tc.inMessage() {
		t.Error("a message is under way after messageDone(false)")
	}
	read(7*time.Second, t0.Add(7*time.Second+idle), "between messages")
	// That read brought the next message's first byte at 7s.
	read(20*time.Second, t0.Add(17*time.Second), "the next message")
	now = t0.Add(25 * time.Second)
	tc.messageDone(true) // the next one's bytes are already buffered
	read(30*time.Second, t0.Add(35*time.Second), "a message buffered at its start")

	now = t0.Add(50 * time.Second)
	if _, err := tc.Write(buf); err != nil {
		t.Fatal(err)
	}
	if got := c.write[0]; !got.Equal(now.Add(message)) {
		t.Errorf("write deadline %v, want the message limit from the write", got.Sub(t0))
	}
}

// slLog captures log records as text.
type slLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *slLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *slLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func slLoopback6(t *testing.T) {
	t.Helper()
	c, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	c.Close()
}

func TestSyslogAllow(t *testing.T) {
	slNetns(t)
	cases := []struct {
		name  string
		addr  string
		allow []netip.Prefix
		ok    bool
		v6    bool
	}{
		{name: "default allows 127.0.0.1", addr: "127.0.0.1:0", ok: true},
		{name: "explicit 127.0.0.1", addr: "127.0.0.1:0", allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, ok: true},
		{name: "mapped prefix allows 127.0.0.1", addr: "127.0.0.1:0", allow: []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.0/104")}, ok: true},
		{name: "127.0.0.2 only", addr: "127.0.0.1:0", allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}},
		{name: "::1 only, sender 127.0.0.1", addr: "127.0.0.1:0", allow: []netip.Prefix{netip.MustParsePrefix("::1/128")}},
		{name: "default allows ::1", addr: "[::1]:0", ok: true, v6: true},
		{name: "127.0.0.0/8 only, sender ::1", addr: "[::1]:0", allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, v6: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.v6 {
				slLoopback6(t)
			}
			var logs slLog
			r := slStart(t, &SyslogListener{
				Network: SyslogUDPTCP,
				Addr:    tc.addr,
				Allow:   tc.allow,
				Logger:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			u := slDial(t, "udp", r.addr(t, "udp"))
			c := slDial(t, "tcp", r.addr(t, "tcp"))
			sender := netip.MustParseAddrPort(u.LocalAddr().String()).Addr()
			slWrite(t, u, "7000 192.0.2.1")
			_, _ = c.Write([]byte(slOct("7001 192.0.2.1"))) // may fail when closed
			if tc.ok {
				// UDP and TCP are read by different goroutines: either
				// event may come first.
				r.expectUnordered(t, slKnock("192.0.2.1", 7000, sequence.TCP), slKnock("192.0.2.1", 7001, sequence.TCP))
				if st := r.l.Stats(); st.Counter(SyslogDenied) != 0 {
					t.Errorf("stats %+v: nothing should be denied", st)
				}
				return
			}
			slClosed(t, c)
			r.eventually(t, "both senders to be denied", func(st input.Stats) bool { return st.Counter(SyslogDenied) == 2 })
			r.noEvents(t)
			if st := r.l.Stats(); st.Counter(SyslogMessages) != 0 || st.Read != 0 {
				t.Errorf("stats %+v: a denied sender's message was read", st)
			}
			log := logs.String()
			if !strings.Contains(log, "level=WARN") || !strings.Contains(log, sender.String()) {
				t.Errorf("the denied sender %v is not logged:\n%s", sender, log)
			}
		})
	}
}

func TestSyslogAllowed(t *testing.T) {
	l := &SyslogListener{Allow: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("::ffff:198.51.100.0/120"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("2001:db8::5/32"), // not masked
	}}
	cfg, err := l.config()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"192.0.2.5", true},
		{"::ffff:192.0.2.5", true},
		{"198.51.100.7", true},
		{"::ffff:198.51.100.7", true},
		{"fe80::1%eth0", true},
		{"2001:db8:1::9", true},
		{"203.0.113.1", false},
		{"127.0.0.1", false}, // an Allow list replaces the loopback default
		{"::1", false},
		{"2001:db9::1", false},
	} {
		if got := syslogAllowed(cfg.allow, netip.MustParseAddr(tc.addr)); got != tc.ok {
			t.Errorf("allowed(%s) = %v, want %v", tc.addr, got, tc.ok)
		}
	}
	if syslogAllowed(cfg.allow, netip.Addr{}) {
		t.Error("the zero address is allowed")
	}

	var def SyslogListener
	cfg, err = def.config()
	if err != nil {
		t.Fatal(err)
	}
	for addr, ok := range map[string]bool{"127.0.0.1": true, "127.9.8.7": true, "::1": true, "::ffff:127.0.0.1": true, "192.0.2.1": false, "::2": false} {
		if got := syslogAllowed(cfg.allow, netip.MustParseAddr(addr)); got != ok {
			t.Errorf("by default, allowed(%s) = %v, want %v", addr, got, ok)
		}
	}
}

// TestSyslogShutdown ends Run while connections are in every state: idle
// between messages, inside an octet-counted message, inside a line, and
// inside emit.
func TestSyslogShutdown(t *testing.T) {
	slNetns(t)
	l := &SyslogListener{Name: slName, Network: SyslogUDPTCP, Addr: "127.0.0.1:0", Now: func() time.Time { return slTime }, Logger: slog.New(slog.DiscardHandler)}
	if err := l.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan sequence.Event) // unbuffered: an unread event holds its sender in emit
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(ev *sequence.Event, _ input.Mode) bool {
			select {
			case events <- *ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	var tcpAddr, udpAddr string
	for _, a := range l.Addrs() {
		if a.Network() == "tcp" {
			tcpAddr = a.String()
		} else {
			udpAddr = a.String()
		}
	}
	recv := func(port uint16) {
		t.Helper()
		select {
		case ev := <-events:
			if ev.Port != port {
				t.Fatalf("event %+v, want port %d", ev, port)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for port %d", port)
		}
	}
	var conns []net.Conn
	for i, tail := range []string{"", "40 7000", "<13>Mar  4 05:06:07 host knock: 70", ""} {
		c := slDial(t, "tcp", tcpAddr)
		slWrite(t, c, slOct(fmt.Sprintf("%d 192.0.2.1", 7000+i))+tail)
		recv(uint16(7000 + i)) // the connection is being served
		conns = append(conns, c)
	}
	// This one's event is never received: its goroutine waits in emit.
	slWrite(t, conns[3], slOct("7100 192.0.2.1"))
	u := slDial(t, "udp", udpAddr)
	slWrite(t, u, "7200 192.0.2.1")
	if st := l.Stats(); st.Counter(SyslogOpen) != 4 {
		t.Fatalf("stats %+v: want 4 open connections", st)
	}

	cancel()
	if err := waitErr(t, done); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if leaks := slGoroutines(); len(leaks) > 0 {
		t.Fatalf("after Run returned, listener goroutines remain:\n%s", strings.Join(leaks, "\n\n"))
	}
	if st := l.Stats(); st.Counter(SyslogOpen) != 0 || st.Counter(SyslogMalformed) != 0 || st.Counter(SyslogIdle) != 0 {
		t.Errorf("stats %+v: want no open, malformed or idle connections", st)
	}
	for _, c := range conns {
		slClosed(t, c)
	}
	if c, err := net.Dial("tcp", tcpAddr); err == nil {
		c.Close()
		t.Error("the listener still accepts connections")
	}
	if err := l.Run(context.Background(), func(*sequence.Event, input.Mode) bool { return true }); err == nil {
		t.Error("a second Run succeeded")
	}
}

func TestSyslogListen(t *testing.T) {
	slNetns(t)
	for _, tc := range []struct {
		name string
		l    func(*SyslogListener)
		want string
	}{
		{"network", func(l *SyslogListener) { l.Network = "sctp" }, "unknown syslog network"},
		{"address", func(l *SyslogListener) { l.Addr = "localhost" }, "bad listen address"},
		{"max message", func(l *SyslogListener) { l.MaxMessage = MaxSyslogMessage + 1 }, "maximum message size"},
		{"negative max message", func(l *SyslogListener) { l.MaxMessage = -1 }, "maximum message size"},
		{"max conns", func(l *SyslogListener) { l.MaxConns = -1 }, "maximum connections"},
		{"idle", func(l *SyslogListener) { l.IdleTimeout = -time.Second }, "idle timeout"},
		{"max per sender", func(l *SyslogListener) { l.MaxConnsPerSender = -1 }, "maximum connections per sender"},
		{"message timeout", func(l *SyslogListener) { l.MessageTimeout = -time.Second }, "message timeout"},
		{"tls without credentials", func(l *SyslogListener) { l.Network = SyslogTLS }, "needs a certificate and key"},
		{"credentials without tls", func(l *SyslogListener) { l.Network = SyslogTCP; l.TLS = &SyslogCredentials{} }, "TLS credentials given to a tcp listener"},
		{"spoofable udp", func(l *SyslogListener) { l.Addr = "0.0.0.0:0" }, "UDP senders can be spoofed"},
		{"spoofable udp+tcp", func(l *SyslogListener) { l.Network = SyslogUDPTCP; l.Addr = "[::]:0" }, "UDP senders can be spoofed"},
		{"spoofable udp, any address", func(l *SyslogListener) { l.Addr = ":0" }, "UDP senders can be spoofed"},
		{"format", func(l *SyslogListener) { l.Parser.Format = formatCount }, "unknown format"},
		{"prefix", func(l *SyslogListener) { l.Allow = []netip.Prefix{{}} }, "invalid allowed prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &SyslogListener{Name: "in", Addr: "127.0.0.1:0"}
			tc.l(l)
			err := l.Listen()
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), `"in"`) {
				t.Errorf("Listen: %v, want an error about %q", err, tc.want)
			}
			if err := l.Run(context.Background(), func(*sequence.Event, input.Mode) bool { return true }); err == nil {
				t.Error("Run succeeded")
			}
			if a := l.Addrs(); a != nil {
				t.Errorf("Addrs = %v without a bound socket", a)
			}
		})
	}

	t.Run("port in use", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		l := SyslogListener{Network: SyslogTCP, Addr: busy.Addr().String()}
		if err := l.Listen(); err == nil {
			l.Close()
			t.Fatal("Listen on a port in use succeeded")
		}
	})

	t.Run("udp and tcp share a port", func(t *testing.T) {
		l := SyslogListener{Network: SyslogUDPTCP, Addr: "127.0.0.1:0"}
		if err := l.Listen(); err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.Listen(); err != nil {
			t.Fatalf("a second Listen: %v", err)
		}
		a := l.Addrs()
		if len(a) != 2 {
			t.Fatalf("Addrs = %v", a)
		}
		u, ok1 := a[0].(*net.UDPAddr)
		c, ok2 := a[1].(*net.TCPAddr)
		if !ok1 || !ok2 || u.Port != c.Port || u.Port == 0 || !u.IP.IsLoopback() {
			t.Errorf("Addrs = %v, want UDP and TCP on one loopback port", a)
		}
	})

	t.Run("closed", func(t *testing.T) {
		l := SyslogListener{Addr: "127.0.0.1:0"}
		if err := l.Listen(); err != nil {
			t.Fatal(err)
		}
		l.Close()
		if err := l.Run(context.Background(), func(*sequence.Event, input.Mode) bool { return true }); err == nil {
			t.Error("Run after Close succeeded")
		}
	})

	t.Run("defaults", func(t *testing.T) {
		var l SyslogListener
		cfg, err := l.config()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.network != SyslogUDP || cfg.addr != DefaultSyslogAddr || cfg.maxMessage != DefaultMaxMessage ||
			cfg.maxConns != DefaultMaxConns || cfg.maxPerSrc != DefaultMaxConnsPerSender ||
			cfg.msgTimeout != DefaultMessageTimeout || cfg.idle != DefaultIdleTimeout || cfg.tlsListener {
			t.Errorf("defaults: %+v", cfg)
		}
		tl := SyslogListener{Network: SyslogTLS, TLS: &SyslogCredentials{}}
		if cfg, err := tl.config(); err != nil || cfg.addr != DefaultSyslogTLSAddr || !cfg.tlsListener {
			t.Errorf("TLS defaults: %+v, %v", cfg, err)
		}
	})
}

// slFrames runs syslogFrames over r and collects what it reports. It also
// checks that every message, framed or oversize, is followed by a
// boundary before the next: the message time limit relies on it.
func slFrames(r io.Reader, maxMsg int) (frames []string, oversize int, err error) {
	br := bufio.NewReaderSize(r, maxMsg+1)
	pending := false
	message := func() {
		if pending {
			panic("two messages without a boundary between them")
		}
		pending = true
	}
	err = syslogFrames(br, maxMsg, func(m []byte) {
		if len(m) == 0 || len(m) > maxMsg {
			panic(fmt.Sprintf("frame of %d bytes, limit %d", len(m), maxMsg))
		}
		message()
		frames = append(frames, string(m))
	}, func() {
		message()
		oversize++
	}, func() { pending = false })
	if err == nil && pending {
		panic("the last message had no boundary")
	}
	return frames, oversize, err
}

// slRefFrames is the framing read straight off the whole stream, to check
// the incremental splitter against.
func slRefFrames(s string, maxMsg int) (frames []string, oversize int, malformed bool) {
	for s != "" {
		if s[0] >= '0' && s[0] <= '9' {
			lenStr, rest, ok := strings.Cut(s, " ")
			if !ok || len(lenStr) > syslogMaxLenDigits || lenStr[0] == '0' || strings.Trim(lenStr, "0123456789") != "" {
				return frames, oversize, true
			}
			n, _ := strconv.Atoi(lenStr)
			if n > maxMsg {
				oversize++
			}
			if n > len(rest) {
				return frames, oversize, true
			}
			if n <= maxMsg {
				frames = append(frames, rest[:n])
			}
			s = rest[n:]
			continue
		}
		msg := s
		if i := strings.IndexAny(s, "\n\x00"); i >= 0 {
			msg, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		switch {
		case len(msg) > maxMsg:
			oversize++
		case msg != "":
			frames = append(frames, msg)
		}
	}
	return frames, oversize, false
}

// slChunks reads its data a few bytes at a time, as a TCP stream arrives.
type slChunks struct {
	data []byte
	size int
}

func (c *slChunks) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// slCheckFrames checks the splitter on stream against the reference,
// whichever way the stream is cut into reads.
func slCheckFrames(t *testing.T, stream string, maxMsg int) (frames []string, oversize int, malformed bool) {
	t.Helper()
	frames, oversize, malformed = slRefFrames(stream, maxMsg)
	readers := map[string]io.Reader{
		"whole":    strings.NewReader(stream),
		"one byte": iotest.OneByteReader(strings.NewReader(stream)),
		"3 bytes":  &slChunks{[]byte(stream), 3},
		"odd":      &slChunks{[]byte(stream), maxMsg/2 + 1},
	}
	for name, r := range readers {
		got, gotOver, err := slFrames(r, maxMsg)
		if err != nil && !errors.Is(err, errSyslogFraming) {
			t.Fatalf("%s: error %v", name, err)
		}
		if !slices.Equal(got, frames) || gotOver != oversize || (err != nil) != malformed {
			t.Fatalf("%s reads of %q (limit %d):\n got  %q, %d oversize, err %v\n want %q, %d oversize, malformed %v",
				name, stream, maxMsg, got, gotOver, err, frames, oversize, malformed)
		}
	}
	return frames, oversize, malformed
}

func TestSyslogFrames(t *testing.T) {
	cases := []struct {
		name      string
		stream    string
		max       int
		frames    []string
		oversize  int
		malformed bool
	}{
		{name: "empty", stream: "", max: 16},
		{name: "octet counted", stream: "3 abc2 de", max: 16, frames: []string{"abc", "de"}},
		{name: "octet counted keeps LF and NUL", stream: "4 a\nb\x00", max: 16, frames: []string{"a\nb\x00"}},
		{name: "octet counted then LF", stream: "3 abc\n3 def\n", max: 16, frames: []string{"abc", "def"}},
		{name: "lines", stream: "<1>a\n<2>b\x00<3>c\r\n", max: 16, frames: []string{"<1>a", "<2>b", "<3>c\r"}},
		{name: "empty lines", stream: "\n\x00\n<1>a\n\n", max: 16, frames: []string{"<1>a"}},
		{name: "unterminated last line", stream: "<1>a\n<2>b", max: 16, frames: []string{"<1>a", "<2>b"}},
		{name: "line may contain digits and blanks", stream: "x12 a\n", max: 16, frames: []string{"x12 a"}},
		{name: "exact maximum", stream: "4 abcdabcd\n", max: 4, frames: []string{"abcd", "abcd"}},
		{name: "oversize count", stream: "5 abcde3 xyz", max: 4, frames: []string{"xyz"}, oversize: 1},
		{name: "huge count skipped", stream: "999999999 " + strings.Repeat("z", 100), max: 4, oversize: 1, malformed: true},
		{name: "oversize line", stream: "abcde\nxyz\n", max: 4, frames: []string{"xyz"}, oversize: 1},
		{name: "oversize line to NUL", stream: "abcdefghij\x00xyz", max: 4, frames: []string{"xyz"}, oversize: 1},
		{name: "oversize unterminated", stream: "xyz\nabcdefghij", max: 4, frames: []string{"xyz"}, oversize: 1},
		{name: "oversize line then count", stream: "abcdefghij\n2 ab", max: 4, frames: []string{"ab"}, oversize: 1},
		{name: "leading zeros", stream: "000000001 a", max: 4, malformed: true},
		{name: "ten digits", stream: "1000000000 a", max: 4, malformed: true},
		{name: "leading zero", stream: "01 a", max: 4, malformed: true},
		{name: "zero", stream: "0 ", max: 4, malformed: true},
		{name: "no blank", stream: "12\nabc", max: 4, malformed: true},
		{name: "cut in count", stream: "1", max: 4, malformed: true},
		{name: "cut after count", stream: "1 ", max: 4, malformed: true},
		{name: "cut in message", stream: "<1>a\n3 ab", max: 4, frames: []string{"<1>a"}, malformed: true},
		{name: "cut in oversize message", stream: "9 ab", max: 4, oversize: 1, malformed: true},
		// Found by FuzzSyslogFraming: an unterminated last line whose
		// bytes the final read moved within the buffer.
		{name: "unterminated line moved in the buffer", stream: "10 0000000000A0", max: 5, frames: []string{"A0"}, oversize: 1},
		{name: "malformed stops reading", stream: "1x\n<1>a\n", max: 4, malformed: true},
		// The price of detecting octet counting by the first byte, as
		// rsyslog does: a bare line that starts with digits and a blank is
		// a length over TCP.
		{name: "bare simple line is a length", stream: "7000 192.0.2.7\n", max: 64, oversize: 1, malformed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frames, oversize, malformed := slCheckFrames(t, tc.stream, tc.max)
			if !slices.Equal(frames, tc.frames) || oversize != tc.oversize || malformed != tc.malformed {
				t.Errorf("got %q, %d oversize, malformed %v; want %q, %d, %v", frames, oversize, malformed, tc.frames, tc.oversize, tc.malformed)
			}
		})
	}
}

// TestSyslogFramesBounded checks that an oversize message is skipped
// through a buffer of the limit's size rather than read whole.
func TestSyslogFramesBounded(t *testing.T) {
	const huge = 8 << 20
	for _, head := range []string{strconv.Itoa(huge) + " ", ""} {
		r := io.MultiReader(strings.NewReader(head), &slRepeat{n: huge}, strings.NewReader("\n<1>end\n"))
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		before := m.TotalAlloc
		frames, oversize, err := slFrames(r, 64)
		runtime.ReadMemStats(&m)
		if err != nil || oversize != 1 || !slices.Equal(frames, []string{"<1>end"}) {
			t.Errorf("%q: %q, %d oversize, %v", head, frames, oversize, err)
		}
		if grew := m.TotalAlloc - before; grew > 1<<20 {
			t.Errorf("%q: skipping %d bytes allocated %d bytes", head, huge, grew)
		}
	}
}

// slRepeat yields n bytes of 'x' without holding them.
type slRepeat struct{ n int }

func (r *slRepeat) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	for i := range n {
		p[i] = 'x'
	}
	r.n -= n
	return n, nil
}

func TestSyslogLines(t *testing.T) {
	for msg, want := range map[string][]string{
		"":                    nil,
		"a":                   {"a"},
		"a\n":                 {"a"},
		"a\r\n":               {"a"},
		"a\r\r\n":             {"a\r"},
		"a\nb\x00c":           {"a", "b", "c"},
		"\n\r\n\x00a\n\n":     {"a"},
		"\r":                  nil,
		"a\x00\nb":            {"a", "b"},
		"<13>x: 7000 1.2.3.4": {"<13>x: 7000 1.2.3.4"},
	} {
		var got []string
		syslogLines([]byte(msg), func(l []byte) { got = append(got, string(l)) })
		if !slices.Equal(got, want) {
			t.Errorf("lines of %q = %q, want %q", msg, got, want)
		}
	}
}

// FuzzSyslogFraming checks the TCP splitter against the reference on any
// stream, cut into reads of any size.
func FuzzSyslogFraming(f *testing.F) {
	for _, s := range []string{
		"3 abc2 de", "<1>a\n<2>b\x00<3>c\r\n", "4 abcdabcd\n", "5 abcde3 xyz", "abcdefghij\n2 ab",
		"000000001 a", "1000000000 a", "12\nabc", "9 ab", "\n\x00\n<1>a", "7000 192.0.2.7\n",
	} {
		f.Add([]byte(s), uint8(4), uint8(3))
	}
	f.Fuzz(func(t *testing.T, stream []byte, maxMsg, chunk uint8) {
		max := int(maxMsg)%200 + 1
		want, wantOver, wantBad := slRefFrames(string(stream), max)
		for _, r := range []io.Reader{
			&slChunks{stream, int(chunk)%17 + 1},
			iotest.OneByteReader(bytes.NewReader(stream)),
		} {
			got, over, err := slFrames(r, max)
			if err != nil && !errors.Is(err, errSyslogFraming) {
				t.Fatalf("error %v", err)
			}
			if !slices.Equal(got, want) || over != wantOver || (err != nil) != wantBad {
				t.Fatalf("stream %q, limit %d:\n got  %q, %d oversize, err %v\n want %q, %d oversize, malformed %v",
					stream, max, got, over, err, want, wantOver, wantBad)
			}
		}
	})
}
