package textlog

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"portknock/input"
	"portknock/sequence"
)

func TestLoopbackListen(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:514":        true,
		"127.9.8.7:514":        true,
		"[::1]:514":            true,
		"[::ffff:127.0.0.1]:1": true,
		"0.0.0.0:514":          false,
		"[::]:514":             false,
		":514":                 false,
		"192.0.2.1:514":        false,
		"[2001:db8::1]:514":    false,
		"[fe80::1%lo]:514":     false,
		"localhost:514":        false, // a name: what it resolves to is not ours to know
		"127.0.0.1":            false, // not host:port
		"":                     false,
	} {
		if got := LoopbackListen(addr); got != want {
			t.Errorf("LoopbackListen(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestSyslogSpoofableUDP checks that a UDP listener beyond loopback binds
// only when spoofable senders are accepted explicitly, and that the
// refusal says why.
func TestSyslogSpoofableUDP(t *testing.T) {
	slNetns(t)
	l := &SyslogListener{Name: "fw", Addr: "0.0.0.0:0"}
	err := l.Listen()
	if err == nil {
		l.Close()
		t.Fatal("a UDP listener on 0.0.0.0 bound without AcceptSpoofable")
	}
	if strings.Contains(err.Error(), "fw") {
		t.Errorf("error %q names the input: its caller does", err)
	}
	for _, want := range []string{"0.0.0.0:0", "UDP senders can be spoofed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	l = &SyslogListener{Name: "fw", Addr: "0.0.0.0:0", AcceptSpoofable: true}
	if err := l.Listen(); err != nil {
		t.Fatalf("with AcceptSpoofable: %v", err)
	}
	l.Close()
	// TCP senders cannot be spoofed: no flag needed.
	l = &SyslogListener{Name: "fw", Network: SyslogTCP, Addr: "0.0.0.0:0"}
	if err := l.Listen(); err != nil {
		t.Fatalf("TCP on 0.0.0.0: %v", err)
	}
	l.Close()
}

func TestSyslogWarnLimit(t *testing.T) {
	var w syslogWarnLimit
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	type step struct {
		at   time.Duration
		src  netip.Addr
		ok   bool
		held uint64
	}
	for i, s := range []step{
		{0, a, true, 0},
		{time.Second, a, false, 0},
		{2 * time.Second, b, true, 1}, // another sender is warned about, with the count held back
		{9 * time.Second, a, false, 0},
		{10 * time.Second, a, true, 1},
		{10 * time.Second, netip.MustParseAddr("::ffff:192.0.2.1"), false, 0}, // the same sender, mapped
	} {
		ok, held := w.allow(t0.Add(s.at), s.src)
		if ok != s.ok || held != s.held {
			t.Errorf("step %d (%v at %v): allow = %v, %d held; want %v, %d", i, s.src, s.at, ok, held, s.ok, s.held)
		}
	}

	// Many senders at once: at most syslogWarnSenders lines in a period.
	var m syslogWarnLimit
	logged := 0
	for i := range 1000 {
		src := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		if ok, _ := m.allow(t0, src); ok {
			logged++
		}
	}
	if logged != syslogWarnSenders {
		t.Errorf("%d of 1000 senders warned about at once, want %d", logged, syslogWarnSenders)
	}
	if len(m.last) > syslogWarnSenders {
		t.Errorf("the limit remembers %d senders, more than %d", len(m.last), syslogWarnSenders)
	}
	// A period later the old entries make room, and the line says how
	// many were held back.
	ok, held := m.allow(t0.Add(syslogWarnEvery), netip.MustParseAddr("203.0.113.1"))
	if !ok || held != 1000-syslogWarnSenders {
		t.Errorf("a period later: allow = %v, %d held; want true, %d", ok, held, 1000-syslogWarnSenders)
	}
}

// slDialFrom connects to addr from the local address from, one of the
// loopback addresses, so that a test can play several senders.
func slDialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// slOpen waits until the listener serves want connections, so that a test
// knows which of its connections were accepted before it makes the next.
func (r *slRun) slOpen(t *testing.T, want int) {
	t.Helper()
	r.eventually(t, fmt.Sprintf("%d open connections", want), func(st input.Stats) bool { return st.Counter(SyslogOpen) == uint64(want) })
}

// TestSyslogSlowSender checks that a TCP sender must deliver each message
// within the message time limit from its first byte: one that sends a
// byte and falls silent, or dribbles, is cut off at the limit and logged
// as a warning, while an idle one between messages is not.
func TestSyslogSlowSender(t *testing.T) {
	slNetns(t)
	const limit = 300 * time.Millisecond
	var logs slLog
	r := slStart(t, &SyslogListener{
		Network:        SyslogTCP,
		MessageTimeout: limit,
		IdleTimeout:    time.Hour,
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
	})
	addr := r.addr(t, "tcp")

	cases := []struct {
		name   string
		before string // sent first, whole
		slow   string // then sent a byte at a time, every pace
		pace   time.Duration
	}{
		{name: "one byte then silence", slow: "3"},
		{name: "a byte every 50ms", slow: slOct("7000 192.0.2.1"), pace: 50 * time.Millisecond},
		{name: "length, then half the message", before: "14 7000 192", slow: "."},
		{name: "a line without its end", before: "<13>Mar  4 05:06:07 host knock: 7000 ", slow: "1"},
		{name: "a whole message, then part of the next", before: slOct("7001 192.0.2.1") + "14 ", slow: "7"},
	}
	slow := uint64(0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := slDial(t, "tcp", addr)
			if tc.before != "" {
				slWrite(t, c, tc.before)
			}
			first := time.Now()
			done := make(chan struct{})
			go func() {
				// One byte, or all of them paced: a few, so the
				// loop is bounded whatever the listener does.
				for i := range len(tc.slow) {
					if _, err := c.Write([]byte{tc.slow[i]}); err != nil || tc.pace == 0 {
						return
					}
					select {
					case <-done:
						return
					case <-time.After(tc.pace):
					}
				}
			}()
			slClosed(t, c)
			close(done)
			if d := time.Since(first); d < limit {
				t.Errorf("cut off after %v, before the limit %v", d, limit)
			}
			slow++
			r.eventually(t, "the slow sender to be counted", func(st input.Stats) bool { return st.Counter(SyslogSlow) == slow })
		})
	}
	// A sender that stops between messages is idle, not slow, and the
	// message before the slow one was read.
	c := slDial(t, "tcp", addr)
	slWrite(t, c, slOct("7002 192.0.2.1"))
	r.expect(t, slKnock("192.0.2.1", 7001, sequence.TCP), slKnock("192.0.2.1", 7002, sequence.TCP))
	r.slOpen(t, 1)
	before := r.l.Stats().Counter(SyslogSlow)
	// Silence between messages is what is being tested here: it may
	// last longer than the message limit.
	time.Sleep(2 * limit)
	slWrite(t, c, slOct("7003 192.0.2.1"))
	r.expect(t, slKnock("192.0.2.1", 7003, sequence.TCP))
	if st := r.l.Stats(); st.Counter(SyslogSlow) != before || st.Counter(SyslogOpen) != 1 {
		t.Errorf("stats %+v: a sender between messages was cut off", st)
	}

	log := logs.String()
	lines := 0
	for l := range strings.SplitSeq(log, "\n") {
		if strings.Contains(l, "a message took longer than the time limit") {
			lines++
			for _, want := range []string{"level=WARN", "input=" + slName, "src=127.0.0.1", "limit=300ms"} {
				if !strings.Contains(l, want) {
					t.Errorf("log line lacks %q: %s", want, l)
				}
			}
		}
	}
	// One sender address: the rate limit lets one line through.
	if lines != 1 {
		t.Errorf("%d warnings about slow senders, want 1 (rate-limited):\n%s", lines, log)
	}
}

// TestSyslogSlowSendersHoldNoSlots: slow senders that hold connections
// cannot lock out a real sender. One address gets at most its share of
// the slots, the rest are refused with a warning, and every slot comes
// free once the message limit cuts the slow ones off.
func TestSyslogSlowSendersHoldNoSlots(t *testing.T) {
	slNetns(t)
	// The slow senders must still hold their slots when the cap is
	// checked, a dozen steps after they began: milliseconds on an idle
	// machine, and a busy one must not make the limit cut them off first.
	const limit = 3 * time.Second
	var logs slLog
	r := slStart(t, &SyslogListener{
		Network:           SyslogTCP,
		MaxConns:          4,
		MaxConnsPerSender: 2,
		MessageTimeout:    limit,
		IdleTimeout:       time.Hour,
		Logger:            slog.New(slog.NewTextHandler(&logs, nil)),
	})
	addr := r.addr(t, "tcp")
	var slow []net.Conn
	start := time.Now()
	for range 2 {
		c := slDialFrom(t, "127.0.0.1", addr)
		slWrite(t, c, "4") // a message begun, never ended
		slow = append(slow, c)
	}
	r.slOpen(t, 2)
	// The same sender's third connection is refused at once.
	third := slDialFrom(t, "127.0.0.1", addr)
	slClosed(t, third)
	r.eventually(t, "the third connection to be refused", func(st input.Stats) bool { return st.Counter(SyslogRefusedSender) == 1 })

	// A real sender from another address gets through.
	real := slDialFrom(t, "127.0.0.2", addr)
	slWrite(t, real, slOct("7000 192.0.2.1"))
	r.expect(t, slKnock("192.0.2.1", 7000, sequence.TCP))

	// The global cap still holds: a fourth connection from a third
	// sender fills it, and a fifth is refused.
	fourth := slDialFrom(t, "127.0.0.3", addr)
	slWrite(t, fourth, "1")
	r.slOpen(t, 4)
	fifth := slDialFrom(t, "127.0.0.4", addr)
	slClosed(t, fifth)
	r.eventually(t, "the fifth connection to be refused", func(st input.Stats) bool { return st.Counter(SyslogRefused) == 1 })

	// The slow ones are cut off at the limit, which frees their slots.
	for _, c := range slow {
		slClosed(t, c)
	}
	if d := time.Since(start); d < limit {
		t.Errorf("slow senders cut off after %v, before the limit %v", d, limit)
	}
	slClosed(t, fourth)
	r.eventually(t, "the slow senders to be cut off", func(st input.Stats) bool { return st.Counter(SyslogSlow) == 3 && st.Counter(SyslogOpen) == 1 })
	again := slDialFrom(t, "127.0.0.4", addr)
	slWrite(t, again, slOct("7001 192.0.2.1"))
	r.expect(t, slKnock("192.0.2.1", 7001, sequence.TCP))
	slWrite(t, real, slOct("7002 192.0.2.1"))
	r.expect(t, slKnock("192.0.2.1", 7002, sequence.TCP))

	log := logs.String()
	for _, want := range []string{
		`level=WARN msg="refusing a syslog connection: the sender has as many open as one sender may" input=` + slName + " src=127.0.0.1",
		`level=WARN msg="refusing a syslog connection: the listener has as many open as it serves" input=` + slName + " src=127.0.0.4",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestSyslogSenders(t *testing.T) {
	var s syslogSenders
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	if !s.add(a, 2) || !s.add(a, 2) || s.add(a, 2) {
		t.Fatal("want exactly 2 connections from a")
	}
	if !s.add(b, 2) {
		t.Fatal("b is refused for a's connections")
	}
	s.done(a)
	if !s.add(a, 2) {
		t.Fatal("a closed one and may open another")
	}
	s.done(a)
	s.done(a)
	s.done(b)
	if len(s.open) != 0 {
		t.Errorf("senders without connections are remembered: %v", s.open)
	}
}

// FuzzLoopbackListen checks LoopbackListen against the net package's own
// reading of the address: only a host:port whose host is a loopback IP
// address may pass.
func FuzzLoopbackListen(f *testing.F) {
	for _, s := range []string{"127.0.0.1:514", "[::1]:514", ":514", "[::ffff:127.0.0.1]:1", "localhost:514", "[fe80::1%lo]:1", "0.0.0.0:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if !LoopbackListen(addr) {
			return
		}
		host, _, err := net.SplitHostPort(addr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() {
			t.Fatalf("LoopbackListen(%q) = true; the net package reads host %q (%v): not a loopback address", addr, host, err)
		}
	})
}
