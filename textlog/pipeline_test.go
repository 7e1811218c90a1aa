package textlog

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"portknock/sequence"
)

// BenchmarkSimplePipeline measures what one core does with a stream of
// simple lines: read, parse and match, as the daemon's text path does
// minus the queue between goroutines. 10 000 sources walk a door's
// sequence, with a noise line (a port outside the knock space) between
// knocks.
func BenchmarkSimplePipeline(b *testing.B) {
	var buf bytes.Buffer
	ports := []string{"7000", "8000", "9000/udp"}
	lines := 0
	for round := 0; buf.Len() < 4<<20; round++ {
		for s := range 10000 {
			fmt.Fprintf(&buf, "%s 10.%d.%d.%d\n443 10.%d.%d.%d\n", ports[round%3], s>>16, (s>>8)&255, s&255, s>>16, (s>>8)&255, s&255)
			lines += 2
		}
	}
	data := buf.Bytes()
	m := sshMatcher(b)
	p := Parser{Format: FormatSimple}
	ev := sequence.Event{Time: time.Unix(1e9, 0)}
	out := make([]sequence.Match, 0, 4)
	var events, matches int
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		_, err := ReadLines(ctx, bytes.NewReader(data), 0, func(line []byte) {
			if _, r := p.Parse(line, &ev); r != ReasonNone {
				return
			}
			events++
			out = m.Handle(&ev, out[:0])
			matches += len(out)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if matches == 0 || events == 0 {
		b.Fatalf("%d events, %d matches: the benchmark exercises nothing", events, matches)
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// sshMatcher is the benchmarks' matcher: one door, 7000/tcp, 8000/tcp,
// 9000/udp within an hour.
func sshMatcher(b *testing.B) *sequence.Matcher {
	b.Helper()
	m, err := sequence.New([]sequence.Door{{
		Name:     "ssh",
		Sequence: []sequence.Step{{Port: 7000, Proto: sequence.TCP}, {Port: 8000, Proto: sequence.TCP}, {Port: 9000, Proto: sequence.UDP}},
		Timeout:  time.Hour,
	}}, sequence.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}
