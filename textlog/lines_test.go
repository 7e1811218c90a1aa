package textlog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"portknock/sequence"
	"strings"
	"testing"
	"testing/iotest"
)

// collect runs ReadLines over in and returns the lines it delivered.
func collect(t *testing.T, r io.Reader, maxLen int) ([]string, LineStats) {
	t.Helper()
	var got []string
	st, err := ReadLines(context.Background(), r, maxLen, func(line []byte) { got = append(got, string(line)) })
	if err != nil {
		t.Fatalf("ReadLines: %v", err)
	}
	return got, st
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name    string
		in      string
		maxLen  int
		want    []string
		tooLong uint64
	}{
		{name: "empty input", in: "", want: nil},
		{name: "one line", in: "7000 192.0.2.7\n", want: []string{"7000 192.0.2.7"}},
		{name: "last line without newline", in: "a\nb", want: []string{"a", "b"}},
		{name: "empty lines", in: "\n\n", want: []string{"", ""}},
		{name: "CRLF", in: "a\r\nb\r\n", want: []string{"a", "b"}},
		{name: "only one CR stripped", in: "a\r\r\n", want: []string{"a\r"}},
		{name: "CR without LF", in: "a\rb\n", want: []string{"a\rb"}},
		{name: "CR at EOF", in: "a\r", want: []string{"a"}},
		{name: "NUL bytes", in: "a\x00b\n\x00\n", want: []string{"a\x00b", "\x00"}},
		{name: "invalid UTF-8", in: "\xff\xfe\n\xc3(\n", want: []string{"\xff\xfe", "\xc3("}},
		{name: "exactly max", in: "12345\n", maxLen: 5, want: []string{"12345"}},
		{name: "exactly max with CR", in: "12345\r\n", maxLen: 5, want: []string{"12345"}},
		{name: "one over max", in: "123456\nok\n", maxLen: 5, want: []string{"ok"}, tooLong: 1},
		{name: "overlong then line", in: long + "\n7000 192.0.2.7\n", maxLen: 20, want: []string{"7000 192.0.2.7"}, tooLong: 1},
		{name: "overlong last line", in: "a\n" + long, maxLen: 10, want: []string{"a"}, tooLong: 1},
		{name: "overlong lines in a row", in: long + "\n" + long + "\nb\n", maxLen: 10, want: []string{"b"}, tooLong: 2},
		{name: "huge line beyond the buffer", in: strings.Repeat("y", 3*minBuffer) + "\nz\n", maxLen: 10, want: []string{"z"}, tooLong: 1},
		{name: "default max", in: strings.Repeat("y", DefaultMaxLine+1) + "\n" + strings.Repeat("y", DefaultMaxLine) + "\n", want: []string{strings.Repeat("y", DefaultMaxLine)}, tooLong: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, rd := range []struct {
				name string
				r    func(string) io.Reader
			}{
				{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
				{"byte by byte", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
				{"data with EOF", func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) }},
			} {
				got, st := collect(t, rd.r(tc.in), tc.maxLen)
				if !equalLines(got, tc.want) {
					t.Errorf("%s: lines = %q, want %q", rd.name, got, tc.want)
				}
				want := LineStats{Lines: uint64(len(tc.want)), TooLong: tc.tooLong}
				if st != want {
					t.Errorf("%s: stats = %+v, want %+v", rd.name, st, want)
				}
			}
		})
	}
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadLinesError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("a\npartial"), iotest.ErrReader(boom))
	var got []string
	_, err := ReadLines(context.Background(), r, 0, func(l []byte) { got = append(got, string(l)) })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if !equalLines(got, []string{"a"}) {
		t.Errorf("lines = %q, want [a]: a line cut by a read error is not a line", got)
	}
}

func TestReadLinesCancelledBeforehand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	_, err := ReadLines(ctx, strings.NewReader("a\n"), 0, func([]byte) { called = true })
	if !errors.Is(err, context.Canceled) || called {
		t.Fatalf("err = %v, called = %v; want context.Canceled and no line", err, called)
	}
}

// TestReadLinesCancelPipe checks that ending ctx interrupts a read blocked
// on a pipe that nobody writes to.
func TestReadLinesCancelPipe(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := ReadLines(ctx, pr, 0, func(l []byte) { got <- string(l) })
		done <- err
	}()
	if _, err := pw.WriteString("first\n"); err != nil {
		t.Fatal(err)
	}
	if l := <-got; l != "first" {
		t.Fatalf("line = %q", l)
	}
	// ReadLines is now blocked reading, or about to be.
	cancel()
	if err := waitErr(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestReadLinesNoAllocs checks that the line loop itself does not allocate.
func TestReadLinesNoAllocs(t *testing.T) {
	data := bytes.Repeat([]byte("7000 192.0.2.7\r\n"+strings.Repeat("z", 50)+"\n"), 1000)
	r := bytes.NewReader(data)
	br := bufio.NewReaderSize(r, 64)
	var c lineCounters
	fn := func([]byte) {}
	ctx := context.Background()
	n := testing.AllocsPerRun(10, func() {
		r.Reset(data)
		br.Reset(r)
		if err := readLines(ctx, br, 20, &c, fn); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("reading %d lines allocates %v times", 2000, n)
	}
}

// FuzzReadLines compares the streaming reader, with a tiny buffer and
// reads of random sizes, against splitting the whole input at once.
func FuzzReadLines(f *testing.F) {
	f.Add([]byte("7000 192.0.2.7\n9000/udp ::1\r\n"), uint8(14), false)
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nb\r\n\r\n\x00\xff"), uint8(3), true)
	f.Add([]byte("abc\r"), uint8(2), false)
	f.Fuzz(func(t *testing.T, data []byte, max uint8, oneByte bool) {
		maxLen := int(max % 15) // the buffer below holds 16 bytes
		var r io.Reader = bytes.NewReader(data)
		if oneByte {
			r = iotest.OneByteReader(r)
		} else {
			r = iotest.HalfReader(r)
		}
		var got []string
		var c lineCounters
		br := bufio.NewReaderSize(r, 16)
		if err := readLines(context.Background(), br, maxLen, &c, func(l []byte) { got = append(got, string(l)) }); err != nil {
			t.Fatal(err)
		}
		want, tooLong := splitLines(data, maxLen)
		if !equalLines(got, want) || c.tooLong.Load() != tooLong || c.lines.Load() != uint64(len(want)) {
			t.Fatalf("got %q too long %d; want %q too long %d", got, c.tooLong.Load(), want, tooLong)
		}
	})
}

// splitLines is the obvious, whole-input version of readLines.
func splitLines(data []byte, maxLen int) (lines []string, tooLong uint64) {
	parts := bytes.Split(data, []byte("\n"))
	if len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1]
	}
	for _, p := range parts {
		p = bytes.TrimSuffix(p, []byte("\r"))
		if len(p) > maxLen {
			tooLong++
			continue
		}
		lines = append(lines, string(p))
	}
	return lines, tooLong
}

// BenchmarkReadAndParse measures the whole text path short of the
// matcher: splitting a stream into lines and parsing each.
func BenchmarkReadAndParse(b *testing.B) {
	var buf bytes.Buffer
	lines := 0
	for i := 0; buf.Len() < 1<<20; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&buf, "%d 192.0.2.%d\n", 7000+i%3, i%250)
		case 1:
			fmt.Fprintf(&buf, "%d/udp 2001:db8::%x\r\n", 9000, i%65536)
		case 2:
			fmt.Fprintf(&buf, "%d ::ffff:198.51.100.%d\n", 8000, i%250)
		case 3:
			buf.WriteString("Jan  1 00:00:00 host sshd[1]: Connection closed\n")
		}
		lines++
	}
	data := buf.Bytes()
	r := bytes.NewReader(data)
	br := newLineBuffer(r, DefaultMaxLine)
	var c lineCounters
	var p Parser
	var ev sequence.Event
	events := 0
	fn := func(line []byte) {
		if _, r := p.Parse(line, &ev); r == ReasonNone {
			events++
		}
	}
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(data)
		br.Reset(r)
		if err := readLines(ctx, br, DefaultMaxLine, &c, fn); err != nil {
			b.Fatal(err)
		}
	}
	total := float64(b.N) * float64(lines)
	b.ReportMetric(b.Elapsed().Seconds()*1e9/total, "ns/line")
	b.ReportMetric(total/b.Elapsed().Seconds(), "lines/s")
}
