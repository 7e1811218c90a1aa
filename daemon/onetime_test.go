package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"portknock/internal/logtest"
	"portknock/sequence"
)

func steps(t *testing.T, s string) []sequence.Step {
	t.Helper()
	st, err := sequence.ParseSteps(s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "otp")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openOneTime opens a one-time sequence file holding content, logging to
// log, until the test ends.
func openOneTime(t *testing.T, content string, log *slog.Logger) (o *OneTimeFile, path string) {
	t.Helper()
	path = writeFile(t, content)
	o, err := OpenOneTime(path, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o, path
}

func TestOneTimeConsume(t *testing.T) {
	tests := []struct {
		name    string
		content string
		seqs    []string // the sequences, in the order they are served
		after   []string // file content after each Consume
		skipped []string // line numbers warned about
	}{
		{
			name: "knockd file with comments and a bad line",
			content: "# one-time sequences for ssh\n" +
				"2222:udp,3333:tcp,4444\n" +
				"#5555,6666 used earlier\n" +
				"7777:icmp,8888\n" +
				"\n" +
				"  1111/udp, 1212\n" +
				"1313:tcp,1414:udp\n",
			seqs: []string{"2222:udp,3333:tcp,4444", "1111:udp,1212", "1313:tcp,1414:udp"},
			after: []string{
				"# one-time sequences for ssh\n#222:udp,3333:tcp,4444\n#5555,6666 used earlier\n7777:icmp,8888\n\n  1111/udp, 1212\n1313:tcp,1414:udp\n",
				"# one-time sequences for ssh\n#222:udp,3333:tcp,4444\n#5555,6666 used earlier\n7777:icmp,8888\n\n# 1111/udp, 1212\n1313:tcp,1414:udp\n",
				"# one-time sequences for ssh\n#222:udp,3333:tcp,4444\n#5555,6666 used earlier\n7777:icmp,8888\n\n# 1111/udp, 1212\n#313:tcp,1414:udp\n",
			},
			skipped: []string{"4"},
		},
		{
			name:    "CRLF and no final newline",
			content: "100,200\r\n  # comment\r\n300:udp\r\n400",
			seqs:    []string{"100,200", "300:udp", "400"},
			after: []string{
				"#00,200\r\n  # comment\r\n300:udp\r\n400",
				"#00,200\r\n  # comment\r\n#00:udp\r\n400",
				"#00,200\r\n  # comment\r\n#00:udp\r\n#00",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := logtest.New()
			o, path := openOneTime(t, tt.content, logs.Logger())

			var skipped []string
			for _, r := range logs.Find("one-time sequence line skipped") {
				skipped = append(skipped, r.Attrs["line"])
				if r.Attrs["path"] != path {
					t.Errorf("warning without the path: %v", r)
				}
			}
			if !slices.Equal(skipped, tt.skipped) {
				t.Errorf("skipped lines %v, want %v", skipped, tt.skipped)
			}

			for i, want := range tt.seqs {
				if got := o.Remaining(); got != len(tt.seqs)-i {
					t.Errorf("Remaining = %d, want %d", got, len(tt.seqs)-i)
				}
				cur, ok := o.Current()
				if !ok || !slices.Equal(cur, steps(t, want)) {
					t.Fatalf("Current #%d = %v, %v; want %v", i, cur, ok, want)
				}
				// Current hands out a copy: the caller may keep it.
				cur[0].Port = 1
				if again, _ := o.Current(); again[0].Port == 1 {
					t.Fatal("Current returned shared storage")
				}
				if err := o.Consume(); err != nil {
					t.Fatal(err)
				}
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if string(data) != tt.after[i] {
					t.Errorf("file after Consume #%d:\n%q\nwant\n%q", i, data, tt.after[i])
				}
			}
			if cur, ok := o.Current(); ok {
				t.Errorf("Current after the last sequence = %v, true", cur)
			}
			if err := o.Consume(); err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("Consume when exhausted = %v, want an error naming %s", err, path)
			}
		})
	}
}

// TestOneTimeReopen checks crash safety: Consume is durable when it
// returns, so a fresh open (as after a crash) starts at the next sequence.
func TestOneTimeReopen(t *testing.T) {
	path := writeFile(t, "#used\n1000,2000\n3000:udp\n")
	o, err := OpenOneTime(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Consume(); err != nil {
		t.Fatal(err)
	}
	// No Close: a crash does not close files either.
	o2, err := OpenOneTime(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	cur, ok := o2.Current()
	if !ok || !slices.Equal(cur, steps(t, "3000:udp")) {
		t.Errorf("after reopen Current = %v, %v; want 3000/udp", cur, ok)
	}
	o.Close()
}

func TestOneTimeEmpty(t *testing.T) {
	for _, content := range []string{"", "# all used\n#1000\n", "\n\n  \n", "garbage\n"} {
		logs := logtest.New()
		o, err := OpenOneTime(writeFile(t, content), logs.Logger())
		if err != nil {
			t.Fatal(err)
		}
		if cur, ok := o.Current(); ok {
			t.Errorf("%q: Current = %v, true", content, cur)
		}
		if len(logs.Find("one-time sequence file has no unused sequence")) != 1 {
			t.Errorf("%q: no warning for an exhausted file", content)
		}
		o.Close()
	}
}

func TestOneTimeMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope")
	if _, err := OpenOneTime(path, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenOneTime of a missing file = %v, want an error naming it", err)
	}
}

// TestOneTimeReadOnly: a file that cannot be written still serves its
// sequence, but Consume fails (naming the file) and the sequence stays
// current, so it can never be used twice without being marked.
func TestOneTimeReadOnly(t *testing.T) {
	const content = "1000,2000\n3000\n"
	tests := []struct {
		name string
		open func(t *testing.T, path string) *OneTimeFile
	}{
		{
			name: "file mode 0444",
			open: func(t *testing.T, path string) *OneTimeFile {
				if err := os.Chmod(path, 0o444); err != nil {
					t.Fatal(err)
				}
				if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
					f.Close()
					t.Skip("file permissions do not apply to this user (root)")
				}
				o, err := OpenOneTime(path, nil)
				if err != nil {
					t.Fatal(err)
				}
				return o
			},
		},
		{
			// Works for root too: the write itself fails.
			name: "descriptor opened read-only",
			open: func(t *testing.T, path string) *OneTimeFile {
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				o, err := newOneTimeFile(f, path, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				return o
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, content)
			o := tt.open(t, path)
			defer o.Close()
			if cur, ok := o.Current(); !ok || !slices.Equal(cur, steps(t, "1000,2000")) {
				t.Fatalf("Current = %v, %v", cur, ok)
			}
			err := o.Consume()
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("Consume = %v, want an error naming %s", err, path)
			}
			if cur, ok := o.Current(); !ok || !slices.Equal(cur, steps(t, "1000,2000")) {
				t.Errorf("after a failed Consume Current = %v, %v; want the same sequence", cur, ok)
			}
			if data, _ := os.ReadFile(path); string(data) != content {
				t.Errorf("file changed to %q", data)
			}
		})
	}
}

func TestOneTimeClosed(t *testing.T) {
	o, err := OpenOneTime(writeFile(t, "1000\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Consume(); err == nil {
		t.Error("Consume after Close succeeded")
	}
	if err := o.Close(); err == nil {
		t.Error("second Close succeeded")
	}
}

// rewriteInPlace truncates path and writes content into the same inode.
func rewriteInPlace(t *testing.T, path, content string) {
	t.Helper()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatal("rewrite made a new file")
	}
}

// wantUnusable checks that a fresh open of path, as after a restart, never
// offers seq: the consumed sequence must stay used.
func wantUnusable(t *testing.T, path, seq string) {
	t.Helper()
	o, err := OpenOneTime(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for {
		cur, ok := o.Current()
		if !ok {
			return
		}
		if slices.Equal(cur, steps(t, seq)) {
			data, _ := os.ReadFile(path)
			t.Fatalf("consumed sequence %s usable again after a reopen; file:\n%s", seq, data)
		}
		if err := o.Consume(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOneTimeFileChanged: Consume marks the sequence it serves in the file
// as it is now, whether an editor replaced the file or it was rewritten in
// place, and never marks another sequence's line.
func TestOneTimeFileChanged(t *testing.T) {
	tests := []struct {
		name    string
		content string
		change  func(t *testing.T, path string)
		after   string // file content after Consume
		next    string // Current after Consume, "" for none
		// quiet: the consumed line is still where it was read, so
		// nothing is reported; the re-read still sees the rest.
		quiet bool
	}{
		{
			name:    "replaced by rename, lines shifted",
			content: "1000,2000\n3000\n4000\n",
			change: func(t *testing.T, path string) {
				replaceFile(t, path, "# new sequences on top\n5000\n1000,2000\n3000\n4000\n", 0o600)
			},
			after: "# new sequences on top\n5000\n#000,2000\n3000\n4000\n",
			next:  "5000",
		},
		{
			name:    "replaced by rename, same content",
			content: "1000,2000\n3000\n",
			change:  func(t *testing.T, path string) { replaceFile(t, path, "1000,2000\n3000\n", 0o600) },
			after:   "#000,2000\n3000\n",
			next:    "3000",
		},
		{
			name:    "rewritten in place, lines shifted down",
			content: "1000,2000\n3000\n",
			change: func(t *testing.T, path string) {
				rewriteInPlace(t, path, "# comment added\n1000,2000\n3000\n")
			},
			after: "# comment added\n#000,2000\n3000\n",
			next:  "3000",
		},
		{
			// The consumed line's old offset now holds another sequence
			// of the same length.
			name:    "rewritten in place, lines swapped",
			content: "1000\n2000\n",
			change:  func(t *testing.T, path string) { rewriteInPlace(t, path, "2000\n1000\n") },
			after:   "2000\n#000\n",
			next:    "2000",
		},
		{
			// Which copy is "the" line is ambiguous: both are marked, so
			// that none can serve the sequence again.
			name:    "rewritten in place with the sequence twice",
			content: "1000\n2000\n",
			change:  func(t *testing.T, path string) { rewriteInPlace(t, path, "10\n1000\n1000\n2000\n") },
			after:   "10\n#000\n#000\n2000\n",
			next:    "10",
		},
		{
			name:    "rewritten in place, shorter",
			content: "3000\n1000,2000\n",
			change:  func(t *testing.T, path string) { rewriteInPlace(t, path, "3000\n") },
			// Current is 3000, still at its place; the sequence after
			// it is gone, and must not be served.
			after: "#000\n",
			quiet: true,
		},
		{
			name:    "appended in place",
			content: "1000\n",
			change:  func(t *testing.T, path string) { rewriteInPlace(t, path, "1000\n2000\n") },
			after:   "#000\n2000\n",
			next:    "2000",
			quiet:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := logtest.New()
			o, path := openOneTime(t, tt.content, logs.Logger())
			consumed, _ := o.Current()
			tt.change(t, path)
			if err := o.Consume(); err != nil {
				t.Fatalf("Consume: %v", err)
			}
			if data, _ := os.ReadFile(path); string(data) != tt.after {
				t.Errorf("file after Consume:\n%q\nwant\n%q", data, tt.after)
			}
			cur, ok := o.Current()
			if tt.next == "" {
				if ok {
					t.Errorf("Current = %v, want none left", cur)
				}
			} else if !ok || !slices.Equal(cur, steps(t, tt.next)) {
				t.Errorf("Current = %v, %v; want %s", cur, ok, tt.next)
			}
			if n := len(logs.Find("one-time sequence file changed since it was read; read it again")); n != 1 && !tt.quiet {
				t.Errorf("no warning about the changed file; log:\n%s", logs.Dump())
			} else if n != 0 && tt.quiet {
				t.Errorf("warning about a change that moved nothing; log:\n%s", logs.Dump())
			}
			// The next Consume works on the file as it is now.
			if ok {
				before, _ := os.ReadFile(path)
				if err := o.Consume(); err != nil {
					t.Fatal(err)
				}
				after, _ := os.ReadFile(path)
				if n := countDiff(before, after); n != 1 {
					t.Errorf("second Consume changed %d bytes: %q -> %q", n, before, after)
				}
			}
			var seq []string
			for _, s := range consumed {
				seq = append(seq, s.String())
			}
			wantUnusable(t, path, strings.Join(seq, ","))
		})
	}
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n + max(len(a), len(b)) - min(len(a), len(b))
}

// TestOneTimeFileChangedSequenceGone: when the changed file no longer has
// the sequence as an unused line, Consume fails, naming the file and saying
// it changed, and marks nothing.
func TestOneTimeFileChangedSequenceGone(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
		after  string
	}{
		{"replaced, sequence marked used", func(t *testing.T, path string) { replaceFile(t, path, "#000,2000\n3000\n", 0o600) }, "#000,2000\n3000\n"},
		{"replaced, sequence removed", func(t *testing.T, path string) { replaceFile(t, path, "3000\n", 0o600) }, "3000\n"},
		{"rewritten in place, sequence marked used", func(t *testing.T, path string) { rewriteInPlace(t, path, "#000,2000\n3000\n") }, "#000,2000\n3000\n"},
		{"removed", func(t *testing.T, path string) { os.Remove(path) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, path := openOneTime(t, "1000,2000\n3000\n", nil)
			tt.change(t, path)
			err := o.Consume()
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "changed") {
				t.Fatalf("Consume = %v, want an error naming %s and saying it changed", err, path)
			}
			data, _ := os.ReadFile(path)
			if string(data) != tt.after {
				t.Errorf("file after a failed Consume = %q, want %q", data, tt.after)
			}
			// The sequence served stays the one the matcher knows; it is
			// never marked used by another line's mark.
			if cur, ok := o.Current(); !ok || !slices.Equal(cur, steps(t, "1000,2000")) {
				t.Errorf("Current after a failed Consume = %v, %v", cur, ok)
			}
			if err := o.Consume(); err == nil {
				t.Error("second Consume succeeded")
			}
		})
	}
}
