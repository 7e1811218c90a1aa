package actions

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
			path := writeFile(t, tt.content)
			logs := newLogCapture()
			o, err := OpenOneTime(path, logs.logger())
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()

			var skipped []string
			for _, r := range logs.find("one-time sequence line skipped") {
				skipped = append(skipped, r.attrs["line"])
				if r.attrs["path"] != path {
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
		logs := newLogCapture()
		o, err := OpenOneTime(writeFile(t, content), logs.logger())
		if err != nil {
			t.Fatal(err)
		}
		if cur, ok := o.Current(); ok {
			t.Errorf("%q: Current = %v, true", content, cur)
		}
		if len(logs.find("one-time sequence file has no unused sequence")) != 1 {
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
