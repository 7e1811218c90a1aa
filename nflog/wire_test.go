package nflog

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/mdlayher/netlink"

	"portknock/sequence"
)

// Datagrams read from an NFLOG socket bound to group 5 in a network
// namespace (x86-64, so host byte order is little-endian), with the rule
// `tcp dport 7000 counter log group 5 prefix "knock" drop` and SYNs from
// 127.0.0.1 to 127.0.0.1:7000.
var (
	// The acknowledgement of the bind request (sequence number 1).
	capBindAck = mustHex(`240000000200000101000000ed71000000000000380000000104050001000000ed710000`)
	// One log message, queue threshold 1: packet header (hook 1, input),
	// prefix "knock\0", timestamp, sequence number 0, payload (a SYN).
	capLogSYN = mustHex(`c00000000004000000000000000000000200000508000100080001000a000a006b6e6f63
		6b00000008000400000000011000080000060000000000000000000006000f0003040000
		06001100000e000012001000000000000000000000000000080000001400030000000000
		6b11749d0000000000077ad208000c0000000000400009004500003c42d340004006f9e6
		7f0000017f0000018bbf1b58bf89b52c00000000a002ffd7fe3000000204ffd70402080a
		606ff755000000000103030a`)
	// Three log messages (sequence numbers 1-3) and NLMSG_DONE, queue
	// threshold 3.
	capBatch = mustHex(`c00000000004000000000000000000000200000508000100080001000a000a006b6e6f63
		6b00000008000400000000011000080000060000000000000000000006000f0003040000
		06001100000e000012001000000000000000000000000000080000001400030000000000
		6b11749d0000000000090f2508000c0000000001400009004500003ca017400040069ca2
		7f0000017f000001df691b58466bd38b00000000a002ffd7fe3000000204ffd70402080a
		01afcbcb000000000103030ac00000000004000000000000000000000200000508000100
		080001000a000a006b6e6f636b0000000800040000000001100008000006000000000000
		0000000006000f000304000006001100000e000012001000000000000000000000000000
		0800000014000300000000006b11749d0000000000090f4308000c000000000240000900
		4500003cd6174000400666a27f0000017f000001e7311b588ec37c3600000000a002ffd7
		fe3000000204ffd70402080a05d23d62000000000103030ac00000000004000000000000
		000000000200000508000100080001000a000a006b6e6f636b0000000800040000000001
		1000080000060000000000000000000006000f000304000006001100000e000012001000
		0000000000000000000000000800000014000300000000006b11749d0000000000090f53
		08000c0000000003400009004500003cd7154000400665a47f0000017f000001bd151b58
		9945188000000000a002ffd7fe3000000204ffd70402080a99c77a1a000000000103030a
		1400000003000000000000000000000000000005`)
	// The kernel's refusal (ENODEV) of a queue setting for group 99, which
	// the socket had not bound, sequence number 3.
	capRefused = mustHex(`400000000200000003000000ed710000edffffff2c0000000104010003000000ed710000
		00000063080004000000006408000500000000030800030000004000`)
)

// littleEndian skips tests of captured bytes where host byte order is not
// the one they were captured in.
func littleEndian(tb testing.TB) {
	tb.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		tb.Skip("the netlink captures are little-endian")
	}
}

// splitAll splits a datagram into its messages.
func splitAll(b []byte) ([]nlMessage, error) {
	var ms []nlMessage
	for len(b) > 0 {
		m, rest, err := nextMessage(b)
		if err != nil {
			return ms, err
		}
		ms = append(ms, m)
		b = rest
	}
	return ms, nil
}

const typeLog = nfnlSubsysULOG<<8 | nfulnlMsgPkt

func TestNextMessage(t *testing.T) {
	littleEndian(t)
	tests := []struct {
		name  string
		dgram []byte
		types []uint16
		seqs  []uint32
		err   bool
	}{
		{name: "acknowledgement", dgram: capBindAck, types: []uint16{nlmsgError}, seqs: []uint32{1}},
		{name: "one log message", dgram: capLogSYN, types: []uint16{typeLog}, seqs: []uint32{0}},
		{name: "batch", dgram: capBatch, types: []uint16{typeLog, typeLog, typeLog, nlmsgDone}, seqs: []uint32{0, 0, 0, 0}},
		{name: "refusal", dgram: capRefused, types: []uint16{nlmsgError}, seqs: []uint32{3}},
		{name: "empty", dgram: nil},
		{name: "header cut", dgram: capLogSYN[:15], err: true},
		{name: "body cut", dgram: capLogSYN[:len(capLogSYN)-1], err: true},
		{name: "second message cut", dgram: capBatch[:len(capBatch)-1], types: []uint16{typeLog, typeLog, typeLog}, seqs: []uint32{0, 0, 0}, err: true},
		{name: "length below the header", dgram: append([]byte{15, 0, 0, 0}, capLogSYN[4:]...), err: true},
		{name: "last message without its padding", dgram: capBindAck[:len(capBindAck)], types: []uint16{nlmsgError}, seqs: []uint32{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := splitAll(tt.dgram)
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want one: %v", err, tt.err)
			}
			if len(ms) != len(tt.types) {
				t.Fatalf("%d messages, want %d", len(ms), len(tt.types))
			}
			for i, m := range ms {
				if m.typ != tt.types[i] || m.seq != tt.seqs[i] {
					t.Errorf("message %d: type %#x seq %d, want %#x seq %d", i, m.typ, m.seq, tt.types[i], tt.seqs[i])
				}
			}
		})
	}
}

func TestErrorCode(t *testing.T) {
	littleEndian(t)
	tests := []struct {
		name  string
		dgram []byte
		errno int32
		seq   uint32
	}{
		{name: "acknowledgement", dgram: capBindAck, errno: 0, seq: 1},
		{name: "refusal", dgram: capRefused, errno: -19, seq: 3}, // ENODEV
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, err := nextMessage(tt.dgram)
			if err != nil {
				t.Fatal(err)
			}
			errno, seq, err := errorCode(m.body)
			if err != nil || errno != tt.errno || seq != tt.seq {
				t.Errorf("errno %d seq %d err %v, want %d, %d", errno, seq, err, tt.errno, tt.seq)
			}
			if _, _, err := errorCode(m.body[:19]); err == nil {
				t.Error("no error for a cut body")
			}
		})
	}
}

// logBody is the body of the first message of capLogSYN.
func logBody(t testing.TB) []byte {
	m, _, err := nextMessage(capLogSYN)
	if err != nil {
		t.Fatal(err)
	}
	return m.body
}

// attrAt is the offset in the body of capLogSYN's first attribute of type typ.
func attrAt(t testing.TB, body []byte, typ uint16) int {
	for off := nfgenmsgLen; off+4 <= len(body); {
		n := int(binary.NativeEndian.Uint16(body[off:]))
		if binary.NativeEndian.Uint16(body[off+2:]) == typ {
			return off
		}
		off += align4(n)
	}
	t.Fatalf("no attribute %d", typ)
	return 0
}

func TestDecodeLog(t *testing.T) {
	littleEndian(t)
	body := logBody(t)
	var m logMsg
	if err := decodeLog(body, &m); err != nil {
		t.Fatal(err)
	}
	if !m.hasHook || m.hook != 1 || !m.hasSeq || m.seq != 0 || !m.hasPrefix || string(m.prefix) != "knock\x00" ||
		!m.hasPayload || !bytes.Equal(m.payload, capLogSYN[len(capLogSYN)-60:]) ||
		!m.hasTime || m.sec != 0x6b11749d || m.usec != 0x77ad2 {
		t.Fatalf("decoded %+v", m)
	}
	var ev sequence.Event
	if r := ParsePacket(m.payload, &ev); r != ReasonNone || ev.Src.String() != "127.0.0.1" || ev.Port != 7000 || ev.Flags != sequence.TCPFlags(0x02) {
		t.Errorf("payload: %v %+v", r, ev)
	}

	// The batch's messages carry the sequence numbers 1, 2, 3.
	ms, _ := splitAll(capBatch)
	for i, mm := range ms[:3] {
		if err := decodeLog(mm.body, &m); err != nil || !m.hasSeq || m.seq != uint32(i+1) {
			t.Errorf("batched message %d: seq %d (%v), err %v", i, m.seq, m.hasSeq, err)
		}
	}

	// Variants: a copy of the body with one change.
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), body...)) }
	setLen := func(typ uint16, n int) []byte {
		return edit(func(b []byte) []byte {
			binary.NativeEndian.PutUint16(b[attrAt(t, b, typ):], uint16(n))
			return b
		})
	}
	tests := []struct {
		name string
		body []byte
		err  bool
		want func(m logMsg) bool
	}{
		{name: "no nfgenmsg", body: body[:3], err: true},
		{name: "no attributes", body: body[:4], want: func(m logMsg) bool { return !m.hasHook && !m.hasSeq && !m.hasTime && !m.hasPrefix && !m.hasPayload }},
		{name: "attribute header cut", body: body[:6], err: true},
		{name: "attribute longer than the message", body: setLen(nfulaPktHdr, 0x400), err: true},
		{name: "attribute shorter than its header", body: setLen(nfulaPktHdr, 3), err: true},
		{name: "packet header too short", body: setLen(nfulaPktHdr, 6), err: true},
		{name: "sequence number too short", body: setLen(nfulaSeq, 6), err: true},
		{name: "timestamp too short", body: setLen(nfulaTime, 12), err: true},
		{name: "payload cut at the end", body: body[:len(body)-1], err: true},
		{name: "empty payload", body: setLen(nfulaPayload, 4), err: true}, // the rest becomes a bad attribute
		// Found by FuzzDecodeLog: mdlayher/netlink takes a zero length
		// for an empty attribute; the kernel never sends one.
		{name: "zero-length attribute", body: append(append([]byte(nil), body...), 0, 0, 0x30, 0x30), err: true},
		{name: "nested and byte-order bits ignored", body: edit(func(b []byte) []byte {
			b[attrAt(t, b, nfulaSeq)+3] |= 0xc0
			return b
		}), want: func(m logMsg) bool { return m.hasSeq && m.seq == 0 }},
		{name: "unknown attribute skipped", body: edit(func(b []byte) []byte {
			binary.NativeEndian.PutUint16(b[attrAt(t, b, nfulaPrefix)+2:], 99)
			return b
		}), want: func(m logMsg) bool { return !m.hasPrefix && m.hasPayload }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := logMsg{hasSeq: true, seq: 42} // must be reset
			err := decodeLog(tt.body, &m)
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want one: %v", err, tt.err)
			}
			if tt.want != nil && !tt.want(m) {
				t.Errorf("decoded %+v", m)
			}
		})
	}
}

// TestDecodeLogMatchesNetlink compares the decoder with mdlayher/netlink's
// on captured messages.
func TestDecodeLogMatchesNetlink(t *testing.T) {
	littleEndian(t)
	for _, d := range [][]byte{capLogSYN, capBatch} {
		ms, _ := splitAll(d)
		for _, m := range ms {
			if m.typ == typeLog {
				checkAgainstNetlink(t, m.body)
			}
		}
	}
}

// checkAgainstNetlink fails when mdlayher/netlink decodes body's
// attributes and finds other values than decodeLog does.
func checkAgainstNetlink(t *testing.T, body []byte) {
	t.Helper()
	var m logMsg
	err := decodeLog(body, &m)
	if len(body) < nfgenmsgLen {
		if err == nil {
			t.Fatal("no error for a body without nfgenmsg")
		}
		return
	}
	attrs, nerr := netlink.UnmarshalAttributes(body[nfgenmsgLen:])
	if nerr != nil || hasZeroLength(body[nfgenmsgLen:]) {
		return // stricter or looser: only agreement on good input matters
	}
	var want logMsg
	for _, a := range attrs {
		switch a.Type & nlaTypeMask {
		case nfulaPktHdr:
			if len(a.Data) < 4 {
				return
			}
			want.hook, want.hasHook = a.Data[2], true
		case nfulaSeq:
			if len(a.Data) < 4 {
				return
			}
			want.seq, want.hasSeq = binary.BigEndian.Uint32(a.Data), true
		case nfulaTime:
			if len(a.Data) < 16 {
				return
			}
			want.sec, want.usec, want.hasTime = int64(binary.BigEndian.Uint64(a.Data)), int64(binary.BigEndian.Uint64(a.Data[8:])), true
		case nfulaPrefix:
			want.prefix, want.hasPrefix = a.Data, true
		case nfulaPayload:
			want.payload, want.hasPayload = a.Data, true
		}
	}
	if err != nil {
		t.Fatalf("decodeLog failed (%v) on attributes mdlayher/netlink reads: %x", err, body)
	}
	if m.hook != want.hook || m.hasHook != want.hasHook || m.seq != want.seq || m.hasSeq != want.hasSeq ||
		m.sec != want.sec || m.usec != want.usec || m.hasTime != want.hasTime ||
		!bytes.Equal(m.prefix, want.prefix) || m.hasPrefix != want.hasPrefix ||
		!bytes.Equal(m.payload, want.payload) || m.hasPayload != want.hasPayload {
		t.Fatalf("decoded %+v, mdlayher/netlink %+v from %x", m, want, body)
	}
}

// hasZeroLength reports whether an attribute in b has a length of 0,
// which mdlayher/netlink takes for an empty attribute and leaves out; the
// kernel never makes one, and decodeLog refuses it.
func hasZeroLength(b []byte) bool {
	for len(b) >= nlattrHdrLen {
		n := int(binary.NativeEndian.Uint16(b))
		if n == 0 {
			return true
		}
		b = b[min(max(align4(n), nlattrHdrLen), len(b)):]
	}
	return false
}

func FuzzDecodeLog(f *testing.F) {
	for _, d := range [][]byte{capLogSYN, capBatch, capBindAck, capRefused} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, dgram []byte) {
		ms, _ := splitAll(dgram)
		total := 0
		for _, m := range ms {
			total += nlmsgHdrLen + len(m.body)
			if m.typ == nlmsgError {
				errorCode(m.body)
			}
			checkAgainstNetlink(t, m.body)
		}
		if total > len(dgram) {
			t.Fatalf("messages of %d bytes from a datagram of %d", total, len(dgram))
		}
	})
}

func TestBindMessage(t *testing.T) {
	m := bindMessage(5, 256, 7)
	if m.Header.Type != nfnlSubsysULOG<<8|nfulnlMsgConfig || m.Header.Flags != netlink.Request|netlink.Acknowledge || m.Header.Sequence != 7 {
		t.Errorf("header %+v", m.Header)
	}
	if !bytes.Equal(m.Data[:4], []byte{0, 0, 0, 5}) {
		t.Errorf("nfgenmsg %x, want AF_UNSPEC, version 0, group 5", m.Data[:4])
	}
	attrs, err := netlink.UnmarshalAttributes(m.Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint16][]byte{
		nfulaCfgCmd:     {nfulnlCmdBind},
		nfulaCfgMode:    {0, 0, 1, 0, nfulnlCopyPkt, 0},
		nfulaCfgQThresh: {0, 0, 0, 1},
		nfulaCfgFlags:   {0, nfulnlFlagSeq},
	}
	if len(attrs) != len(want) {
		t.Errorf("%d attributes, want %d", len(attrs), len(want))
	}
	for _, a := range attrs {
		if !bytes.Equal(a.Data, want[a.Type]) {
			t.Errorf("attribute %d: %x, want %x", a.Type, a.Data, want[a.Type])
		}
	}
	// The command comes first: the kernel needs the instance for the rest.
	if attrs[0].Type != nfulaCfgCmd {
		t.Errorf("first attribute %d, want the command", attrs[0].Type)
	}
}
