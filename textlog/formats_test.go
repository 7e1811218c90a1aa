package textlog

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portknock/sequence"
)

// goldenFiles are the real-tool (or documented-format) outputs of each
// format, under testdata/.
var goldenFiles = map[Format][]string{
	FormatNetfilter: {"netfilter/rfc3164.txt", "netfilter/rfc5424.txt", "netfilter/dmesg.txt", "netfilter/dmesg-T.txt", "netfilter/kmsg.txt", "netfilter/journalctl-k.txt", "netfilter/rsyslog-iso.txt"},
	FormatUlogd:     {"ulogd/logemu.log", "ulogd/ulogd.json"},
	FormatJournal:   {"journal/journal.json"},
	FormatPflog:     {"pflog/upstream.txt", "pflog/openbsd.txt"},
	FormatIpfw:      {"ipfw/ipfw.txt"},
	FormatFilterlog: {"filterlog/filterlog.txt"},
}

func goldenLines(t testing.TB, f Format) [][]byte {
	t.Helper()
	var lines [][]byte
	for _, name := range goldenFiles[f] {
		for _, line := range readTestLines(t, filepath.Join("testdata", name)) {
			if line = strings.TrimRight(line, "\r"); line != "" && line[0] != '#' {
				lines = append(lines, []byte(line))
			}
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no golden lines for %v", f)
	}
	return lines
}

// TestAutoAgreesWithPinnedFormats checks that every knock line of every
// format's golden data is recognised by the auto format as the same event,
// and that lines a pinned format skips, auto does not turn into events
// either (a line is never a knock by accident of detection).
func TestAutoAgreesWithPinnedFormats(t *testing.T) {
	for f := range goldenFiles {
		if !implemented[f] {
			t.Errorf("%v has golden data but is not implemented", f)
			continue
		}
		t.Run(f.String(), func(t *testing.T) {
			pinned, auto := Parser{Format: f}, Parser{}
			events := 0
			for _, line := range goldenLines(t, f) {
				var want, got sequence.Event
				_, wr := pinned.Parse(line, &want)
				gf, gr := auto.Parse(line, &got)
				if wr != ReasonNone {
					if gr == ReasonNone {
						t.Errorf("auto (as %v) made an event of a line %v skips (%v): %s", gf, f, wr, line)
					}
					continue
				}
				events++
				if gr != ReasonNone {
					t.Errorf("auto skipped (%v) a %v knock line: %s", gr, f, line)
					continue
				}
				// ulogd's LOGEMU line is the kernel's LOG line: either parser
				// may claim it, with the same result.
				if gf != f && !(f == FormatUlogd && gf == FormatNetfilter) {
					t.Errorf("auto took a %v line as %v: %s", f, gf, line)
				}
				if got.Src != want.Src || got.Port != want.Port || got.Proto != want.Proto || got.Flags != want.Flags || got.FlagsKnown != want.FlagsKnown {
					t.Errorf("auto event %+v, pinned %+v: %s", got, want, line)
				}
			}
			if events == 0 {
				t.Errorf("no knock lines in %v's golden data", f)
			}
		})
	}
}

// TestPinnedFormatRejectsOthers checks that a pinned format takes no knock
// from another format's lines, so pinning is a real filter.
func TestPinnedFormatRejectsOthers(t *testing.T) {
	// The same kernel text appears inside these formats' lines.
	overlap := map[[2]Format]bool{
		{FormatNetfilter, FormatUlogd}: true, // LOGEMU is the kernel line
		{FormatUlogd, FormatNetfilter}: true,
	}
	for pinnedAs := range goldenFiles {
		p := Parser{Format: pinnedAs}
		for other := range goldenFiles {
			if other == pinnedAs || overlap[[2]Format{pinnedAs, other}] {
				continue
			}
			for _, line := range goldenLines(t, other) {
				var ev sequence.Event
				if _, r := p.Parse(line, &ev); r == ReasonNone {
					t.Errorf("%v took a knock from a %v line: %s", pinnedAs, other, line)
				}
			}
		}
	}
}

// BenchmarkFormats measures read + parse + match per format on its golden
// lines, repeated to 4 MiB, as the daemon's text path does them on one
// core (minus the queue between goroutines).
func BenchmarkFormats(b *testing.B) {
	for _, f := range []Format{FormatSimple, FormatNetfilter, FormatUlogd, FormatJournal, FormatPflog, FormatIpfw, FormatFilterlog} {
		b.Run(f.String(), func(b *testing.B) {
			var golden [][]byte
			if f == FormatSimple {
				golden = [][]byte{[]byte("7000 192.0.2.7"), []byte("8000/tcp 2001:db8::7"), []byte("9000/udp 198.51.100.1")}
			} else {
				golden = goldenLines(b, f)
			}
			var buf bytes.Buffer
			for buf.Len() < 4<<20 {
				for _, l := range golden {
					buf.Write(l)
					buf.WriteByte('\n')
				}
			}
			data := buf.Bytes()
			lines := bytes.Count(data, []byte("\n"))
			m := sshMatcher(b)
			for _, p := range []Parser{{Format: f}, {}} {
				name := "pinned"
				if p.Format == FormatAuto {
					name = "auto"
				}
				b.Run(name, func(b *testing.B) {
					ev := sequence.Event{}
					out := make([]sequence.Match, 0, 4)
					events := 0
					b.SetBytes(int64(len(data)))
					b.ReportAllocs()
					for b.Loop() {
						_, err := ReadLines(b.Context(), bytes.NewReader(data), 0, func(line []byte) {
							if _, r := p.Parse(line, &ev); r == ReasonNone {
								events++
								ev.Time = time.Unix(1e9, 0)
								out = m.Handle(&ev, out[:0])
							}
						})
						if err != nil {
							b.Fatal(err)
						}
					}
					if events == 0 {
						b.Fatal("no events: the benchmark parses nothing")
					}
					b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
				})
			}
		})
	}
}

// TestYearFromNow checks that every format places a stamp without a year
// against Parser.Now and never against the clock: with Now in 1999, the
// golden lines' "Nov 22" is in 1999, and with Now zero they carry no
// time at all. Parsing reads no clock, so a caller sets Now as often as
// it likes (see Parser.Now) and a line costs no clock read.
func TestYearFromNow(t *testing.T) {
	now := time.Date(1999, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		f    Format
		file string
	}{
		{FormatNetfilter, "netfilter/rfc3164.txt"},
		{FormatUlogd, "ulogd/logemu.log"},
		{FormatFilterlog, "filterlog/filterlog.txt"},
		{FormatIpfw, "ipfw/ipfw.txt"},
		{FormatPflog, "pflog/openbsd.txt"},
	} {
		t.Run(tc.f.String(), func(t *testing.T) {
			placed := 0
			for _, line := range readTestLines(t, filepath.Join("testdata", tc.file)) {
				if !strings.HasPrefix(strings.TrimPrefix(line, "<134>"), "Nov 22 ") {
					continue // a stamp with a year, or none
				}
				for _, p := range []Parser{{Format: tc.f, Now: now, Location: time.UTC}, {Format: tc.f, Location: time.UTC}} {
					var ev sequence.Event
					if _, r := p.Parse([]byte(line), &ev); r != ReasonNone {
						continue
					}
					switch {
					case p.Now.IsZero() && !ev.Time.IsZero():
						t.Errorf("without Now, %q has time %v", line, ev.Time)
					case !p.Now.IsZero() && (ev.Time.Year() != 1999 || ev.Time.Month() != time.November || ev.Time.Day() != 22):
						t.Errorf("with Now %v, %q has time %v, want 1999-11-22", now, line, ev.Time)
					case !p.Now.IsZero():
						placed++
					}
				}
			}
			if placed == 0 {
				t.Errorf("no event in %s has a stamp without a year", tc.file)
			}
		})
	}
}
