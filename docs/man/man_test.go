package man

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"portknock/internal/netnstest"
)

// pages are the manual pages in this directory.
var pages = []string{"portknockd.8", "portknock.1", "portknockd.toml.5"}

// needCommand skips t when name is not on PATH, or fails it when the run
// must not skip (PORTKNOCK_INTEGRATION=1).
func needCommand(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not on PATH (Debian package " + pkg + ")"
	if netnstest.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestPagesRender formats every page with groff, as man(1) does, and fails
// on any warning, and on any output from mandoc's linter where it is
// installed.
func TestPagesRender(t *testing.T) {
	groff := needCommand(t, "groff", "groff-base")
	for _, page := range pages {
		t.Run(page, func(t *testing.T) {
			cmd := exec.Command(groff, "-mandoc", "-Tutf8", "-ww", "-P-cbou", page)
			cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("groff %s: %v\n%s", page, err, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("groff %s warns:\n%s", page, stderr.String())
			}
			// -P-cbou: plain text, without SGR escapes or overstriking.
			text := stdout.String()
			for _, section := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"} {
				if !regexp.MustCompile(`(?m)^` + section + `$`).MatchString(text) {
					t.Errorf("%s: rendered page has no %s section", page, section)
				}
			}
		})
	}
	if _, err := exec.LookPath("mandoc"); err != nil {
		t.Log("mandoc is not installed: its stricter lint was not run")
		return
	}
	for _, page := range pages {
		out, err := exec.Command("mandoc", "-T", "lint", "-W", "warning", page).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("mandoc -T lint %s: %v\n%s", page, err, out)
		}
	}
}

// buildCommands builds portknockd and portknock into a temporary directory.
func buildCommands(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "portknock/cmd/portknockd", "portknock/cmd/portknock")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// flagLine matches one option in pflag's usage listing: "  -c, --config
// file   ..." or "      --dry-run   ...".
var flagLine = regexp.MustCompile(`^\s+(?:-([0-9A-Za-z]), )?--([0-9a-z][0-9a-z-]*)\b`)

// option is one flag a program's help lists.
type option struct{ short, long string }

// helpOptions runs a program for its help and returns the options it lists.
// Help goes to stdout or stderr depending on the program; both are read.
func helpOptions(t *testing.T, bin string, args ...string) []option {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
	var opts []option
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
			opts = append(opts, option{short: m[1], long: m[2]})
		}
	}
	return opts
}

// itemLines returns the .It lines of an mdoc page, with "\-" written as
// "-", each as the list of its words.
func itemLines(t *testing.T, page string) [][]string {
	t.Helper()
	src, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	var items [][]string
	for line := range strings.Lines(string(src)) {
		if strings.HasPrefix(line, ".It ") {
			items = append(items, strings.Fields(strings.ReplaceAll(line, `\-`, "-")))
		}
	}
	return items
}

// hasFlag reports whether words hold the macro call "Fl name".
func hasFlag(words []string, name string) bool {
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "Fl" && words[i+1] == name {
			return true
		}
	}
	return false
}

// TestFlagsDocumented holds every option the programs' help lists to an
// entry of its own in the right manual page: an .It line naming both its
// short and its long form.
func TestFlagsDocumented(t *testing.T) {
	bin := buildCommands(t)
	daemon, client := filepath.Join(bin, "portknockd"), filepath.Join(bin, "portknock")
	tests := []struct {
		page string
		bin  string
		args []string
		// some: the help must list options (keygen's lists none).
		some bool
	}{
		{"portknockd.8", daemon, []string{"--help"}, true},
		{"portknockd.8", daemon, []string{"check", "--help"}, true},
		{"portknockd.8", daemon, []string{"parse", "--help"}, true},
		{"portknockd.8", daemon, []string{"status", "--help"}, true},
		{"portknock.1", client, []string{"--help"}, true},
		{"portknock.1", client, []string{"keygen", "--help"}, false},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.bin)+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			items := itemLines(t, tt.page)
			opts := helpOptions(t, tt.bin, tt.args...)
			if tt.some && len(opts) == 0 {
				t.Fatalf("%s lists no options; has the help's format changed?", strings.Join(tt.args, " "))
			}
			for _, o := range opts {
				found := slices.ContainsFunc(items, func(words []string) bool {
					return hasFlag(words, "-"+o.long) && (o.short == "" || hasFlag(words, o.short))
				})
				if !found {
					name := "--" + o.long
					if o.short != "" {
						name = "-" + o.short + ", " + name
					}
					t.Errorf("%s: no .It entry for %s (want both forms as Fl macros on one line)", tt.page, name)
				}
			}
		})
	}
}

// TestSubcommandsDocumented holds the daemon's subcommands to a
// subsection of portknockd(8) each.
func TestSubcommandsDocumented(t *testing.T) {
	src, err := os.ReadFile("portknockd.8")
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"check", "parse", "status"} {
		if !strings.Contains(string(src), "\n.Ss portknockd "+sub+"\n") {
			t.Errorf("portknockd.8 has no subsection \"portknockd %s\"", sub)
		}
	}
}

// exampleKey matches a key, set or commented out, in the reference
// configuration: "max_sources = 100000", "# tls_cert = ...".
var exampleKey = regexp.MustCompile(`^#?\s*([a-z][a-z0-9_]*)\s*=`)

// TestConfigKeysDocumented holds every key of the reference configuration,
// examples/portknockd.toml, to an entry in portknockd.toml(5).
func TestConfigKeysDocumented(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join("..", "..", "examples", "portknockd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	items := itemLines(t, "portknockd.toml.5")
	documented := func(key string) bool {
		return slices.ContainsFunc(items, func(words []string) bool {
			return len(words) > 2 && words[1] == "Ic" && words[2] == key
		})
	}
	var keys []string
	for line := range strings.Lines(string(ref)) {
		if m := exampleKey.FindStringSubmatch(line); m != nil && !slices.Contains(keys, m[1]) {
			keys = append(keys, m[1])
		}
	}
	if len(keys) < 20 {
		t.Fatalf("found only %d keys in examples/portknockd.toml: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !documented(k) {
			t.Errorf("portknockd.toml.5: no .It Ic %s entry for a key of examples/portknockd.toml", k)
		}
	}
}

// helpText runs a program for its help and returns it.
func helpText(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// helpSection returns the lines of the help's section whose heading starts
// with title, up to the next blank line; "" when there is none.
func helpSection(help, title string) string {
	var b strings.Builder
	in := false
	for line := range strings.Lines(help) {
		switch {
		case !in && strings.HasPrefix(line, title):
			in = true
		case in && strings.TrimSpace(line) == "":
			return b.String()
		case in:
			b.WriteString(line)
		}
	}
	return b.String()
}

// pageSection returns the source lines of a page's .Sh section.
func pageSection(t *testing.T, page, name string) string {
	t.Helper()
	src, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "\n.Sh "+name+"\n")
	if !ok {
		t.Fatalf("%s has no section %s", page, name)
	}
	body, _, _ := strings.Cut(rest, "\n.Sh ")
	return body
}

// itemNames returns the words of the .It lines of a page section that follow
// the macro mac ("Cm", "Dv"), as the list's items name them.
func itemNames(section, mac string) []string {
	var out []string
	for line := range strings.Lines(section) {
		if !strings.HasPrefix(line, ".It ") {
			continue
		}
		f := strings.Fields(strings.ReplaceAll(line, `\-`, "-"))
		for i := 0; i+1 < len(f); i++ {
			if f[i] == mac {
				out = append(out, strings.TrimRight(f[i+1], ","))
			}
		}
	}
	return out
}

// exitCodes returns the exit statuses a help section lists, one a line.
var exitCodeLine = regexp.MustCompile(`(?m)^\s+([0-9]+)\s`)

// TestHelpAgreesWithPages holds each program's --help to its manual page:
// the formats, the input forms, the signals and the exit statuses each
// lists are the same, so that a sysadmin without the page loses nothing.
func TestHelpAgreesWithPages(t *testing.T) {
	bin := buildCommands(t)
	daemon, client := filepath.Join(bin, "portknockd"), filepath.Join(bin, "portknock")
	help := helpText(t, daemon, "--help")

	t.Run("formats", func(t *testing.T) {
		formats := itemNames(pageSection(t, "portknockd.8", "FORMATS"), "Cm")
		if len(formats) < 5 {
			t.Fatalf("found only %d formats in portknockd.8: %v", len(formats), formats)
		}
		for _, args := range [][]string{{"--help"}, {"check", "--help"}, {"parse", "--help"}} {
			sec := helpSection(helpText(t, daemon, args...), "Formats")
			var listed []string
			for line := range strings.Lines(sec) {
				if f := strings.Fields(line); len(f) > 0 {
					listed = append(listed, f[0])
				}
			}
			for _, f := range formats {
				if !slices.Contains(listed, f) {
					t.Errorf("portknockd %s lists no format %s, which portknockd.8 has", strings.Join(args, " "), f)
				}
			}
			for _, f := range listed {
				if f != "auto" && !slices.Contains(formats, f) {
					t.Errorf("portknockd %s lists format %s, which portknockd.8 lacks", strings.Join(args, " "), f)
				}
			}
		}
	})

	t.Run("inputs", func(t *testing.T) {
		sec := helpSection(help, "Inputs")
		page := pageSection(t, "portknockd.8", "INPUTS")
		for _, form := range []struct{ help, page string }{
			{"-  ", ".It Cm -"}, {"PATH", ".It Ar path"}, {"text:[FORMAT:]PATH", ".It Cm text"}, {"nflog:GROUP", ".It Cm nflog"},
		} {
			if !strings.Contains(sec, form.help) || !strings.Contains(strings.ReplaceAll(page, `\-`, "-"), form.page) {
				t.Errorf("input form %q (page %q) missing from --help or portknockd.8:\n%s", form.help, form.page, sec)
			}
		}
	})

	t.Run("signals", func(t *testing.T) {
		signals := itemNames(pageSection(t, "portknockd.8", "SIGNALS"), "Dv")
		if len(signals) < 3 {
			t.Fatalf("found only %d signals in portknockd.8: %v", len(signals), signals)
		}
		sec := helpSection(help, "Signals")
		for _, s := range signals {
			if !strings.Contains(sec, s) {
				t.Errorf("--help's Signals lacks %s, which portknockd.8 has:\n%s", s, sec)
			}
		}
	})

	t.Run("exit status", func(t *testing.T) {
		pages := map[string]string{"portknockd.8": pageSection(t, "portknockd.8", "EXIT STATUS"), "portknock.1": pageSection(t, "portknock.1", "EXIT STATUS")}
		for _, tc := range []struct {
			page string
			bin  string
			args []string
		}{
			{"portknockd.8", daemon, []string{"--help"}},
			{"portknockd.8", daemon, []string{"check", "--help"}},
			{"portknockd.8", daemon, []string{"parse", "--help"}},
			{"portknock.1", client, []string{"--help"}},
			{"portknock.1", client, []string{"keygen", "--help"}},
		} {
			sec := helpSection(helpText(t, tc.bin, tc.args...), "Exit status")
			codes := exitCodeLine.FindAllStringSubmatch(sec, -1)
			if len(codes) < 2 {
				t.Errorf("%s %s: no exit statuses listed, one a line, under \"Exit status:\":\n%s", filepath.Base(tc.bin), strings.Join(tc.args, " "), sec)
			}
			for _, c := range codes {
				if !regexp.MustCompile(`(^|\s)` + c[1] + `(\s|$)`).MatchString(pages[tc.page]) {
					t.Errorf("%s %s lists exit status %s, which %s's EXIT STATUS does not", filepath.Base(tc.bin), strings.Join(tc.args, " "), c[1], tc.page)
				}
			}
		}
	})
}
