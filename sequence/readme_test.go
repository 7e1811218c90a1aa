package sequence

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// readmeTimeoutLevels returns, from the README's table of what each
// timeout logs, the level of each `knock timed out` row by its "after"
// cell.
func readmeTimeoutLevels(t *testing.T) map[string]string {
	t.Helper()
	src, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	levels := make(map[string]string)
	for line := range strings.Lines(string(src)) {
		cells := strings.Split(strings.TrimSpace(line), "|")
		// "| line | after | level |" splits into 5, empty at both ends.
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`knock timed out`") {
			continue
		}
		levels[strings.TrimSpace(cells[2])] = strings.TrimSpace(cells[3])
	}
	return levels
}

// TestTimeoutLevelsAsREADME holds the matcher's timeout lines to the
// levels the README promises, row by row: an attempt's first knock is
// what any spoofed packet leaves, and is logged at debug; anything more at
// info, for fail2ban and the administrator.
func TestTimeoutLevelsAsREADME(t *testing.T) {
	levels := readmeTimeoutLevels(t)
	for _, tc := range []struct {
		after string // the README row
		run   func(m *Matcher)
		door  bool // a door with a sequence, not a sealed range
	}{
		{"a door's attempt with one knock", func(m *Matcher) { runKnocks(t, m, seq(a4, 0, "7000")) }, true},
		{"a door's attempt with two knocks or more", func(m *Matcher) { runKnocks(t, m, seq(a4, 0, "7000", "8000")) }, true},
		{"a sealed range's attempt with one knock", func(m *Matcher) {
			feed(m, knocksAt(srcA, 0, block{made: t0, tag: srcA}.ports()[:1]))
		}, false},
		{"a sealed range's attempt with two knocks or more, not yet rejected", func(m *Matcher) {
			feed(m, knocksAt(srcA, 0, block{made: t0, tag: srcA}.ports()[:2]))
		}, false},
	} {
		t.Run(tc.after, func(t *testing.T) {
			want, ok := levels[tc.after]
			if !ok {
				t.Fatalf("README has no `knock timed out` row after %q (rows: %q)", tc.after, levels)
			}
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var m *Matcher
			if tc.door {
				var err error
				if m, err = New([]Door{ssh}, Options{Logger: log}); err != nil {
					t.Fatal(err)
				}
			} else {
				m, _ = newSealedMatcher(t, []Door{sealedDoor("ssh", 0)}, Options{Logger: log})
			}
			tc.run(m)
			m.Expire(time.Minute)
			var got []string
			for _, r := range logLines(t, &buf) {
				if r["msg"] == "knock timed out" {
					got = append(got, r["level"].(string))
				}
			}
			if len(got) != 1 || got[0] != want {
				t.Errorf("knock timed out logged at %q, README says %s", got, want)
			}
		})
	}
}
